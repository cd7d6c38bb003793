"""TimeSeriesPath: windows of a time series ``[B, L, C]`` as states on a fixed path graph with lag edges.

Time step ``t`` is node ``t``; its ``C`` channel values, scaled per window, are the node features ``x`` (the only
field a process diffuses). Edges are data: node ``t`` is joined to ``t - lag`` for every lag (by default 1 and the
season length ``m``; edge kind ``lag<k>``), symmetric as the fixed-graph contract asks (:mod:`graphdiff.adapters`).
``pos`` holds ``(2 t / (L - 1) - 1, 2 (t mod m) / m - 1, 0)``: where the step lies in the window and in the season
(window-relative, so that the template the sampler starts from is the same graph).

Scaling (TSDiff, Kollovieh et al. 2023, after GluonTS's ``MeanScaler``): each window and channel is divided by the
mean absolute value of its *observed context* (the first ``L - prediction_length`` steps, so the values to forecast
never set their own scale; 1 where nothing is observed or the mean is 0), then shifted by -1 (``center=True``) so
that a typical window sits around 0 as EDM's preconditioning assumes. :meth:`TimeSeriesPath.scale` returns the
scale, :meth:`to_state` and :meth:`from_state` take it so that a forecast is mapped back with its context's scale.
``scaling="std"`` standardises instead (GluonTS's ``StdScaler``): each window and channel minus the mean of its
observed context, divided by the context's standard deviation (1 where it is 0 or nothing is observed), so a series
whose moves are small against its level (a stock price) keeps them at unit size; :meth:`scale` then returns the
context's mean and standard deviation stacked, ``[B, 2, C]``.
``scaling="diff"`` diffuses first differences (ARIMA's ``d = 1``): node ``t`` holds ``data[t] - data[t - 1]``
(0 at ``t = 0``), divided by the mean absolute difference of the observed context, and a window is rebuilt by
summing them from its *last observed context value*, so a forecast starts where the context ends whatever the
model does with the context's differences. A random walk (a stock price) then diffuses its independent moves, not
its level. ``scaling="sdiff"`` does the same with seasonal differences ``data[t] - data[t - m]`` (SARIMA's
``D = 1``): each phase of the season is summed from its own last observed context value, so with a horizon of at
most one season every forecast step is the observed value one season earlier plus one diffused change, and no
error accumulates over the horizon. :meth:`scale` returns ``[B, 1 + 2k, C]`` (``k`` = the lag, 1 or ``m``): the
mean absolute difference, then per phase the anchor value and its step. Steps far from the anchors carry the summed
error of the model's differences, so differencing suits forecasting (the horizon starts at the anchors) more than
imputing a gap far back in the window, where mean or std scaling keeps each value on its own.

Missing values (NaN) become 0 in ``x``; :meth:`observation` says which values were observed. Variable lengths:
``lengths`` puts series of ``n < L`` steps on slots ``0..n-1`` and masks the rest (``mask``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..state import GraphState
from .base import FixedGraphAdapter, register_adapter


@register_adapter
class TimeSeriesPath(FixedGraphAdapter):
    """Series windows on the path graph with lag edges.

    Args:
        length: L, steps per window (nodes).
        channels: C, variables per step.
        season: m, the season length (a lag edge and the phase coordinate of ``pos``).
        lags: lags joined by edges (default ``(1, m)``, ``(1,)`` when ``m = 1``); each is its own edge kind.
        prediction_length: the last H steps of a window are the forecast part: the scale is taken from the steps
            before them.
        center: subtract 1 after scaling (mean scaling).
        scaling: ``"mean"`` (divide by the context's mean absolute value, TSDiff), ``"std"`` (subtract the
            context's mean, divide by its standard deviation), ``"diff"`` (first differences divided by the
            context's mean absolute difference, rebuilt from the last observed context value) or ``"sdiff"``
            (the same with differences at the season lag, each phase rebuilt from its last observed context value).

    Shapes:
        windows ``[B, L, C]`` (``[B, L]`` when C = 1); state ``x [B, L, C]``, ``e [B, L, L, 1 + len(lags)]``,
        ``pos [B, L, 3]``, ``mask [B, L]``; scale ``[B, 1, C]`` (``"std"``: ``[B, 2, C]``; ``"diff"``,
        ``"sdiff"``: ``[B, 1 + 2k, C]``, see :meth:`scale`).
    """

    kind = "path"

    def __init__(self, length: int, channels: int = 1, season: int = 1, lags=None, prediction_length: int = 0,
                 center: bool = True, scaling: str = "mean"):
        length, channels, season = int(length), int(channels), int(season)
        if min(length, channels, season) < 1:
            raise DataError(f"TimeSeriesPath needs length, channels, season >= 1, got {length}, {channels}, {season}")
        if not 0 <= int(prediction_length) < length:
            raise DataError(f"TimeSeriesPath prediction_length must be in [0, {length}), got {prediction_length}")
        lags = tuple(sorted({int(v) for v in (lags if lags is not None else (1, season))}))
        if not lags or lags[0] < 1 or lags[-1] >= length:
            raise DataError(f"TimeSeriesPath lags must lie in [1, {length - 1}], got {list(lags)}")
        self.n_nodes, self.channels, self.season, self.lags = length, channels, season, lags
        if scaling not in SCALINGS:
            raise DataError(f"TimeSeriesPath scaling must be one of {list(SCALINGS)}, got {scaling!r}")
        self.prediction_length, self.center, self.scaling = int(prediction_length), bool(center), scaling
        if scaling == "sdiff" and self.context_length <= season:
            raise DataError(f"TimeSeriesPath scaling 'sdiff' needs a context longer than one season ({season} steps), "
                            f"got {self.context_length}; lengthen the context (dataset_options.context_length) or "
                            "use --set dataset_options.scaling=mean")
        self.edge_kinds = tuple(f"lag{k}" for k in lags)

    @property
    def length(self) -> int:
        return self.n_nodes

    @property
    def context_length(self) -> int:
        return self.n_nodes - self.prediction_length

    def to_dict(self) -> dict:
        return {"adapter": self.kind, "length": self.n_nodes, "channels": self.channels, "season": self.season,
                "lags": list(self.lags), "prediction_length": self.prediction_length, "center": self.center,
                "scaling": self.scaling}

    def channel_names(self) -> tuple[str, ...]:
        return ("value",) if self.channels == 1 else tuple(f"value_{i}" for i in range(self.channels))

    # ---- geometry ------------------------------------------------------------------------------------
    def edge_list(self) -> Tensor:
        rows = []
        for kind, lag in enumerate(self.lags, start=1):
            t = torch.arange(lag, self.n_nodes)
            rows.append(torch.stack([t, t - lag, torch.full_like(t, kind)], 1))
        return torch.cat(rows)

    def positions(self) -> Tensor:
        t = torch.arange(self.n_nodes, dtype=torch.float32)
        rel = 2 * t / max(self.n_nodes - 1, 1) - 1
        phase = 2 * (t % self.season) / self.season - 1
        return torch.stack([rel, phase, torch.zeros_like(t)], 1)

    # ---- data ----------------------------------------------------------------------------------------
    def _check(self, data) -> Tensor:
        data = torch.as_tensor(np.asarray(data, dtype=np.float32) if not torch.is_tensor(data) else data)
        data = data.float()
        if data.dim() == 2 and self.channels == 1:
            data = data.unsqueeze(-1)
        if data.dim() != 3 or data.shape[1] != self.n_nodes or data.shape[2] != self.channels:
            raise DataError(f"TimeSeriesPath wants windows [B, {self.n_nodes}, {self.channels}], got "
                            f"{list(data.shape)}")
        return data

    def _nodes(self, data: Tensor) -> Tensor:
        return self._check(data)

    def _length_mask(self, b: int, lengths) -> Tensor:
        if lengths is None:
            return torch.ones(b, self.n_nodes, dtype=torch.bool)
        lengths = torch.as_tensor(lengths, dtype=torch.long).reshape(-1)
        if len(lengths) != b or int(lengths.min()) < 1 or int(lengths.max()) > self.n_nodes:
            raise DataError(f"TimeSeriesPath lengths must be {b} values in [1, {self.n_nodes}], got "
                            f"{lengths.tolist()}")
        return torch.arange(self.n_nodes).unsqueeze(0) < lengths.unsqueeze(1)

    def scale(self, data, known=None, lengths=None) -> Tensor:
        """``[B, 1, C]`` mean absolute observed value of each window's context (1 where none is observed or the
        mean is 0); the context is the first ``L - prediction_length`` steps (of ``lengths`` when given). With
        ``scaling="std"``: ``[B, 2, C]``, the context's mean and standard deviation (1 where it is 0).
        ``scaling="diff"`` / ``"sdiff"``: ``[B, 1 + 2k, C]`` for the lag ``k`` (1 / the season): the mean absolute
        difference between observed context values ``k`` steps apart (1 where none or 0), then for each phase
        ``r < k`` the last observed context value at a step ``= r (mod k)`` and that step (a phase with none:
        the last observed context value of any phase, at the phase's last context step; 0 where nothing is
        observed)."""
        data = self._check(data)
        seen = ~torch.isnan(data)
        if known is not None:
            seen = seen & torch.as_tensor(known, dtype=torch.bool).reshape(*data.shape[:2], -1).expand_as(data)
        n = self._length_mask(data.shape[0], lengths).sum(1) if lengths is not None else \
            torch.full((data.shape[0],), self.n_nodes)
        ctx = torch.arange(self.n_nodes).unsqueeze(0) < (n - self.prediction_length).clamp(min=1).unsqueeze(1)
        seen = seen & ctx.unsqueeze(-1)
        if self.scaling in DIFFERENCING:
            return self._diff_scale(data, seen, ctx)
        if self.scaling == "std":
            count = seen.sum(1, keepdim=True)
            loc = torch.where(seen, data, torch.zeros_like(data)).sum(1, keepdim=True) / count.clamp(min=1)
            dev = torch.where(seen, data - loc, torch.zeros_like(data))
            sd = (dev.square().sum(1, keepdim=True) / count.clamp(min=1)).sqrt()
            return torch.cat([loc, torch.where(sd > 0, sd, torch.ones_like(sd))], 1)
        return _mean_abs(data, seen)

    @property
    def lag(self) -> int:
        """The differencing lag: 1 (``"diff"``), the season (``"sdiff"``), 0 (no differencing)."""
        return {"diff": 1, "sdiff": self.season}.get(self.scaling, 0)

    def _differences(self, data: Tensor) -> Tensor:
        """``data[t] - data[t - k]`` along the steps, NaN for ``t < k`` and next to a missing value."""
        k = self.lag
        return torch.cat([torch.full_like(data[:, :k], float("nan")), data[:, k:] - data[:, :-k]], 1)

    def _pairs_seen(self, seen: Tensor) -> Tensor:
        """Where a difference is observed: both of its values are (never for ``t < k``)."""
        k = self.lag
        return torch.cat([torch.zeros_like(seen[:, :k]), seen[:, k:] & seen[:, :-k]], 1)

    def _diff_scale(self, data: Tensor, seen: Tensor, ctx: Tensor) -> Tensor:
        k = self.lag
        s = _mean_abs(self._differences(data), self._pairs_seen(seen))
        steps = torch.arange(self.n_nodes).view(1, -1, 1).expand_as(data)
        known = torch.where(seen, data, torch.zeros_like(data))
        latest = torch.where(seen, steps, torch.full_like(steps, -1)).amax(1, keepdim=True)  # [B, 1, C]
        level = torch.gather(known, 1, latest.clamp(min=0)) * (latest >= 0)
        ctx_steps = torch.where(ctx.unsqueeze(-1).expand_as(data), steps, torch.full_like(steps, -1))
        values, at = [], []
        for r in range(k):  # per phase: the last observed context step of that phase
            phase = steps % k == r
            last = torch.where(seen & phase, steps, torch.full_like(steps, -1)).amax(1, keepdim=True)  # [B, 1, C]
            # a phase with no observed context value: the last observed level, at the phase's last context step
            fallback = torch.where(phase, ctx_steps, torch.full_like(steps, -1)).amax(1, keepdim=True).clamp(min=r)
            values.append(torch.where(last >= 0, torch.gather(known, 1, last.clamp(min=0)), level))
            at.append(torch.where(last >= 0, last, fallback).to(data.dtype))
        return torch.cat([s, *values, *at], 1)

    def _normalise(self, data: Tensor, scale) -> Tensor:
        if self.scaling in DIFFERENCING:
            s = torch.as_tensor(scale).float().reshape(data.shape[0], 1 + 2 * self.lag, -1)
            return self._differences(data) / s[:, :1]
        if self.scaling == "std":
            s = torch.as_tensor(scale).float().reshape(data.shape[0], 2, -1)
            return (data - s[:, :1]) / s[:, 1:]
        return data / torch.as_tensor(scale).float().reshape(data.shape[0], 1, -1) - (1.0 if self.center else 0.0)

    def _denormalise(self, x: Tensor, scale) -> Tensor:
        if self.scaling in DIFFERENCING:  # each phase: its differences summed outward from its anchor step
            k, (b, n, c) = self.lag, x.shape
            s = torch.as_tensor(scale, dtype=x.dtype, device=x.device).reshape(b, 1 + 2 * k, -1)
            inc = torch.cat([torch.zeros_like(x[:, :k]), x[:, k:]], 1) * s[:, :1]
            pad = -n % k
            total = torch.cat([inc, inc.new_zeros(b, pad, c)], 1).view(b, -1, k, c).cumsum(1).view(b, -1, c)[:, :n]
            phase = torch.arange(n, device=x.device) % k
            anchor, at = s[:, 1:1 + k][:, phase], s[:, 1 + k:][:, phase].round().long().clamp(0, n - 1)
            return anchor + total - torch.gather(total, 1, at)
        if self.scaling == "std":
            s = torch.as_tensor(scale, dtype=x.dtype, device=x.device).reshape(x.shape[0], 2, -1)
            return x * s[:, 1:] + s[:, :1]
        s = torch.as_tensor(scale, dtype=x.dtype, device=x.device).reshape(x.shape[0], 1, -1)
        return (x + (1.0 if self.center else 0.0)) * s

    def to_state(self, data, y: Tensor | None = None, scale: Tensor | None = None, lengths=None) -> GraphState:
        """Windows ``[B, L, C]`` (NaN = missing) -> state with ``x = data / scale - 1`` (``center``; with
        ``scaling="std"``: ``(data - mean) / std``; ``"diff"``, ``"sdiff"``: the differences over their context
        scale); NaN and padded steps are 0. ``scale`` defaults to :meth:`scale` of the windows."""
        data = self._check(data)
        b = data.shape[0]
        x = self._normalise(data, self.scale(data, lengths=lengths) if scale is None else scale)
        mask = self._length_mask(b, lengths)
        x = torch.where(torch.isnan(x) | ~mask.unsqueeze(-1), torch.zeros_like(x), x)
        t = self.template(b)
        return GraphState(x=x, e=t.e, mask=mask, pos=t.pos, y=y)

    def from_state(self, state: GraphState, scale: Tensor | None = None) -> Tensor:
        """State -> windows ``[B, L, C]`` in the data's units (``scale`` from :meth:`scale`; ``None``: the scaled
        values); padded steps are NaN."""
        x = state.x[..., : self.channels].float()
        if scale is not None:
            x = self._denormalise(x, scale)
        return torch.where(state.mask.unsqueeze(-1), x, torch.full_like(x, float("nan")))

    def observation(self, data, known=None, scale: Tensor | None = None, lengths=None) -> tuple[Tensor, Tensor]:
        """Scaled values and which are observed, ``([B, L, C] float, [B, L, C] bool)``: a value is unobserved where
        ``data`` is NaN, ``known`` (``[B, L]`` or ``[B, L, C]``) is False, or the step is padding."""
        data = self._check(data)
        seen = ~torch.isnan(data)
        if known is not None:
            seen = seen & torch.as_tensor(known, dtype=torch.bool).reshape(*data.shape[:2], -1).expand_as(data)
        if scale is None:
            scale = self.scale(data, known=seen, lengths=lengths)
        state = self.to_state(data, scale=scale, lengths=lengths)
        if self.scaling in DIFFERENCING:
            seen = self._pairs_seen(seen)
        return state.x, seen & state.mask.unsqueeze(-1)

    def forecast_observation(self, context, scale: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The observation of forecasting: ``context [B, L - H, C]`` followed by H unknown steps. Returns
        ``(values, known, scale)`` for ``pipe.sample(..., observed=values, observed_mask=known, guide="self")``."""
        ctx = torch.as_tensor(np.asarray(context, dtype=np.float32) if not torch.is_tensor(context) else context)
        ctx = ctx.float().reshape(ctx.shape[0], ctx.shape[1], -1)
        if ctx.shape[1] != self.context_length:
            raise DataError(f"TimeSeriesPath: context of {ctx.shape[1]} steps, the model's context_length is "
                            f"{self.context_length}")
        full = torch.cat([ctx, torch.full((ctx.shape[0], self.prediction_length, ctx.shape[2]), float("nan"))], 1)
        s = self.scale(full) if scale is None else scale
        values, known = self.observation(full, scale=s)
        return values, known, s


def _mean_abs(values: Tensor, seen: Tensor) -> Tensor:
    """``[B, 1, C]`` mean ``|value|`` over the ``seen`` steps (1 where none is seen or the mean is 0)."""
    count = seen.sum(1, keepdim=True)
    s = torch.where(seen, values.abs(), torch.zeros_like(values)).sum(1, keepdim=True) / count.clamp(min=1)
    return torch.where((count > 0) & (s > 0), s, torch.ones_like(s))


SCALINGS = ("mean", "std", "diff", "sdiff")
DIFFERENCING = ("diff", "sdiff")

__all__ = ["TimeSeriesPath", "SCALINGS"]
