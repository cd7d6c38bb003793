"""Scores of probabilistic forecasts: CRPS (from ``properscoring``), mean weighted quantile loss, and MASE.

Conventions (GluonTS ``Evaluator``, as used by TSDiff, Kollovieh et al. 2023, and CSDI, Tashiro et al. 2021):

- a forecast is ``S`` sample paths ``[S, H, C]``; its point forecast is the per-step median;
- CRPS per point is the sample (ensemble) CRPS of ``properscoring.crps_ensemble``; the dataset figure is
  *normalised*: the sum of CRPS over every scored point divided by the sum of ``|y|`` over the same points;
- the mean weighted quantile loss approximates that normalised CRPS from quantiles: for each level ``q``,
  ``2 * sum |(y - y_q) * (1{y <= y_q} - q)| / sum |y|``, averaged over the levels (GluonTS
  ``gluonts.evaluation.metrics.quantile_loss`` and ``Evaluator``'s ``mean_wQuantileLoss``; TSDiff and CSDI take
  the levels 0.05, 0.10, ..., 0.95);
- MASE divides the mean absolute error of the median by the in-sample mean absolute error of the seasonal naive
  forecast on the window's history, ``mean |y_t - y_{t-m}|`` (Hyndman & Koehler 2006, the seasonal form of GluonTS).

Missing targets (NaN) are left out of every sum.
"""

from __future__ import annotations

import numpy as np

TSDIFF_QUANTILES = tuple(round(0.05 * k, 2) for k in range(1, 20))


def _samples(samples: np.ndarray, target: np.ndarray) -> np.ndarray:
    s = np.asarray(samples, dtype=np.float64)
    if s.shape[1:] != np.shape(target):
        raise ValueError(f"samples {s.shape} must be [S, *target.shape] with target {np.shape(target)}")
    return s


def crps_points(target: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """CRPS of every point of ``target`` (any shape) under the ensemble ``samples`` (``[S, *target.shape]``), by
    ``properscoring.crps_ensemble``; NaN where the target is missing."""
    import properscoring

    s = _samples(samples, target)
    return properscoring.crps_ensemble(np.asarray(target, np.float64), np.moveaxis(s, 0, -1))


def quantile_loss(target: np.ndarray, forecast_q: np.ndarray, q: float) -> float:
    """GluonTS quantile loss ``2 * sum |(y - y_q) * (1{y <= y_q} - q)|`` over the observed points."""
    y, f = np.asarray(target, np.float64), np.asarray(forecast_q, np.float64)
    ok = ~np.isnan(y)
    return float(2 * np.sum(np.abs((y[ok] - f[ok]) * ((y[ok] <= f[ok]) - q))))


def seasonal_error(history: np.ndarray, season: int) -> float:
    """``mean |y_t - y_{t-m}|`` over the history (``m`` falls back to 1 when the history is not longer than
    ``m``); NaN pairs are skipped. MASE's denominator."""
    h = np.asarray(history, np.float64).reshape(len(history), -1)
    m = season if len(h) > season else 1
    d = np.abs(h[m:] - h[:-m])
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def mase(target: np.ndarray, point: np.ndarray, history: np.ndarray, season: int) -> float:
    """Mean absolute scaled error of ``point`` (``[H, C]``) against ``target`` with the seasonal error of
    ``history`` (``[T, C]``); NaN when the history has no seasonal variation."""
    denom = seasonal_error(history, season)
    if not denom > 0:
        return float("nan")
    return float(np.nanmean(np.abs(np.asarray(target, np.float64) - point))) / denom


class ForecastScores:
    """Accumulates windows and reports the dataset figures (sums across windows, as GluonTS aggregates).

    ``add(target, samples, history, season)`` per window; ``summary()`` gives ``crps`` (normalised, from
    properscoring), ``wql`` (mean weighted quantile loss over ``quantiles``), ``mase`` (mean over windows),
    ``mae`` and ``nd`` (normalised deviation of the median) and the window count.
    """

    def __init__(self, quantiles=TSDIFF_QUANTILES):
        self.quantiles = tuple(quantiles)
        self.crps_sum = self.abs_sum = self.abs_err = 0.0
        self.points = 0
        self.ql = np.zeros(len(self.quantiles))
        self.mases: list[float] = []

    def add(self, target: np.ndarray, samples: np.ndarray, history: np.ndarray, season: int) -> dict:
        """Score one window; returns its own figures."""
        y = np.asarray(target, np.float64)
        s = _samples(samples, y)
        ok = ~np.isnan(y)
        crps = crps_points(y, s)
        qs = np.quantile(s, self.quantiles, axis=0)
        ql = np.array([quantile_loss(y, qs[i], q) for i, q in enumerate(self.quantiles)])
        median = np.median(s, axis=0)
        abs_y = float(np.abs(y[ok]).sum())
        win = {"crps": float(crps[ok].sum()), "abs_target": abs_y, "mase": mase(y, median, history, season),
               "abs_error": float(np.abs(y[ok] - median[ok]).sum()), "points": int(ok.sum())}
        self.crps_sum += win["crps"]
        self.abs_sum += abs_y
        self.abs_err += win["abs_error"]
        self.points += win["points"]
        self.ql += ql
        self.mases.append(win["mase"])
        return win

    def summary(self) -> dict:
        denom = self.abs_sum if self.abs_sum > 0 else float("nan")
        m = np.array(self.mases, dtype=np.float64)
        return {"crps": self.crps_sum / denom, "wql": float(np.mean(self.ql / denom)),
                "mase": float(np.nanmean(m)) if np.isfinite(m).any() else float("nan"),
                "mae": self.abs_err / max(self.points, 1), "nd": self.abs_err / denom,
                "windows": len(self.mases), "points": self.points}


__all__ = ["TSDIFF_QUANTILES", "crps_points", "quantile_loss", "seasonal_error", "mase", "ForecastScores"]
