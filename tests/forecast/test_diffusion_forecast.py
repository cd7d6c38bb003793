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


def test_a_one_channel_model_forecasts_each_column_and_refuses_an_unobserved_context(model_dir, tmp_path, capsys):
    from graphdiff.errors import DataError
    from graphdiff.forecast.diffusion import DiffusionForecaster, RefinedForecaster

    ts = _series()
    a, b = ts.values[:, 0], 3 * ts.values[::-1, 0]
    for forecaster in (DiffusionForecaster(str(model_dir)), RefinedForecaster(str(model_dir), iterations=2)):
        both = forecaster(np.stack([a, b], 1), 8, num_samples=4, seed=1)
        assert both.shape == (4, 8, 2)
        assert np.allclose(both[..., :1], forecaster(a, 8, num_samples=4, seed=1))
        assert np.allclose(both[..., 1:], forecaster(b, 8, num_samples=4, seed=1))
        with pytest.raises(DataError, match="last 16 steps of the context .* hold no observed value"):
            forecaster(np.concatenate([a, np.full(16, np.nan)]), 8, num_samples=2)
    with pytest.warns(UserWarning, match="crosses zero"):
        DiffusionForecaster(str(model_dir))(a - 20, 8, num_samples=2)
    # the CLI forecasts every column of a CSV with the one-channel model
    ctx = tmp_path / "two.csv"
    ctx.write_text("day,x,y\n" + "".join(f"{d},{u:.4f},{v:.4f}\n" for d, u, v in zip(ts.timestamps, a, b)))
    assert main(["forecast", "--model", str(model_dir), "--context", str(ctx), "--horizon", "8", "--samples", "4",
                 "--out", str(tmp_path / "f.csv")]) == 0, capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    assert len(rows) == 16 and {r["series"] for r in rows} == {"x", "y"}
    assert "trained on series of season 8; this one has season 7" in capsys.readouterr().err  # daily dates
    assert main(["forecast", "--model", str(model_dir), "--context", str(ctx), "--horizon", "8", "--samples", "2",
                 "--season", "8", "--out", str(tmp_path / "g.csv")]) == 0
    assert "note: the model was trained" not in capsys.readouterr().err


def test_month_end_dates_read_as_monthly_and_continue_on_month_ends(tmp_path):
    from graphdiff.data.series import read_series_csv
    from graphdiff.forecast.output import future_timestamps

    ends = ["2019-11-30", "2019-12-31", "2020-01-31", "2020-02-29", "2020-03-31"]
    path = tmp_path / "me.csv"
    path.write_text("date,v\n" + "".join(f"{d},{i}\n" for i, d in enumerate(ends)) + "2020-05-31,7\n")
    ts = read_series_csv(path)
    assert ts.freq == "ME" and ts.season == 12 and len(ts) == 7 and np.isnan(ts.values[5, 0])  # April missing
    assert [str(d) for d in future_timestamps(ts.timestamps, 3)] == ["2020-06-30", "2020-07-31", "2020-08-31"]
    quarterly = tmp_path / "qe.csv"
    quarterly.write_text("date,v\n2020-03-31,1\n2020-06-30,2\n2020-09-30,3\n")
    q = read_series_csv(quarterly)
    assert q.freq == "QE" and [str(d) for d in future_timestamps(q.timestamps, 2)] == ["2020-12-31", "2021-03-31"]


def _trend_wave(n=160):
    t = np.arange(n)
    noise = np.random.default_rng(0).normal(0, 0.3, n)
    return TimeSeries("trend_wave", 20 + 0.05 * t + 5 * np.sin(2 * np.pi * t / 8) + noise, "D",
                      np.datetime64("2020-01-01") + t.astype("timedelta64[D]"),
                      task=ForecastTask(prediction_length=8, context_length=16, test_windows=2, season=8))


@pytest.mark.parametrize("scaling", ["diff", "sdiff"])
def test_a_differenced_model_forecasts_from_the_end_of_its_context(scaling, tmp_path):
    from graphdiff.forecast.diffusion import DiffusionForecaster, RefinedForecaster

    torch.manual_seed(0)
    series = _trend_wave()
    ds = SeriesWindows(series, stride=4, scaling=scaling)
    pipe = GraphDiffusionPipeline.fit(ds, preset="edm-tsdiff-taylor", overrides=TINY, progress=False,
                                      out=tmp_path / "run")
    pipe.save_pretrained(tmp_path / "model")
    fc = DiffusionForecaster(str(tmp_path / "model"), scale=4)
    assert fc.path.scaling == scaling and fc.path.lag == (1 if scaling == "diff" else 8)
    hist = series.values[:-8]
    paths = fc(hist, 8, season=8, num_samples=6, seed=0)
    assert paths.shape == (6, 8, 1) and np.isfinite(paths).all()
    # the forecast is the sampled window rebuilt from the context's own anchors (its last observed values)
    values, known, scale = fc.path.forecast_observation(torch.tensor(hist[None, -16:], dtype=torch.float32))
    state = fc.pipe.sample(6, guide="self", observed=values[0], observed_mask=known[0], seed=0, progress=False,
                           guide_options={"variant": "quantile", "scale": 4.0, "replace": False})
    rebuilt = fc.path.from_state(state, scale.expand(6, -1, -1))[:, -8:].double().numpy()
    np.testing.assert_allclose(paths, rebuilt, rtol=1e-5, atol=1e-4)
    if scaling == "sdiff":  # each forecast step is its value one season before plus a change of the size the model
        # saw (a trend of 0.4 a season plus noise), so even a 30-step model follows the wave
        assert np.corrcoef(np.median(paths[:, :, 0], 0), series.values[-8:, 0])[0, 1] > 0.9
    # the refinement of a base forecast with a gap in the context starts from the carried-forward level, not from 0
    gap = hist.copy()
    gap[-3] = np.nan
    refined = RefinedForecaster(pipe, base="seasonal_naive")(gap, 8, season=8, num_samples=4, seed=0)
    assert np.isfinite(refined).all() and np.abs(np.median(refined) - np.median(hist[-16:])) < 10


def test_carry_forward_fills_gaps_with_the_last_value_and_a_missing_start_with_the_first():
    from graphdiff.forecast.diffusion import _carry_forward

    w = np.array([[np.nan, 2.0, np.nan, np.nan, 5.0, np.nan], [np.nan] * 6]).T[None]  # [1, 6, 2]
    out = _carry_forward(w)
    assert out[0, :, 0].tolist() == [2.0, 2.0, 2.0, 2.0, 5.0, 5.0]
    assert out[0, :, 1].tolist() == [0.0] * 6  # a column with no value at all
    assert np.isnan(w).sum() == 10  # the input is left as it was
