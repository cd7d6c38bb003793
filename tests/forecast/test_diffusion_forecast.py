"""Forecasting with a (tiny) unconditional diffusion model on the path graph, by self-guidance, through the CLI."""

import csv

import numpy as np
import pytest
import torch

from graphdiff.cli import main
from graphdiff.data.series import ForecastTask, TimeSeries
from graphdiff.data.series_windows import SeriesWindows
from graphdiff.pipeline import GraphDiffusionPipeline

TINY = {"model": {"hidden": 16, "levels": 2, "blocks": 1},
        "train": {"batch_size": 16, "max_steps": 30, "epochs": 1000, "warmup_steps": 0, "log_every": 10,
                  "ckpt_every": 0}, "sample": {"steps": 4}}


def _series(n=160):
    t = np.arange(n)
    return TimeSeries("wave", 20 + 5 * np.sin(2 * np.pi * t / 8), "D",
                      np.datetime64("2020-01-01") + t.astype("timedelta64[D]"),
                      task=ForecastTask(prediction_length=8, context_length=16, test_windows=2, season=8))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    ds = SeriesWindows(_series(), stride=4)
    assert ds.split_sizes()["test"] == 2 and ds.path.n_nodes == 24
    pipe = GraphDiffusionPipeline.fit(ds, preset="edm-tsdiff-taylor", overrides=TINY, progress=False,
                                      out=tmp_path_factory.mktemp("run"))
    out = tmp_path_factory.mktemp("model")
    pipe.save_pretrained(out)
    return out


def test_cli_forecast_with_a_diffusion_model(model_dir, tmp_path, capsys):
    ts = _series()
    ctx = tmp_path / "wave.csv"
    ctx.write_text("day,level\n" + "".join(f"{d},{v:.4f}\n" for d, v in zip(ts.timestamps, ts.values[:, 0])))
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    rc = main(["forecast", "--model", str(model_dir), "--context", str(ctx), "--horizon", "8", "--samples", "6",
               "--out", str(out), "--plot", str(png), "--holdout", "--scale", "4"])
    assert rc == 0, capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and rows[0]["date"] == str(ts.timestamps[-8])
    q = np.array([[float(r[f"0.{k}"]) for k in range(1, 10)] for r in rows])
    assert np.isfinite(q).all() and (np.diff(q, axis=1) >= -1e-9).all()
    # mapped back to the data's units (a level around 20), not left in the scaled space (around 0)
    assert np.median(q) > 5
    assert png.read_bytes()[:4] == b"\x89PNG" and "CRPS" in capsys.readouterr().out


def test_a_diffusion_model_forecasts_only_its_own_horizon(model_dir, tmp_path, capsys):
    ctx = tmp_path / "c.csv"
    ctx.write_text("day,level\n" + "".join(f"2020-01-{d:02d},{d}\n" for d in range(1, 29)))
    rc = main(["forecast", "--model", str(model_dir), "--context", str(ctx), "--horizon", "5", "--out",
               str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "forecasts 8 steps" in err
