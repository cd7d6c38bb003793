"""The windowed evaluation harness: one forecaster on the rolling test windows of one or more series.

``evaluate_forecaster(forecaster, series)`` forecasts every test window of ``series`` (GluonTS rolling windows as in
TSDiff, :func:`graphdiff.data.series.evaluation_windows`) from its history, draws ``num_samples`` paths, and scores
them with :class:`graphdiff.metrics.forecast.ForecastScores` (normalised CRPS from properscoring, mean weighted
quantile loss, MASE). ``evaluation_table`` does it for several forecasters and series and returns one row each.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..data.series import TimeSeries, evaluation_windows, load_series
from ..metrics.forecast import ForecastScores
from .baselines import get_forecaster


def evaluate_forecaster(forecaster, series, *, num_samples: int = 100, seed: int = 0, task=None,
                        history: int | None = None, keep_samples: bool = False) -> dict:
    """Score ``forecaster`` on the test windows of ``series``.

    Args:
        forecaster: a baseline name or a callable ``f(history, horizon, *, season, num_samples, seed) -> [S, H, C]``.
        series: a :class:`TimeSeries`, a built-in series name or a ``.csv`` path.
        task: a :class:`ForecastTask` replacing the series' own.
        history: points of history the forecaster sees before each window (default the task's
            ``baseline_history``, else all). Window ``k`` draws with seed ``seed + k``.
        keep_samples: also return the windows' sample paths (``[S, H, C]`` each) and targets.

    Returns:
        ``{"series", "forecaster", "summary": {crps, wql, mase, mae, nd, windows, points}, "windows": [...],
        "seconds", "task"}``.
    """
    ts: TimeSeries = series if isinstance(series, TimeSeries) else load_series(series)
    fc: Callable = get_forecaster(forecaster) if isinstance(forecaster, str) else forecaster
    task = task or ts.task
    keep = history if history is not None else task.baseline_history
    scores = ForecastScores()
    rows, kept = [], []
    t = time.perf_counter()
    for w in evaluation_windows(ts, task):
        hist = w.history[-keep:] if keep else w.history
        samples = np.asarray(fc(hist, task.prediction_length, season=task.season, num_samples=num_samples,
                                seed=seed + w.index), np.float64)
        expect = (task.prediction_length, w.target.shape[1])
        if samples.ndim != 3 or samples.shape[1:] != expect:
            raise ValueError(f"forecaster {getattr(fc, '__name__', fc)} returned {samples.shape}, expected "
                             f"[S, {expect[0]}, {expect[1]}]")
        # MASE's seasonal error on the full history before the window (GluonTS uses the whole past target)
        rows.append({"window": w.index, "start": w.start, **scores.add(w.target, samples, w.history, task.season)})
        if keep_samples:
            kept.append({"samples": samples, "target": w.target, "start": w.start})
    out = {"series": ts.name, "forecaster": getattr(fc, "__name__", str(fc)), "summary": scores.summary(),
           "windows": rows, "seconds": round(time.perf_counter() - t, 2),
           "task": {"prediction_length": task.prediction_length, "context_length": task.context_length,
                    "test_windows": task.test_windows, "season": task.season, "history": keep,
                    "num_samples": num_samples, "seed": seed}}
    if keep_samples:
        out["samples"] = kept
    return out


def evaluation_table(forecasters, series_names, **kwargs) -> list[dict]:
    """One row per (series, forecaster): its summary, seconds and task (``kwargs`` as
    :func:`evaluate_forecaster`)."""
    rows = []
    for name in series_names:
        ts = name if isinstance(name, TimeSeries) else load_series(name)
        for f in forecasters:
            r = evaluate_forecaster(f, ts, **kwargs)
            rows.append({"series": r["series"], "forecaster": r["forecaster"], **r["summary"],
                         "seconds": r["seconds"], "task": r["task"]})
    return rows


def format_table(rows: list[dict]) -> str:
    """A markdown table: series, forecaster, CRPS, wQL, MASE, windows, seconds."""
    lines = ["| series | forecaster | CRPS (normalised) | mean wQL | MASE | windows | seconds |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['series']} | {r['forecaster']} | {r['crps']:.4f} | {r['wql']:.4f} | {r['mase']:.3f} | "
                     f"{r['windows']} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


__all__ = ["evaluate_forecaster", "evaluation_table", "format_table"]
