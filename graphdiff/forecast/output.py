"""What a forecast leaves behind: a quantile table (CSV) and a plot (context, truth, median, 10-90% band)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def future_timestamps(timestamps: np.ndarray | None, horizon: int) -> np.ndarray | None:
    """The ``horizon`` grid points after ``timestamps`` (same step as its last two), or ``None``."""
    if timestamps is None or len(timestamps) < 2:
        return None
    from ..data.series import month_ends, on_month_ends

    ts = np.asarray(timestamps)
    if ts.dtype == np.dtype("datetime64[D]") and on_month_ends(ts):  # whole months on, each to its last day
        months = ts.astype("datetime64[M]")
        return month_ends(months[-1] + (months[-1] - months[-2]) * np.arange(1, horizon + 1))
    step = timestamps[-1] - timestamps[-2]
    return timestamps[-1] + step * np.arange(1, horizon + 1)


def forecast_table(samples: np.ndarray, timestamps=None, channels=("value",), quantiles=QUANTILES) -> list[dict]:
    """Rows ``{date, series, mean, 0.1, ..., 0.9}`` per step and channel from sample paths ``[S, H, C]``."""
    s = np.asarray(samples, np.float64)
    qs = np.quantile(s, quantiles, axis=0)
    mean = s.mean(0)
    rows = []
    for h in range(s.shape[1]):
        for c in range(s.shape[2]):
            date = str(timestamps[h]) if timestamps is not None else str(h + 1)
            rows.append({"date": date, "series": channels[c], "mean": mean[h, c],
                         **{f"{q:g}": qs[i, h, c] for i, q in enumerate(quantiles)}})
    return rows


def write_forecast_csv(rows: list[dict], path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def plot_forecast(context: np.ndarray, samples: np.ndarray, path, *, truth: np.ndarray | None = None,
                  context_times=None, future_times=None, title: str = "", channel: int = 0,
                  show_context: int | None = None) -> Path:
    """A PNG of one channel: the context (black), the truth (green, when given), the median forecast (blue) and
    its 10-90% band; ``show_context`` keeps only the last steps of a long context."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ctx = np.asarray(context, np.float64).reshape(len(context), -1)[:, channel]
    s = np.asarray(samples, np.float64)[:, :, channel]
    n = len(ctx) if show_context is None else min(len(ctx), show_context)
    ct = np.arange(-n, 0) if context_times is None else np.asarray(context_times)[-n:]
    ft = np.arange(s.shape[1]) if future_times is None else np.asarray(future_times)
    lo, med, hi = np.quantile(s, (0.1, 0.5, 0.9), axis=0)
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
    ax.plot(ct, ctx[-n:], color="black", lw=1.1, label="context")
    if truth is not None:
        ax.plot(ft, np.asarray(truth, np.float64).reshape(len(truth), -1)[:, channel], color="tab:green", lw=1.4,
                label="truth")
    ax.fill_between(ft, lo, hi, color="tab:blue", alpha=0.25, label="10-90%")
    ax.plot(ft, med, color="tab:blue", lw=1.4, label="median")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8, ncols=4)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["QUANTILES", "future_timestamps", "forecast_table", "write_forecast_csv", "plot_forecast"]
