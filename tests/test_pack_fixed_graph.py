"""``graphdiff models pack`` for time-series and image models, and the stored self-guidance default it writes."""

import json

import numpy as np
import pytest

from graphdiff.cli import main
from graphdiff.errors import ConfigError
from graphdiff.pipeline import GraphDiffusionPipeline
from tests.conftest import one_error_line

TINY_SERIES = ["--set", "train.max_steps=3", "--set", "train.batch_size=16", "--set", "train.warmup_steps=0",
               "--set", "model.hidden=8", "--set", "model.levels=2", "--set", "model.blocks=1"]


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    """A tiny path-graph model trained by ``graphdiff train`` on a pool of one monthly CSV (H = 12, L = 36)."""
    d = tmp_path_factory.mktemp("pack_series")
    t = np.arange(180)
    months = np.datetime64("2000-01") + t
    csv = d / "wave.csv"
    csv.write_text("date,value\n" + "".join(f"{m},{20 + 5 * np.sin(2 * np.pi * i / 12) + 0.05 * i:.4f}\n"
                                             for i, m in zip(t, months)))
    assert main(["train", "--preset", "edm-tsdiff-monthly", "--set", f"dataset_options.series=[{csv}]",
                 "--out", str(d / "run"), "--quiet", *TINY_SERIES]) == 0
    return d


def test_pack_series_measures_forecasts_and_stores_the_validated_scale(series_run, tmp_path, capsys):
    dest = tmp_path / "packed"
    plots = tmp_path / "plots"
    assert main(["models", "pack", str(series_run / "run"), "--name", "wave-tsdiff", "--out", str(dest),
                 "--samples", "4", "--steps", "3", "--scales", "0.5", "4", "--plots", str(plots)]) == 0
    measured = json.loads((dest / "metrics.json").read_text())
    by_scale = {float(k): v for k, v in measured["validation_crps_by_scale"].items()}
    assert set(by_scale) == {0.5, 4.0}
    chosen = min(by_scale, key=by_scale.get)  # the lowest validation CRPS, not a test window, picks the scale
    assert measured["guidance_scale"] == chosen
    (row,) = measured["series"]
    assert row["series"] == "wave" and row["windows"] >= 1 and row["horizon"] == 12
    assert row["crps"] > 0 and row["ets_crps"] > 0
    assert row["x_ets"] == pytest.approx(row["crps"] / row["ets_crps"])
    card = (dest / "README.md").read_text()
    assert f"| wave | {row['windows']} x 12 | {row['seasonal_naive_crps']:.4f} | {row['ets_crps']:.4f} | " \
           f"{row['crps']:.4f} |" in card
    assert f"scale {chosen:g} (chosen on the validation windows" in card
    assert "(each window over its context's mean absolute value, TSDiff's scaling), cut before" in card
    assert (plots / "wave.png").stat().st_size > 1000
    pipe = GraphDiffusionPipeline.from_pretrained(dest)
    assert pipe.config.sample.self_guidance == {"scale": chosen, "variant": "quantile"}
    assert pipe.config.sample.steps == 3


def test_forecast_uses_the_stored_scale_unless_told(series_run, tmp_path, capsys):
    from graphdiff.forecast.diffusion import DiffusionForecaster

    dest = tmp_path / "packed"
    assert main(["models", "pack", str(series_run / "run"), "--name", "w", "--out", str(dest), "--samples", "2",
                 "--steps", "2", "--scales", "3"]) == 0
    capsys.readouterr()
    assert DiffusionForecaster(dest).scale == 3.0 and DiffusionForecaster(dest).variant == "quantile"
    assert DiffusionForecaster(dest, scale=1.5, variant="mse").scale == 1.5
    base = dict(context=str(series_run / "wave.csv"), out=str(tmp_path / "f.csv"))
    argv = ["forecast", "--model", str(dest), "--context", base["context"], "--horizon", "12", "--samples", "2",
            "--out", base["out"]]
    assert main(argv) == 0 and "scale 3)" in capsys.readouterr().out
    assert main([*argv, "--scale", "0.25"]) == 0 and "scale 0.25)" in capsys.readouterr().out
    assert main([*argv, "--replace"]) == 0 and "scale 3, replacement)" in capsys.readouterr().out
    assert DiffusionForecaster(dest, replace=True).replace and not DiffusionForecaster(dest).replace
    # a model without a stored default keeps the old default of 1
    assert DiffusionForecaster(series_run / "run").scale == 1.0


def test_pack_chooses_the_variant_with_the_scale_and_stores_replacement(series_run, tmp_path, capsys):
    from graphdiff.forecast.diffusion import DiffusionForecaster

    dest = tmp_path / "packed"
    assert main(["models", "pack", str(series_run / "run"), "--name", "w", "--out", str(dest), "--samples", "2",
                 "--steps", "2", "--scales", "3", "--variants", "quantile+replace"]) == 0
    measured = json.loads((dest / "metrics.json").read_text())
    assert measured["guidance_variant"] == "quantile+replace"
    fc = DiffusionForecaster(dest)
    assert fc.replace and fc.variant == "quantile" and fc.scale == 3.0
    assert "quantile self-guidance with replacement at scale 3" in (dest / "README.md").read_text()
    assert main(["models", "pack", str(series_run / "run"), "--name", "w", "--out", str(dest), "--samples", "2",
                 "--steps", "2", "--scales", "1", "3", "--variants", "quantile", "quantile+replace"]) == 2
    assert "already holds a model" in capsys.readouterr().err  # packing again replaces a card only when asked
    assert main(["models", "pack", str(series_run / "run"), "--name", "w", "--out", str(dest), "--samples", "2",
                 "--steps", "2", "--scales", "1", "3", "--variants", "quantile", "quantile+replace",
                 "--overwrite"]) == 0
    val = json.loads((dest / "metrics.json").read_text())["validation_crps_by_scale"]
    assert set(val) == {"quantile 1", "quantile 3", "quantile+replace 1", "quantile+replace 3"}
    best = min(val, key=val.get)
    assert DiffusionForecaster(dest).replace == best.startswith("quantile+replace")
    capsys.readouterr()
    rc = main(["models", "pack", str(series_run / "run"), "--name", "w", "--out", str(tmp_path / "p2"),
               "--variants", "median"])
    assert rc == 2 and "--variants: distinct self-guidance variants" in one_error_line(capsys)


def test_self_guidance_defaults_are_checked(tmp_path):
    from graphdiff.config import SampleConfig

    assert SampleConfig.from_dict({"self_guidance": {"scale": 2}}, "edm").self_guidance == {"scale": 2.0}
    assert "self_guidance" not in SampleConfig.from_dict({}, "edm").to_dict()
    assert SampleConfig.from_dict({"self_guidance": {"replace": True}}, "edm").self_guidance == {"replace": True}
    for bad, expect in (({"scale": -1}, "scale must be a number >= 0"), ({"variant": "l1"}, "unknown 'l1'"),
                        ({"replace": "yes"}, "replace must be true or false"),
                        ({"sigma": 1}, "sigma"), ("high", "expected a mapping")):
        with pytest.raises(ConfigError, match=expect):
            SampleConfig.from_dict({"self_guidance": bad}, "edm")


def _tiny_digits_run(tmp_path, preset: str):
    """A 2-step run of an image preset at a tiny width (trained by ``graphdiff train``)."""
    run = tmp_path / "run"
    assert main(["train", "--preset", preset, "--out", str(run), "--quiet", "--set", "train.max_steps=2",
                 "--set", "train.batch_size=8", "--set", "model.hidden=8", "--set", "model.levels=2",
                 "--set", "model.blocks=1"]) == 0
    return run


def test_pack_images_scores_digits_and_draws_samples(tmp_path, capsys):
    run = _tiny_digits_run(tmp_path, "edm-digits")
    dest = tmp_path / "packed"
    assert main(["models", "pack", str(run), "--name", "digits-tiny", "--out", str(dest), "--samples", "16",
                 "--steps", "2"]) == 0
    measured = json.loads((dest / "metrics.json").read_text())
    assert measured["samples"] == 16 and measured["fd"] > measured["fd_floor_train_vs_test"] > 0
    assert 0.8 < measured["classifier_accuracy"] <= 1.0
    card = (dest / "README.md").read_text()
    assert f"| {measured['fd']:.1f} |" in card and "- data: `digits` train split" in card
    from PIL import Image

    assert Image.open(dest / "samples.png").size[0] > 8


def test_pack_series_bad_scales_is_one_line(series_run, tmp_path, capsys):
    rc = main(["models", "pack", str(series_run / "run"), "--name", "w", "--out", str(tmp_path / "p"),
               "--scales", "0", "2"])
    assert rc == 2 and "--scales: positive guidance scales" in one_error_line(capsys)
    assert not (tmp_path / "p").exists()


def test_the_bundled_series_model_forecasts_by_name_at_its_stored_scale(tmp_path, capsys):
    from graphdiff.hub import model_index

    entry = model_index()["monthly-tsdiff"]
    scale = json.loads((entry.path / "metrics.json").read_text())["guidance_scale"]
    out = tmp_path / "f.csv"
    assert main(["forecast", "--model", "monthly-tsdiff", "--context", "airpassengers", "--horizon", "12",
                 "--samples", "4", "--steps", "3", "--holdout", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"scale {scale:g})" in printed and "held-out 12 points: CRPS" in printed
    assert len(out.read_text().splitlines()) == 13


def test_the_bundled_digits_model_samples_by_name(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "d.png"
    assert main(["sample", "--model", "digits-edm", "-n", "4", "--steps", "2", "--out", str(out)]) == 0
    assert Image.open(out).size[0] > 8
    npy = tmp_path / "d.npy"
    assert main(["sample", "--model", "digits-edm", "-n", "4", "--steps", "2", "--out", str(npy)]) == 0
    arr = np.load(npy)
    assert arr.shape == (4, 1, 8, 8) and 0.0 <= arr.min() and arr.max() <= 16.0 and arr.std() > 0
    capsys.readouterr()
    assert main(["sample", "--model", "qm9-defog", "-n", "2", "--out", str(tmp_path / "m.npy")]) == 2
    assert ".npy arrays are written for image models" in one_error_line(capsys)


def test_pack_a_class_conditional_digits_model_measures_class_accuracy(tmp_path, capsys):
    run = _tiny_digits_run(tmp_path, "edm-digits_cond")
    dest = tmp_path / "packed"
    assert main(["models", "pack", str(run), "--name", "c", "--out", str(dest), "--samples", "20", "--steps", "2"]) == 0
    measured = json.loads((dest / "metrics.json").read_text())
    assert 0.0 <= measured["class_accuracy"] <= 1.0 and measured["fd_conditional"] > 0
    assert f"class accuracy | {measured['class_accuracy']:.3f} |" in (dest / "README.md").read_text()


def test_pack_of_a_series_model_trained_on_a_csv_finds_the_file_or_asks_for_it(series_run, tmp_path, capsys):
    run = tmp_path / "own"
    csv = tmp_path / "wave.csv"
    csv.write_bytes((series_run / "wave.csv").read_bytes())
    assert main(["train", "--preset", "edm-tsdiff-monthly", "--dataset", str(csv), "--out",
                 str(run), "--quiet", *TINY_SERIES]) == 0
    assert json.loads((run / "checkpoint" / "config.json").read_text())["dataset"] == str(csv.resolve())
    csv.rename(tmp_path / "moved.csv")
    capsys.readouterr()
    assert main(["models", "pack", str(run), "--name", "w", "--out", str(tmp_path / "p"), "--samples", "2"]) == 2
    err = one_error_line(capsys)
    assert "not there any more" in err and "give it with --dataset FILE" in err and not (tmp_path / "p").exists()
    (tmp_path / "moved.csv").rename(csv)  # where it was trained: found without --dataset
    assert main(["models", "pack", str(run), "--name", "w", "--out", str(tmp_path / "p"), "--samples", "2",
                 "--steps", "2"]) == 0
    assert f"edm on {csv.resolve()}: " in (tmp_path / "p" / "README.md").read_text()
