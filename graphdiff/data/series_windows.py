"""A time series as a training set of windows on the path graph (:class:`~graphdiff.adapters.series.TimeSeriesPath`).

TSDiff trains one unconditional model on windows of ``context_length + prediction_length`` steps cut from the
part of the series before the test windows; forecasting then guides it with the observed context. ``train`` holds
those windows (stride 1 by default; windows with a missing value are dropped unless none is complete); ``test``
holds the rolling test windows (context and target) of :func:`graphdiff.data.series.evaluation_windows`; there is
no ``val`` split unless ``holdout`` keeps the last windows before the test part out of training
(:func:`holdout_series`). Each window is scaled by its own context (the adapter's mean scaling, or with
``scaling="std"`` its standardisation, with ``scaling="diff"`` / ``"sdiff"`` its first / seasonal differences).

The datasets give the trainer what it reads from a graph dataset: ``len``, ``batch(indices)``, ``split(name)``,
``num_nodes()``, ``schema``, ``name``, ``info``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from ..state import GraphState
from .series import TimeSeries, evaluation_windows, load_series, training_windows

SPLITS = ("train", "val", "test")


class SeriesWindows:
    """Windows of one series for diffusion training and forecasting.

    Args:
        series: a built-in series name, a ``.csv`` path or a :class:`TimeSeries`.
        split: ``"train"``, ``"val"`` (empty), ``"test"`` or ``None`` (train and test).
        prediction_length, context_length: override the series' forecast task.
        stride: steps between consecutive training windows.
        lags: lag edges of the path graph (default ``(1, season)``).
        scaling: how each window is normalised by its context, ``"mean"`` (TSDiff), ``"std"``, ``"diff"``
            (first differences) or ``"sdiff"`` (seasonal differences)
            (:class:`~graphdiff.adapters.series.TimeSeriesPath`).
        holdout: keep the last ``holdout`` prediction lengths before the test windows out of every training window;
            they become the ``val`` split (rolling windows like the test ones), so a choice made on them (a
            guidance scale) is made out of sample. 0 (default): train on everything before the test windows,
            ``val`` empty.
    """

    kind = "graph"

    def __init__(self, series, root=None, split: str | None = None, *, prediction_length: int | None = None,
                 context_length: int | None = None, stride: int = 1, lags=None, holdout: int = 0,
                 scaling: str = "mean"):
        from ..adapters.series import TimeSeriesPath

        ts = series if isinstance(series, TimeSeries) else load_series(series)
        if prediction_length or context_length:
            ts = ts.with_task(prediction_length=prediction_length, context_length=context_length)
        check_window_options(ts.name, stride, holdout)
        task = ts.task
        self.series, self.task, self.name = ts, task, ts.name
        train, dropped = complete_windows(training_windows(ts, task, int(stride), holdout))
        if not len(train):
            raise DataError(f"{ts.name}: no training window of {task.context_length} + {task.prediction_length} "
                            f"steps before the test windows ({len(ts)} points); lower the context length")
        val = _rolling_windows(holdout_series(ts, holdout)) if holdout else train[:0]
        self.windows = {"train": train.astype(np.float32), "val": val.astype(np.float32),
                        "test": _rolling_windows(ts).astype(np.float32)}
        self.path = TimeSeriesPath(task.context_length + task.prediction_length, ts.values.shape[1], task.season,
                                   lags, prediction_length=task.prediction_length, scaling=scaling)
        self.schema = self.path.schema(len(train))
        self.info = {"series": ts.name, "points": len(ts), "frequency": ts.freq, "season": task.season,
                     "prediction_length": task.prediction_length, "context_length": task.context_length,
                     "test_windows": task.test_windows, "stride": int(stride), "holdout": holdout, "scaling": scaling,
                     "dropped_incomplete": dropped}
        if split is not None and split not in SPLITS:
            raise DataError(f"{ts.name}: unknown split {split!r}; choose from {list(SPLITS)}")
        self._split = split

    def _data(self) -> np.ndarray:
        if self._split is None:
            return np.concatenate([self.windows["train"], self.windows["test"]])
        return self.windows[self._split]

    def split(self, split: str) -> "SeriesWindows":
        if split not in SPLITS:
            raise DataError(f"{self.name}: unknown split {split!r}; choose from {list(SPLITS)}")
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._split = split
        return view

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.windows.items()}

    def __len__(self) -> int:
        return len(self._data())

    def num_nodes(self) -> np.ndarray:
        return np.full(len(self), self.path.n_nodes, dtype=np.int64)

    def num_edges(self) -> np.ndarray:
        """Undirected lag edges of each window's path graph (the same for every window)."""
        return np.full(len(self), len(self.path.edge_list()), dtype=np.int64)

    def arrays(self) -> np.ndarray:
        """This split's windows ``[W, L + H, C]`` in the data's units (NaN = missing)."""
        return self._data()

    def batch(self, indices, max_nodes: int | None = None) -> GraphState:
        return self.path.to_state(torch.from_numpy(self._data()[np.asarray(indices, dtype=np.int64)]))

    def __getitem__(self, i: int) -> GraphState:
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: index {i} out of range for {len(self)} windows")
        return self.batch([i % len(self)])

    def loader(self, batch_size: int = 32, shuffle: bool = True, generator=None, drop_last: bool = False):
        return torch.utils.data.DataLoader(range(len(self)), batch_size=batch_size, shuffle=shuffle,
                                           generator=generator, drop_last=drop_last, collate_fn=self.batch)

    def summary_lines(self) -> list[str]:
        """What ``graphdiff datasets info`` prints: the card's source and split rule."""
        card = self.series.card
        i = self.info
        out = [f"series {i['series']}: {i['points']} points, frequency {i['frequency']}, season {i['season']}, "
               f"prediction_length {i['prediction_length']}, context_length {i['context_length']}, "
               f"{i['test_windows']} test windows",
               f"path graph: {self.path.n_nodes} nodes, edge kinds {', '.join(self.path.edge_kinds)}"]
        if card:
            out += [f"source: {card['package']} ({card['loader']})", f"split_rule: {card['split']['rule']}"]
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, split={self._split!r}, windows={len(self)})"


def _named(series: str) -> type[SeriesWindows]:
    """A dataset class for one built-in series (what the dataset registry instantiates by name)."""

    def __init__(self, root=None, split: str | None = None, *, prediction_length: int | None = None,
                 context_length: int | None = None, stride: int = 1, lags=None, holdout: int = 0,
                 scaling: str = "mean", download: bool = True, force_reload: bool = False):
        SeriesWindows.__init__(self, series, root, split, prediction_length=prediction_length,
                               context_length=context_length, stride=stride, lags=lags, holdout=holdout,
                               scaling=scaling)

    return type(f"{series.title().replace('_', '')}Windows", (SeriesWindows,), {"__init__": __init__,
                                                                                "__doc__": SeriesWindows.__doc__})


Taylor, Wineind, AirPassengers, Sunspots, MSFT, ElecEquip, Ausbeer, Woolyrnq, CO2 = (
    _named(n) for n in ("taylor", "wineind", "airpassengers", "sunspots", "msft", "elec_equip", "ausbeer", "woolyrnq",
                        "co2"))

__all__ = ["SeriesWindows", "Taylor", "Wineind", "AirPassengers", "Sunspots", "MSFT", "ElecEquip", "Ausbeer",
           "Woolyrnq", "CO2", "holdout_series"]


def check_window_options(where: str, stride, holdout) -> None:
    """One-line errors for a window dataset's ``stride`` (>= 1) and ``holdout`` (an integer >= 0)."""
    if int(stride) < 1:
        raise DataError(f"{where}: stride must be >= 1, got {stride}")
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0:
        raise DataError(f"{where}: holdout must be an integer >= 0, got {holdout!r}")


def complete_windows(windows: np.ndarray) -> tuple[np.ndarray, int]:
    """The windows without a missing value, and how many were dropped (all are kept when none is complete)."""
    complete = ~np.isnan(windows).any(axis=(1, 2)) if len(windows) else np.zeros(0, bool)
    if not complete.any():
        return windows, 0
    return windows[complete], int((~complete).sum())


def _rolling_windows(ts: TimeSeries) -> np.ndarray:
    """The context + target of each of ``ts``'s evaluation windows, ``[W, L + H, C]``."""
    L = ts.task.context_length
    return np.stack([np.concatenate([w.context(L), w.target]) for w in evaluation_windows(ts, ts.task)])


def holdout_series(ts: TimeSeries, windows: int) -> TimeSeries:
    """``ts`` cut before its test windows, with its last ``windows`` prediction lengths as its own test windows: the
    validation series of a model trained with ``holdout=windows`` (or, with any model, the last ``windows`` before
    the test part)."""
    from dataclasses import replace

    task = ts.task
    end = len(ts) - task.test_windows * task.prediction_length
    cut = replace(ts, values=ts.values[:end], timestamps=None if ts.timestamps is None else ts.timestamps[:end])
    return cut.with_task(test_windows=int(windows))
