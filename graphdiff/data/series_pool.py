"""Several time series as one training set: the windows of every member series on one path graph.

TSDiff (Kollovieh et al. 2023) trains one unconditional model per *dataset*, a collection of related series, not
one per series. :class:`SeriesPool` does that for any list of series that share a frequency (season length) and a
forecast task (``context_length`` and ``prediction_length`` are the pool's; each member keeps its own number of
test windows): ``train`` holds every member's training windows (each cut from the part of that member before its
own test windows, so no member's test values are trained on), ``test`` every member's rolling test windows, ``val``
with ``holdout`` the windows each member holds out. Each window is scaled by its own context as for one series
(``scaling``, :class:`~graphdiff.adapters.series.TimeSeriesPath`), so series of different levels share one model.

The model forecasts any series of the pool (or any other series of its frequency) from the pool's context length:
``DiffusionForecaster`` reads the last ``context_length`` points of whatever history it is given.

The built-in pool ``monthly`` (card ``datasets/monthly.yaml``) holds the three monthly series whose cards share
``prediction_length`` 12; ``dataset_options.series`` replaces its members (built-in names or ``.csv`` paths).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .base import load_card
from .series import TimeSeries, load_series, training_windows
from .series_windows import (SPLITS, SeriesWindows, _rolling_windows, check_window_options, complete_windows,
                             holdout_series)


class SeriesPool(SeriesWindows):
    """Windows of several series for one diffusion model.

    Args:
        series: the members: built-in names, ``.csv`` paths or :class:`TimeSeries` (at least one).
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` (train and test).
        prediction_length, context_length: the pool's task (default: the first member's).
        stride, lags, holdout, scaling: as :class:`~graphdiff.data.series_windows.SeriesWindows`, for every
            member.
        name: the pool's name (default: the members' names joined by ``+``).

    ``info["members"]`` counts each member's training windows.
    """

    def __init__(self, series, root=None, split: str | None = None, *, prediction_length: int | None = None,
                 context_length: int | None = None, stride: int = 1, lags=None, holdout: int = 0,
                 scaling: str = "mean", name: str | None = None):
        from ..adapters.series import TimeSeriesPath

        if isinstance(series, (str, TimeSeries)) or not len(series):
            raise DataError(f"a series pool needs a list of series (names or .csv paths), got {series!r}")
        members = [s if isinstance(s, TimeSeries) else load_series(s) for s in series]
        first = members[0]
        if first.task is None and not (prediction_length and context_length):
            raise DataError(f"{first.name}: has no forecast task; give the pool's prediction_length and "
                            f"context_length")
        h = int(prediction_length or first.task.prediction_length)
        ctx = int(context_length or first.task.context_length)
        check_window_options("series pool", stride, holdout)
        names = [m.name for m in members]
        if len(set(names)) < len(names):
            raise DataError(f"series pool: a series is listed twice: {names}")
        self.members = [m.with_task(prediction_length=h, context_length=ctx) for m in members]
        task = self.members[0].task
        for m in self.members[1:]:
            if m.task.season != task.season or m.values.shape[1] != first.values.shape[1]:
                raise DataError(f"series pool: {m.name} has season {m.task.season} and {m.values.shape[1]} "
                                f"channel(s); {first.name} has season {task.season} and {first.values.shape[1]}: "
                                f"a pool's series share both")
        parts, counts = [], {}
        for m in self.members:
            w, _ = complete_windows(training_windows(m, m.task, int(stride), holdout))
            counts[m.name] = int(len(w))
            if len(w):
                parts.append(w)
        if not parts:
            raise DataError(f"series pool {names}: no complete training window of {ctx} + {h} steps before any "
                            f"member's test windows; lower the context length")
        train = np.concatenate(parts)
        val = (np.concatenate([_rolling_windows(holdout_series(m, holdout)) for m in self.members]) if holdout
               else train[:0])
        self.windows = {"train": train.astype(np.float32), "val": val.astype(np.float32),
                        "test": np.concatenate([_rolling_windows(m) for m in self.members]).astype(np.float32)}
        self.series, self.task, self.name = self.members[0], task, name or "+".join(names)
        self.path = TimeSeriesPath(ctx + h, first.values.shape[1], task.season, lags, prediction_length=h,
                                   scaling=scaling)
        self.schema = self.path.schema(len(train))
        self.info = {"series": names, "members": counts, "frequency": first.freq, "season": task.season,
                     "prediction_length": h, "context_length": ctx,
                     "test_windows": {m.name: m.task.test_windows for m in self.members}, "stride": int(stride),
                     "holdout": holdout, "scaling": scaling}
        if split is not None and split not in SPLITS:
            raise DataError(f"{self.name}: unknown split {split!r}; choose from {list(SPLITS)}")
        self._split = split

    def summary_lines(self) -> list[str]:
        i = self.info
        return [f"series pool {self.name}: {len(self.members)} series, frequency {i['frequency']}, season "
                f"{i['season']}, prediction_length {i['prediction_length']}, context_length {i['context_length']}",
                "training windows per series: " + ", ".join(f"{k} {v}" for k, v in i["members"].items()),
                f"path graph: {self.path.n_nodes} nodes, edge kinds {', '.join(self.path.edge_kinds)}"]


class Monthly(SeriesPool):
    """The built-in monthly pool (card ``monthly``): its members, context and prediction lengths from the card;
    ``series`` (``dataset_options.series``) replaces the members, and ``info["series"]`` says which they were."""

    def __init__(self, root=None, split: str | None = None, *, series=None, prediction_length: int | None = None,
                 context_length: int | None = None, stride: int = 1, lags=None, holdout: int = 0,
                 scaling: str = "mean", download: bool = True, force_reload: bool = False):
        card = load_card("monthly")
        s = card["split"]
        super().__init__(list(series) if series is not None else list(card["members"]), root, split,
                         prediction_length=prediction_length or s["prediction_length"],
                         context_length=context_length or s["context_length"], stride=stride, lags=lags,
                         holdout=holdout, scaling=scaling,
                         name="monthly")  # the registry's name: what a checkpoint reloads


def pool_members(name: str) -> tuple[str, ...]:
    """The member series of a built-in pool (``()`` when ``name`` is not one)."""
    try:
        card = load_card(name)
    except DataError:
        return ()
    return tuple(card.get("members", ())) if card.get("kind") == "timeseries_pool" else ()


__all__ = ["SeriesPool", "Monthly", "pool_members"]
