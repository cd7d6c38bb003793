"""Classical forecast baselines on the same windows as the diffusion model: seasonal naive, ETS and ARIMA.

Every forecaster is a callable ``f(history [T, C], horizon, *, season, num_samples, seed) -> [S, H, C]`` sample
paths (a point forecast repeats its one path). Channels are forecast independently. Missing values (NaN) in the
history are carried forward (leading ones dropped) before fitting.

- ``seasonal_naive``: ``y_{T+h} = y_{T+h-m}`` (the last season repeated; ``m = 1``: the last value). A point
  forecast, so its CRPS is its absolute error, as in GluonTS's ``SeasonalNaivePredictor`` rows of TSDiff.
- ``ets``: statsmodels ``ETSModel`` with additive error, damped additive trend and additive season (no season when
  the history holds fewer than two), fitted by maximum likelihood (initial states too, except for seasons
  longer than 12, which start from statsmodels' heuristic initialisation); sample paths from
  ``simulate(anchor="end")``.
- ``arima``: the seasonal "airline" form: the history is differenced once and seasonally once
  (``w_t = (1 - B)(1 - B^m) y_t``), an ARMA(1, 1) with a seasonal MA(1) term at lag ``m`` (for ``m <= 24``; larger
  seasons keep the differencing and drop the seasonal MA term, whose ``m``-dimensional state makes statsmodels'
  Kalman filter minutes slow per window) is fitted with statsmodels ``SARIMAX``, ``w`` paths are simulated and
  integrated back. Without a season (``m = 1`` or a short history) it is ARIMA(1, 1, 1).

A baseline that fails to fit (statsmodels raises, or returns non-finite paths) falls back to the seasonal naive
forecast for that window; :func:`fallbacks` counts them so that results can say so.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Callable, Protocol

import numpy as np

from ..checks import check_choice
from ..errors import ConfigError

_FALLBACKS: Counter = Counter()
SEASONAL_MA_MAX = 24
ETS_ESTIMATED_SEASON_MAX = 12


class Forecaster(Protocol):
    def __call__(self, history: np.ndarray, horizon: int, *, season: int, num_samples: int,
                 seed: int) -> np.ndarray: ...


def fill_forward(y: np.ndarray) -> np.ndarray:
    """``y`` (``[T]``) with NaNs replaced by the last observed value and leading NaNs dropped."""
    y = np.asarray(y, np.float64)
    ok = ~np.isnan(y)
    if not ok.any():
        return y[:0]
    idx = np.where(ok, np.arange(len(y)), 0)
    np.maximum.accumulate(idx, out=idx)
    return y[idx][np.argmax(ok):]


def _seasonal_naive_1d(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    if len(y) == 0:
        return np.zeros(horizon)
    m = season if len(y) >= season else 1
    last = y[-m:]
    return np.array([last[h % m] for h in range(horizon)])


def seasonal_naive(history, horizon, *, season, num_samples=1, seed=0):
    """The last season repeated, as one path per channel, tiled to ``num_samples``."""
    h = np.asarray(history, np.float64).reshape(len(history), -1)
    path = np.stack([_seasonal_naive_1d(fill_forward(h[:, c]), horizon, season) for c in range(h.shape[1])], -1)
    return np.broadcast_to(path, (max(num_samples, 1), horizon, h.shape[1])).copy()


def _ets_1d(y, horizon, season, num_samples, seed):
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    seasonal = season > 1 and len(y) >= 2 * season
    # long seasons: m initial seasonal states estimated by maximum likelihood make the fit unstable (taylor,
    # m = 48: smoothing weights near 1, exploding paths); statsmodels' heuristic initialisation instead
    init = "heuristic" if seasonal and season > ETS_ESTIMATED_SEASON_MAX and len(y) >= 10 + 2 * season \
        else "estimated"
    model = ETSModel(y, error="add", trend="add", damped_trend=True, seasonal="add" if seasonal else None,
                     seasonal_periods=season if seasonal else None, initialization_method=init)
    res = model.fit(disp=False)
    paths = res.simulate(horizon, repetitions=num_samples, anchor="end", rng=np.random.default_rng(seed))
    return np.asarray(paths, np.float64).reshape(horizon, num_samples).T


def _integrate(w: np.ndarray, y: np.ndarray, m: int) -> np.ndarray:
    """Undo ``w_t = (1 - B)(1 - B^m) y_t`` (``m = 0``: only ``1 - B``) for simulated ``w`` ``[S, H]``."""
    s, horizon = w.shape
    out = np.empty((s, len(y) + horizon))
    out[:, :len(y)] = y
    t0 = len(y)
    for h in range(horizon):
        t = t0 + h
        out[:, t] = out[:, t - 1] + w[:, h] + ((out[:, t - m] - out[:, t - m - 1]) if m else 0.0)
    return out[:, t0:]


def _arima_1d(y, horizon, season, num_samples, seed):
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    m = season if season > 1 and len(y) >= 3 * season + 2 else 0
    w = np.diff(y)
    if m:
        w = w[m:] - w[:-m]
    seasonal_order = (0, 0, 1, m) if m and m <= SEASONAL_MA_MAX else (0, 0, 0, 0)
    res = SARIMAX(w, order=(1, 0, 1), seasonal_order=seasonal_order, trend="n").fit(disp=False)
    rng = np.random.default_rng(seed)
    sims = res.simulate(horizon, repetitions=num_samples, anchor="end", rng=rng)
    sims = np.asarray(sims, np.float64).reshape(horizon, num_samples).T
    return _integrate(sims, y, m)


def _statsmodels(fit_1d: Callable, label: str):
    def forecaster(history, horizon, *, season, num_samples=100, seed=0):
        h = np.asarray(history, np.float64).reshape(len(history), -1)
        out = np.empty((num_samples, horizon, h.shape[1]))
        for c in range(h.shape[1]):
            y = fill_forward(h[:, c])
            paths = None
            if len(y) >= 8:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        with np.errstate(all="ignore"):
                            paths = fit_1d(y, horizon, season, num_samples, seed + c)
                except (ValueError, np.linalg.LinAlgError, IndexError):
                    paths = None
            if paths is None or not np.isfinite(paths).all():
                _FALLBACKS[label] += 1
                paths = np.broadcast_to(_seasonal_naive_1d(y, horizon, season), (num_samples, horizon))
            out[:, :, c] = paths
        return out
    forecaster.__name__ = label
    return forecaster


ets = _statsmodels(_ets_1d, "ets")
arima = _statsmodels(_arima_1d, "arima")

BASELINES: dict[str, Forecaster] = {"seasonal_naive": seasonal_naive, "ets": ets, "arima": arima}


def get_forecaster(name: str) -> Forecaster:
    """A baseline by name: ``seasonal_naive``, ``ets`` or ``arima``."""
    return BASELINES[check_choice(name.replace("-", "_"), BASELINES, "baseline forecaster", error=ConfigError)]


def fallbacks() -> dict[str, int]:
    """How many channel-windows each baseline answered with the seasonal naive fallback (this process)."""
    return dict(_FALLBACKS)


__all__ = ["Forecaster", "BASELINES", "seasonal_naive", "ets", "arima", "get_forecaster", "fill_forward", "fallbacks"]
