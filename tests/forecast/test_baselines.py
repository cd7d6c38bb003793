"""Baselines on rolling windows: seasonal naive, statsmodels ETS and ARIMA, and the evaluation harness."""

import numpy as np
import pytest

from graphdiff.data.series import ForecastTask, TimeSeries
from graphdiff.forecast.baselines import arima, ets, fill_forward, get_forecaster, seasonal_naive
from graphdiff.forecast.evaluate import evaluate_forecaster
from graphdiff.errors import ConfigError


def _seasonal(n=96, m=4, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 0.05 * t + np.tile([2.0, -1.0, 1.0, -2.0], n // m + 1)[:n] + noise * rng.standard_normal(n)


def test_seasonal_naive_repeats_the_last_season_per_channel():
    h = np.stack([np.arange(10.0), 100 + np.arange(10.0)], 1)
    out = seasonal_naive(h, 6, season=4, num_samples=3)
    assert out.shape == (3, 6, 2)
    assert out[0, :, 0].tolist() == [6, 7, 8, 9, 6, 7] and out[2, :, 1].tolist() == [106, 107, 108, 109, 106, 107]


def test_fill_forward_carries_values_and_drops_leading_gaps():
    assert fill_forward(np.array([np.nan, 1, np.nan, 3, np.nan])).tolist() == [1, 1, 3, 3]


@pytest.mark.parametrize("fc", [ets, arima])
def test_statsmodels_baselines_give_finite_sample_paths_that_track_the_season(fc):
    y = _seasonal(n=64)
    hist, target = y[:56, None], y[56:, None]
    paths = fc(hist, 8, season=4, num_samples=50, seed=1)
    assert paths.shape == (50, 8, 1) and np.isfinite(paths).all()
    assert paths.std(0).mean() > 0  # a distribution, not a point
    median = np.median(paths, 0)
    naive = seasonal_naive(hist, 8, season=4)[0]
    assert np.abs(median - target).mean() < np.abs(naive - target).mean()  # the trend is caught
    if fc is ets:  # seeded (one refit is enough to show it)
        np.testing.assert_array_equal(paths, fc(hist, 8, season=4, num_samples=50, seed=1))


def test_evaluate_forecaster_scores_every_window():
    s = TimeSeries("toy", _seasonal(noise=0.0), "D", task=ForecastTask(4, 16, 3, 4))
    res = evaluate_forecaster("seasonal_naive", s, num_samples=2)
    assert res["summary"]["windows"] == 3 and len(res["windows"]) == 3
    # trend 0.05 per step: each seasonal-naive error is 0.05 * 4, the seasonal error too -> MASE 1
    assert res["summary"]["mase"] == pytest.approx(1.0)
    assert res["summary"]["crps"] == pytest.approx(res["summary"]["nd"])


def test_unknown_baseline_is_a_config_error():
    with pytest.raises(ConfigError, match="seasonal_naive"):
        get_forecaster("seasonal_naiv")
