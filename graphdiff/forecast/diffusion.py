"""Forecasting with one unconditional diffusion model on the path graph, by observation self-guidance (TSDiff).

A model trained on windows of ``L + H`` steps (:class:`~graphdiff.data.series_windows.SeriesWindows`) forecasts
a window by sampling it whole while the observed context steers every denoising step
(``pipe.sample(n, guide="self", observed=..., observed_mask=...)``, :mod:`graphdiff.guidance.self_guidance`):
Kollovieh et al., "Predict, Refine, Synthesize: Self-Guiding Diffusion Models for Probabilistic Time Series
Forecasting", NeurIPS 2023, Sec. 3.1. The context is scaled by its own mean absolute value, the samples are mapped
back with the same scale (:class:`~graphdiff.adapters.series.TimeSeriesPath`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import ConfigError, DataError


class DiffusionForecaster:
    """A forecaster (``f(history, horizon, *, season, num_samples, seed) -> [S, H, C]``) from a trained pipeline.

    Args:
        pipe: a :class:`~graphdiff.pipeline.GraphDiffusionPipeline` whose schema is a ``path`` fixed graph, or what
            ``from_pretrained`` loads one from (a folder, a bundled model's name such as ``"monthly-tsdiff"``).
        scale: the self-guidance scale (TSDiff reports it per dataset); default: the model's
            ``sample.self_guidance`` scale (what ``graphdiff models pack`` chose on validation windows), else 1.
        variant: ``"quantile"`` (sample ``i`` guided at level ``(i + 0.5) / S``) or ``"mse"``; default: the
            model's, else ``"quantile"``.
        replace: feed the network the observed context noised to each step's level
            (:mod:`graphdiff.guidance.self_guidance`); default: the model's, else no.
        steps: sampling steps (default: the model's).
    """

    def __init__(self, pipe, *, scale: float | None = None, variant: str | None = None, steps: int | None = None,
                 batch_size: int | None = None, replace: bool | None = None):
        if isinstance(pipe, (str, bytes)) or hasattr(pipe, "__fspath__"):
            pipe = load_forecast_model(pipe)
        from ..adapters import adapter_from_schema

        self.pipe = pipe
        self.path = adapter_from_schema(pipe.schema)
        if getattr(self.path, "kind", "") != "path":
            raise ConfigError(f"forecasting needs a time-series model (path graph); this one is "
                              f"{getattr(self.path, 'kind', '?')!r}")
        from ..guidance.self_guidance import self_guidance_defaults

        variant, scale, replace = self_guidance_defaults(pipe, variant, scale, fallback="quantile", replace=replace)
        self.scale, self.variant, self.steps, self.batch_size = float(scale), variant, steps, batch_size
        self.replace = replace
        self.__name__ = f"diffusion(self-guidance {variant}, scale {scale:g}{', replacement' if replace else ''})"
        self.last_cost: dict = {}

    @property
    def prediction_length(self) -> int:
        return self.path.prediction_length

    def __call__(self, history, horizon: int, *, season: int = 1, num_samples: int = 100, seed: int = 0):
        """Sample paths ``[S, H, C]``; a one-channel model forecasts each column of the history as its own series."""
        hist = np.asarray(history, np.float64).reshape(len(history), -1)
        if horizon != self.path.prediction_length:
            raise DataError(f"this model forecasts {self.path.prediction_length} steps (its prediction_length); "
                            f"--horizon {horizon} asked")
        if hist.shape[1] == self.path.channels:
            return self._forecast(hist, horizon, season, num_samples, seed)
        if self.path.channels != 1:
            raise DataError(f"this model has {self.path.channels} channels; the context has {hist.shape[1]}")
        return np.concatenate([self._forecast(hist[:, [c]], horizon, season, num_samples, seed)
                               for c in range(hist.shape[1])], axis=2)

    def _context(self, hist: np.ndarray) -> np.ndarray:
        """The last ``context_length`` steps (NaN in front of a short history), checked to hold an observation."""
        need = self.path.context_length
        ctx = hist[-need:]
        if len(ctx) < need:  # a short history: the missing start is unobserved
            if len(ctx) < need // 2:  # a forecast from under half the window the model reads: say so
                warnings.warn(f"the context has {len(ctx)} steps; the model reads {need}, and the missing "
                              f"{need - len(ctx)} are treated as unobserved, so the forecast rests on little data",
                              UserWarning, stacklevel=4)
            ctx = np.concatenate([np.full((need - len(ctx), hist.shape[1]), np.nan), ctx])
        seen = np.isfinite(ctx)
        if not seen.any(axis=0).all():
            empty = "they hold" if hist.shape[1] == 1 else f"column {int(np.argmin(seen.any(axis=0)))} of them holds"
            raise DataError(f"the model reads the last {need} steps of the context and {empty} no observed value "
                            f"(all missing); give a context that ends with observations")
        if self.path.scaling == "mean" and (ctx[seen] < 0).any() and (ctx[seen] > 0).any():
            warnings.warn("the context crosses zero: this model scales each window by its mean absolute value "
                          "(TSDiff), which suits positive series; a model trained with scaling=std or diff suits "
                          "this one",
                          UserWarning, stacklevel=4)
        return ctx

    def _forecast(self, hist, horizon, season, num_samples, seed):
        ctx = self._context(hist)
        values, known, scale = self.path.forecast_observation(torch.tensor(ctx[None], dtype=torch.float32))
        state = self.pipe.sample(num_samples, guide="self", observed=values[0], observed_mask=known[0], seed=seed,
                                 steps=self.steps, batch_size=self.batch_size, progress=False,
                                 guide_options={"variant": self.variant, "scale": self.scale,
                                                "replace": self.replace})
        self.last_cost = dict(getattr(self.pipe.last_guidance, "cost", {}) or {})
        out = self.path.from_state(state, scale.expand(num_samples, -1, -1))
        return out[:, -horizon:, :].double().numpy()


class RefinedForecaster(DiffusionForecaster):
    """TSDiff's refinement (Kollovieh et al. 2023, Sec. 3.2) of a base forecaster's sample paths: each base path,
    with the observed context in front, is moved by a few gradient steps on the diffusion model's prior energy plus
    the observation loss (:func:`graphdiff.guidance.self_guidance.refine`), so the model corrects the base's shape
    while the context pins it.

    Args:
        pipe: as :class:`DiffusionForecaster`.
        base: the base forecaster (a name of :mod:`graphdiff.forecast.baselines`, e.g. ``"ets"``, or a callable).
        iterations, step_size, temperature: the refinement's (``temperature = 0``: MAP refinement of each path).
        sigma_max, sigma_min: the refinement's noise ladder (default: 2 and 0.1 times the model's ``sigma_data``).
    """

    def __init__(self, pipe, *, base="ets", iterations: int = 20, step_size: float = 0.05, temperature: float = 0.0,
                 batch_size: int | None = None, sigma_max: float | None = None, sigma_min: float | None = None):
        super().__init__(pipe, scale=1.0, variant="mse", batch_size=batch_size)
        from .baselines import get_forecaster

        self.base = get_forecaster(base) if isinstance(base, str) else base
        self.base_name = base if isinstance(base, str) else getattr(base, "__name__", "base")
        self.iterations, self.step_size, self.temperature = int(iterations), float(step_size), float(temperature)
        self.sigma_max, self.sigma_min = sigma_max, sigma_min
        self.__name__ = f"diffusion refinement of {self.base_name} ({self.iterations} steps)"

    def _forecast(self, hist, horizon, season, num_samples, seed):
        from ..guidance.self_guidance import refine

        ctx = self._context(hist)
        paths = np.asarray(self.base(hist, horizon, season=season, num_samples=num_samples, seed=seed), np.float64)
        paths = paths.reshape(num_samples, horizon, -1)
        values, known, scale = self.path.forecast_observation(torch.tensor(ctx[None], dtype=torch.float32))
        window = np.concatenate([np.repeat(ctx[None], num_samples, 0), paths], 1)
        # unobserved context steps: the refinement fills them, from 0 (a level) or, for a differencing model, from
        # the last observed value (a 0 there would be a jump of the whole level)
        window = _carry_forward(window) if self.path.lag else np.where(np.isnan(window), 0.0, window)
        base_state = self.path.to_state(torch.tensor(window, dtype=torch.float32),
                                        scale=scale.expand(num_samples, -1, -1)).x
        g = refine(self.pipe, base_state, values.expand(num_samples, -1, -1), known.expand(num_samples, -1, -1),
                   iterations=self.iterations, step_size=self.step_size, temperature=self.temperature, seed=seed,
                   sigma_max=self.sigma_max, sigma_min=self.sigma_min)
        self.last_cost = dict(g.cost)
        out = self.path.from_state(g.state, scale.expand(num_samples, -1, -1))
        return out[:, -horizon:, :].double().numpy()


def _carry_forward(window: np.ndarray) -> np.ndarray:
    """``[S, T, C]`` with each NaN replaced by the last value before it along ``T`` (the first value after it at the
    start; 0 where a column holds none)."""
    from .baselines import fill_forward

    out = np.zeros_like(window, dtype=np.float64)
    for i in range(window.shape[0]):
        for c in range(window.shape[2]):
            f = fill_forward(window[i, :, c])  # leading NaNs dropped: the first value stands in for them
            if len(f):
                out[i, :, c] = np.concatenate([np.full(window.shape[1] - len(f), f[0]), f])
    return out


def load_forecast_model(folder):
    """A pipeline from a model folder, with a one-line error when the engine or the folder is not usable."""
    try:
        from ..adapters.series import TimeSeriesPath  # noqa: F401  (registers the path adapter)
        from ..pipeline import GraphDiffusionPipeline
    except ImportError as exc:  # the fixed-graph engine (graphdiff.adapters) is not in this build
        raise ConfigError(f"--model needs the fixed-graph diffusion engine (graphdiff.adapters), missing here: "
                          f"{exc}") from None
    return GraphDiffusionPipeline.from_pretrained(folder)


__all__ = ["DiffusionForecaster", "RefinedForecaster", "load_forecast_model"]
