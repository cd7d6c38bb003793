"""graphdiff train / sample with an image preset: a PNG grid of digits, and one-line errors."""

import numpy as np
import pytest

from graphdiff.cli import main
from tests.conftest import one_error_line


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_images")
    rc = main(["train", "--preset", "edm-digits", "--out", str(d / "run"), "--quiet", "--set", "train.max_steps=3",
               "--set", "train.batch_size=8", "--set", "model.hidden=8", "--set", "model.levels=2",
               "--set", "model.blocks=1"])
    assert rc == 0
    return d


def test_sample_writes_a_png_grid_of_images(run, capsys):
    from PIL import Image

    out = run / "digits.png"
    assert main(["sample", "--model", str(run / "run"), "-n", "6", "--steps", "2", "--out", str(out), "--quiet"]) == 0
    pic = np.asarray(Image.open(out))
    assert pic.shape == (2 * (8 * 4 + 1) + 1, 3 * (8 * 4 + 1) + 1)  # 6 images of 8x8 at 4x, 3 per row
    assert "wrote 6 samples" in capsys.readouterr().out


def test_image_cli_errors_are_one_line(run, capsys):
    assert main(["sample", "--model", str(run / "run"), "-n", "2", "--out", str(run / "x.smi"), "--quiet"]) == 2
    assert "is an image model; write its samples to .png" in one_error_line(capsys)
    assert main(["train", "--preset", "pfgm-digits", "--set", "process.D=1", "--out", str(run / "bad")]) == 2
    assert "D (augmented dimension) must be a number > 2" in one_error_line(capsys)


@pytest.mark.parametrize("preset", ["score_sde-digits", "pfgm-digits"])
def test_other_image_processes_train_and_sample(tmp_path, preset):
    tiny = ["--set", "train.max_steps=2", "--set", "train.batch_size=4", "--set", "model.hidden=8", "--set",
            "model.levels=1", "--set", "model.blocks=1"]
    assert main(["train", "--preset", preset, "--out", str(tmp_path / "run"), "--quiet", *tiny]) == 0
    out = tmp_path / "s.png"
    assert main(["sample", "--model", str(tmp_path / "run"), "-n", "2", "--steps", "3", "--out", str(out),
                 "--quiet"]) == 0
    assert out.stat().st_size > 0


def test_datasets_info_and_draw_show_images(tmp_path, capsys):
    assert main(["datasets", "info", "digits"]) == 0
    assert "edges per graph: min 112, max 112" in capsys.readouterr().out
    out = tmp_path / "d.png"
    assert main(["datasets", "draw", "digits", "-n", "4", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_validation_during_training_scores_value_moments(run):
    from graphdiff.data import load_dataset
    from graphdiff.pipeline import GraphDiffusionPipeline
    from graphdiff.validation import make_validator

    pipe = GraphDiffusionPipeline.from_pretrained(run / "run")
    pipe.config = pipe.config.replace(evaluate=pipe.config.evaluate.__class__(num_samples=4, steps=2))
    res = make_validator(pipe, load_dataset("digits"))(pipe.denoiser, 0, 0)
    assert res["samples"] == 4 and res["mean_gap"] > 0 and res["std_gap"] > 0


def test_cnn_width_is_matched_to_a_parameter_budget():
    from graphdiff.bench.images import match_width
    from graphdiff.nn import ConvDenoiser, GridDenoiser

    target = sum(p.numel() for p in GridDenoiser(x_dim=1, max_nodes=64, hidden=32, levels=2, blocks=1,
                                                 edge_kinds=1).parameters())
    spec = match_width({"name": "cnn", "levels": 2, "blocks": 1}, 1, 64, target)
    got = sum(p.numel() for p in ConvDenoiser(x_dim=1, max_nodes=64, **{k: v for k, v in spec.items()
                                                                         if k != "name"}).parameters())
    assert abs(got - target) / target < 0.05
