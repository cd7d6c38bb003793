"""``graphdiff forecast`` end to end with a baseline: quantile CSV, held-out scores, plot, one-line errors."""

import csv

import numpy as np
import pytest

from graphdiff.cli import main


def _series_csv(tmp_path, n=60):
    t = np.arange(n)
    y = 50 + 0.5 * t + 8 * np.sin(2 * np.pi * t / 12)
    months = np.datetime64("2015-01", "M") + t
    p = tmp_path / "sales.csv"
    p.write_text("month,sales\n" + "".join(f"{m}-01,{v:.3f}\n" for m, v in zip(months, y)))
    return p


def test_forecast_cli_writes_quantiles_plot_and_holdout_scores(tmp_path, capsys):
    ctx = _series_csv(tmp_path)
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    rc = main(["forecast", "--model", "seasonal_naive", "--context", str(ctx), "--horizon", "6", "--samples", "4",
               "--out", str(out), "--plot", str(png), "--holdout"])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["date"] for r in rows] == ["2019-07", "2019-08", "2019-09", "2019-10", "2019-11", "2019-12"]
    assert list(rows[0]) == ["date", "series", "mean"] + [f"0.{k}" for k in range(1, 10)]
    # seasonal naive: the value 12 months before each held-out month
    lines = ctx.read_text().splitlines()[1:]
    assert float(rows[0]["0.5"]) == pytest.approx(float(lines[54 - 12].split(",")[1]), abs=1e-3)
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "CRPS (normalised)" in printed and "MASE" in printed


def test_forecast_cli_future_dates_without_holdout(tmp_path):
    out = tmp_path / "f.csv"
    assert main(["forecast", "--model", "seasonal-naive", "--context", str(_series_csv(tmp_path)), "--horizon", "2",
                 "--samples", "1", "--out", str(out)]) == 0
    assert [r["date"] for r in csv.DictReader(out.open())] == ["2020-01", "2020-02"]


@pytest.mark.parametrize("argv, expect", [
    (["--model", "holt_winters"], "neither a model folder, a model name nor a baseline"),
    (["--horizon", "0"], "--horizon must be at least 1"),
    (["--context", "BAD"], "'x' is not a number"),
])
def test_forecast_cli_errors_are_one_line(tmp_path, capsys, argv, expect):
    good = _series_csv(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,v\n2020-01-01,1\n2020-01-02,x\n2020-01-03,2\n")
    args = {"--model": "ets", "--context": str(good), "--horizon": "3", "--out": str(tmp_path / "o.csv")}
    for k, v in zip(argv[::2], argv[1::2]):
        args[k] = str(bad) if v == "BAD" else v
    rc = main(["forecast", *[a for kv in args.items() for a in kv]])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and expect in err
