"""Time series: built-in series from installed wheels, user CSVs with one-line errors, rolling windows."""

import importlib.util

import numpy as np
import pytest

from graphdiff.data.series import (ForecastTask, TimeSeries, evaluation_windows, load_builtin, read_series_csv,
                                   training_windows)
from graphdiff.errors import DataError

# the series are read from the pmdarima wheel's files (without importing it: its import takes seconds)
WHEEL_DATA = pytest.mark.skipif(importlib.util.find_spec("pmdarima") is None, reason="pmdarima not installed")


def _csv(tmp_path, text, name="s.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


@WHEEL_DATA
def test_builtin_series_has_card_task_and_calendar():
    s = load_builtin("airpassengers")
    assert s.values.shape == (144, 1) and s.freq == "M" and s.season == 12
    assert str(s.timestamps[0]) == "1949-01" and str(s.timestamps[-1]) == "1960-12"
    assert s.values[0, 0] == 112.0 and s.card["package"] == "pmdarima"
    wins = evaluation_windows(s)
    h = s.task.prediction_length
    # the test windows tile the last W*H points, each history ends where its target starts
    assert np.array_equal(np.concatenate([w.target for w in wins]), s.values[-len(wins) * h:])
    assert all(len(w.history) == w.start for w in wins)


@WHEEL_DATA
def test_quarterly_and_co2_series_match_their_cards():
    beer = load_builtin("ausbeer")
    assert beer.freq == "Q" and beer.season == 4 and len(beer) == beer.card["length"] == 211
    assert str(beer.timestamps[1]) == "1956-04" and str(beer.timestamps[-1]) == "2008-07"  # 2008 Q3
    assert np.isfinite(beer.values).all() and beer.values[0, 0] == 284.0
    wool = load_builtin("woolyrnq")
    assert len(wool) == wool.card["length"] == 119 and str(wool.timestamps[-1]) == "1994-07"
    co2 = load_builtin("co2")
    assert co2.freq == "M" and len(co2) == co2.card["length"] == 526
    assert str(co2.timestamps[0]) == "1958-03" and str(co2.timestamps[-1]) == "2001-12"
    # the mean of each month's weekly readings: March 1958 has one reading (316.1), April four
    assert co2.values[0, 0] == pytest.approx(316.1) and co2.values[1, 0] == pytest.approx(
        np.mean([317.3, 317.6, 317.5, 316.4]), abs=0.05)
    assert 0 < int(np.isnan(co2.values).sum()) < 10  # months without a reading stay missing


def test_training_windows_end_before_the_first_test_window():
    t = np.arange(100, dtype=float)
    s = TimeSeries("ramp", t, "D", task=ForecastTask(prediction_length=5, context_length=10, test_windows=2,
                                                     season=7))
    train = training_windows(s)
    assert train.shape == (90 - 15 + 1, 15, 1)
    assert train[:, :, 0].max() == 89.0  # the first test window starts at 90
    w0 = evaluation_windows(s)[0]
    assert np.array_equal(w0.context(10)[:, 0], np.arange(80, 90)) and w0.target[0, 0] == 90


def test_csv_monthly_with_missing_value_and_gap(tmp_path):
    p = _csv(tmp_path, "month,sales,returns\n2020-01-01,10,1\n2020-02-01,,2\n2020-04-01,13,NA\n2020-05-01,14,5\n")
    s = read_series_csv(p)
    assert s.freq == "M" and s.season == 12 and s.channels == ("sales", "returns")
    assert [str(t) for t in s.timestamps] == ["2020-01", "2020-02", "2020-03", "2020-04", "2020-05"]
    assert np.isnan(s.values[1, 0]) and np.isnan(s.values[2]).all() and np.isnan(s.values[2, 1])
    assert s.values[3, 0] == 13 and s.values[4, 1] == 5


def test_csv_half_hourly_frequency(tmp_path):
    rows = "".join(f"2021-03-01 {h:02d}:{m:02d},{h + m / 60}\n" for h in range(3) for m in (0, 30))
    s = read_series_csv(_csv(tmp_path, "time,load\n" + rows), season=4)
    assert s.freq == "30min" and s.season == 4 and len(s) == 6 and s.values[3, 0] == 1.5


@pytest.mark.parametrize("body, expect", [
    ("date,v\n2020-01-01,1\n2020-01-02,oops\n2020-01-03,3\n", ["line 3", "'v'", "'oops'", "not a number"]),
    ("date,v\n2020-01-01,1\n2020-13-45,2\n2020-01-03,3\n", ["line 3", "'date'", "'2020-13-45'", "not a date"]),
    ("date,v\n2020-01-02,1\n2020-01-01,2\n2020-01-03,3\n", ["line 3", "increase"]),
    ("date,v\n2020-01-01,1\n2020-01-02,inf\n2020-01-03,3\n", ["line 3", "'inf'", "finite"]),
    ("date,v\n2020-01-01,1\n", ["1 data rows"]),
    ("date\n2020-01-01\n2020-01-02\n2020-01-03\n", ["no value column"]),
])
def test_csv_errors_are_one_line_naming_file_row_column_value(tmp_path, body, expect):
    p = _csv(tmp_path, body)
    with pytest.raises(DataError) as info:
        read_series_csv(p)
    msg = str(info.value)
    assert "\n" not in msg and str(p) in msg
    for part in expect:
        assert part in msg


def test_csv_unknown_column_is_named(tmp_path):
    p = _csv(tmp_path, "date,v\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n")
    with pytest.raises(DataError, match="no column 'w'"):
        read_series_csv(p, value_columns=["w"])


@WHEEL_DATA
def test_series_names_are_datasets_of_training_windows(capsys):
    from graphdiff.cli import main
    from graphdiff.data import load_dataset

    ds = load_dataset("wineind")
    assert ds.split_sizes() == {"train": 176 - 24 - 48 + 1, "val": 0, "test": 2}
    state = ds.split("train").batch([0, 1])
    assert state.x.shape == (2, 48, 1) and state.e.shape == (2, 48, 48, 3) and state.mask.all()
    # the last training window ends right before the first test window (point 152)
    assert np.allclose(ds.split("train").arrays()[-1, -1, 0], ds.series.values[151, 0])
    assert main(["datasets", "info", "wineind"]) == 0
    out = capsys.readouterr().out
    assert "edge kinds lag1, lag12" in out and "split_rule: GluonTS rolling evaluation" in out
