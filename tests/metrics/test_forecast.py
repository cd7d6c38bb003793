"""Forecast scores: CRPS from properscoring against closed forms, quantile loss, MASE."""

import numpy as np
import pytest
from scipy import stats

from graphdiff.metrics.forecast import ForecastScores, crps_points, mase, quantile_loss, seasonal_error


def _gaussian_crps(mu, sigma, y):
    # Gneiting & Raftery (2007), eq. 21: the CRPS of N(mu, sigma^2) at y, written out here independently
    z = (y - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def test_crps_of_a_large_gaussian_ensemble_matches_the_closed_form():
    mu, sigma = np.array([0.0, 2.0, -1.0]), np.array([1.0, 0.5, 3.0])
    y = np.array([0.3, 3.1, -1.0])
    # an evenly spread ensemble: the Gaussian's quantiles at (k + 0.5) / E (properscoring's exact sample CRPS
    # is O(E^2) in memory without numba, so E stays moderate)
    levels = (np.arange(600) + 0.5) / 600
    samples = mu + sigma * stats.norm.ppf(levels)[:, None]
    got = crps_points(y, samples)
    np.testing.assert_allclose(got, _gaussian_crps(mu, sigma, y), rtol=3e-3)


def test_crps_of_a_small_ensemble_is_the_energy_form():
    x, y = np.array([1.0, 2.0, 3.0]), 2.5
    expect = np.mean(np.abs(x - y)) - 0.5 * np.mean(np.abs(x[:, None] - x[None, :]))
    assert crps_points(np.array([y]), x[:, None])[0] == pytest.approx(expect)
    assert np.isnan(crps_points(np.array([np.nan]), x[:, None])[0])


def test_point_forecast_crps_and_wql_equal_the_normalised_absolute_error():
    y = np.array([[10.0], [12.0], [8.0]])
    point = np.array([[11.0], [12.0], [5.0]])
    sc = ForecastScores()
    sc.add(y, point[None].repeat(5, 0), np.arange(20.0)[:, None], season=1)
    s = sc.summary()
    nd = np.abs(y - point).sum() / np.abs(y).sum()
    assert s["crps"] == pytest.approx(nd) and s["wql"] == pytest.approx(nd) and s["nd"] == pytest.approx(nd)


def test_quantile_loss_is_asymmetric():
    assert quantile_loss(np.array([10.0]), np.array([8.0]), 0.9) == pytest.approx(2 * 2 * 0.9)
    assert quantile_loss(np.array([10.0]), np.array([12.0]), 0.9) == pytest.approx(2 * 2 * 0.1)


def test_mase_of_seasonal_naive_on_seasonal_series_with_trend_is_one():
    m, b = 4, 0.5
    t = np.arange(40, dtype=float)
    y = np.tile([3.0, -1.0, 2.0, 0.0], 10) + b * t
    hist, target = y[:32, None], y[32:36, None]
    naive = hist[-m:]  # the last season repeated
    assert seasonal_error(hist, m) == pytest.approx(b * m)
    assert mase(target, naive, hist, m) == pytest.approx(1.0)
    assert mase(target, target, hist, m) == 0.0
    assert np.isnan(mase(target, naive, np.ones((10, 1)), m))  # no seasonal variation: undefined
