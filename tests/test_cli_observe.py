"""``graphdiff sample --guide self``: image inpainting and series completion from the CLI, with one-line errors."""

import csv

import numpy as np
import pytest
import torch

from graphdiff.cli import main
from tests.conftest import one_error_line

TINY_IMG = ["--set", "train.max_steps=3", "--set", "train.batch_size=8", "--set", "model.hidden=8", "--set",
            "model.levels=2", "--set", "model.blocks=1"]


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("observe_digits")
    assert main(["train", "--preset", "edm-digits", "--out", str(d / "run"), "--quiet", *TINY_IMG]) == 0
    return d / "run"


@pytest.fixture(scope="module")
def series_model(tmp_path_factory):
    from graphdiff.data.series import ForecastTask, TimeSeries
    from graphdiff.data.series_windows import SeriesWindows
    from graphdiff.pipeline import GraphDiffusionPipeline

    torch.manual_seed(0)
    t = np.arange(120)
    ts = TimeSeries("wave", 20 + 5 * np.sin(2 * np.pi * t / 8), "D",
                    task=ForecastTask(prediction_length=8, context_length=16, test_windows=2, season=8))
    over = {"model": {"name": "cnn1d", "hidden": 8, "levels": 2, "blocks": 1},
            "train": {"batch_size": 16, "max_steps": 3, "warmup_steps": 0, "ckpt_every": 0}, "sample": {"steps": 4}}
    pipe = GraphDiffusionPipeline.fit(SeriesWindows(ts, stride=4), preset="edm-tsdiff-taylor", overrides=over,
                                      progress=False, out=tmp_path_factory.mktemp("observe_run"))
    out = tmp_path_factory.mktemp("observe_series")
    pipe.save_pretrained(out)
    return out


def _digit(i=0):
    from sklearn.datasets import load_digits

    return load_digits().images[i].astype(np.float32)  # 8 x 8 in 0..16


def test_inpainting_keeps_the_observed_half_and_guidance_steers_the_rest(digits_model, tmp_path, capsys):
    img = _digit()
    np.save(tmp_path / "digit.npy", img)
    argv = ["sample", "--model", str(digits_model), "--guide", "self", "--observed", str(tmp_path / "digit.npy"),
            "--observed-mask", "bottom", "-n", "4", "--steps", "4", "--seed", "3", "--quiet"]
    filled = {}
    for scale in ("0", "1"):
        out = tmp_path / f"filled{scale}.npy"
        assert main([*argv, "--scale", scale, "--out", str(out)]) == 0
        assert f"(mse, scale {scale})" in capsys.readouterr().out
        filled[scale] = np.load(out)
    f = filled["1"]
    assert f.shape == (4, 1, 8, 8) and f.min() >= 0 and f.max() <= 16
    np.testing.assert_allclose(f[:, 0, :4], np.broadcast_to(img[:4], (4, 4, 8)), atol=1e-4)  # top rows kept
    assert not np.allclose(f[:, 0, 4:], img[4:], atol=0.5)  # the hidden half is sampled, not copied
    # same seed, same noise: only the guidance term differs between the two runs
    assert np.abs(filled["1"][:, 0, 4:] - filled["0"][:, 0, 4:]).max() > 1e-3
    png = tmp_path / "filled.png"
    assert main([*argv, "--out", str(png)]) == 0 and png.read_bytes()[:4] == b"\x89PNG"


def test_a_mask_file_and_nan_pixels_mark_the_unknown(digits_model, tmp_path, capsys):
    img = _digit(1)
    obs = img.copy()
    obs[0, 0] = np.nan
    known = np.ones((8, 8), bool)
    known[:, :3] = False
    np.save(tmp_path / "o.npy", obs)
    np.save(tmp_path / "m.npy", known)
    out = tmp_path / "f.npy"
    assert main(["sample", "--model", str(digits_model), "--guide", "self", "--observed", str(tmp_path / "o.npy"),
                 "--observed-mask", str(tmp_path / "m.npy"), "-n", "2", "--steps", "2", "--out", str(out),
                 "--quiet"]) == 0
    assert f"{64 - 24} of 64 values observed" in capsys.readouterr().out
    f = np.load(out)[:, 0]
    np.testing.assert_allclose(f[:, :, 3:], np.broadcast_to(img[:, 3:], (2, 8, 5)), atol=1e-4)


def test_series_window_completion_keeps_the_context(series_model, tmp_path, capsys):
    t = np.arange(16)
    ctx = 20 + 5 * np.sin(2 * np.pi * t / 8)
    np.save(tmp_path / "ctx.npy", ctx)  # 16 of the window's 24 steps: the last 8 are forecast
    out = tmp_path / "paths.npy"
    assert main(["sample", "--model", str(series_model), "--guide", "self", "--observed", str(tmp_path / "ctx.npy"),
                 "-n", "5", "--steps", "3", "--scale", "4", "--out", str(out), "--quiet"]) == 0
    assert "quantile, scale 4" in capsys.readouterr().out
    paths = np.load(out)
    assert paths.shape == (5, 24, 1) and np.isfinite(paths).all()
    np.testing.assert_allclose(paths[:, :16, 0], np.broadcast_to(ctx, (5, 16)), rtol=1e-4)  # data units kept
    day = tmp_path / "ctx.csv"
    day.write_text("day,level\n" + "".join(f"2020-01-{d + 1:02d},{v:.4f}\n" for d, v in enumerate(ctx)))
    table = tmp_path / "q.csv"
    assert main(["sample", "--model", str(series_model), "--guide", "self", "--observed", str(day), "-n", "5",
                 "--steps", "2", "--out", str(table), "--quiet"]) == 0
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 24 and float(rows[0]["0.5"]) == pytest.approx(ctx[0], abs=1e-3)
    # the CSV's dates run on over the completed steps, under its own column name
    assert [r["date"] for r in rows[15:17]] == ["2020-01-16", "2020-01-17"] and rows[-1]["date"] == "2020-01-24"
    assert {r["series"] for r in rows} == {"level"}
    long = tmp_path / "long.csv"
    long.write_text("day,level\n" + "".join(f"2020-02-{d + 1:02d},{d}\n" for d in range(25)))
    assert main(["sample", "--model", str(series_model), "--guide", "self", "--observed", str(long), "-n", "2",
                 "--steps", "2", "--out", str(table), "--quiet"]) == 2
    assert "more than this model's window of 24 steps" in one_error_line(capsys)


@pytest.mark.parametrize("which, argv, expect", [
    ("digits", ["--observed", "BAD55"], "shape [5, 5] does not fit this model's images"),
    ("digits", ["--observed", "GOOD", "--observed-mask", "BAD55"], "--observed-mask"),
    ("digits", ["--observed", "GOOD", "--out", "x.csv"], "writes .png or .npy"),
    ("digits", [], "--guide self needs --observed FILE"),
    ("series", ["--observed", "LONG"], "shape [30] does not fit this model's windows of 24 steps"),
    ("series", ["--observed", "GOOD1D", "--observed-mask", "bottom"], "for image models"),
    ("qm9", ["--observed", "GOOD"], "needs a model on a fixed grid or path graph"),
])
def test_self_guidance_errors_are_one_line(digits_model, series_model, tmp_path, capsys, which, argv, expect):
    files = {"BAD55": np.zeros((5, 5)), "GOOD": np.zeros((8, 8)), "LONG": np.ones(30), "GOOD1D": np.ones(16)}
    for name, arr in files.items():
        np.save(tmp_path / f"{name}.npy", arr)
    argv = [str(tmp_path / f"{a}.npy") if a in files else a for a in argv]
    model = {"digits": digits_model, "series": series_model}.get(which, "qm9-defog")
    out = [] if "--out" in argv else ["--out", str(tmp_path / ("o.npy"))]
    assert main(["sample", "--model", str(model), "--guide", "self", "-n", "2", "--steps", "2", *argv, *out,
                 "--quiet"]) == 2
    err = one_error_line(capsys)
    assert expect in err
    if "BAD55" in " ".join(argv):
        assert "BAD55.npy" in err  # the file is named


def test_observed_without_guide_self_is_an_error(digits_model, tmp_path, capsys):
    assert main(["sample", "--model", str(digits_model), "--observed", "x.npy", "--out", str(tmp_path / "o.png"),
                 "--quiet"]) == 2
    assert "need --guide self" in one_error_line(capsys)
