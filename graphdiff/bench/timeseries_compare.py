"""``graphdiff bench compare`` over several ``timeseries`` results folders: repeated runs of the suite (training
seeds, ``--set train.seed=S``) read together, so that a claim such as "self-guidance beats ETS" rests on the mean
over runs rather than on one run of a few test windows.

Per series and forecaster (the baselines by name; the self-guided, refined and chosen rows of each network) the
table gives the CRPS of every run, their mean and sample standard deviation, the ratio of that mean to ETS's mean
and in how many of the runs that have both the forecaster was below ETS. The summary counts, per forecaster, the
series on which its mean CRPS is below ETS's. Only what the results files hold is printed; nothing is re-scored.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

__all__ = ["forecaster_key", "compare_timeseries"]

def forecaster_key(row: dict) -> str | None:
    """The name a row is compared under across runs (its guidance scale may differ from run to run)."""
    kind = row.get("kind")
    if kind == "baseline":
        return str(row.get("forecaster"))
    from .timeseries import network_label

    label = {"diffusion": "self-guided", "refinement": "ETS refined", "chosen": "chosen"}.get(kind)
    return None if label is None else f"{label} ({network_label(row)})"


def _fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _differing_settings(named: list[tuple[str, dict]]) -> list[str]:
    """The settings (``--set`` overrides other than ``train.seed`` included) on which the runs disagree."""
    def flat(res: dict) -> dict:
        s = dict(res.get("settings") or {})
        over = {k: v for k, v in (s.pop("overrides", None) or {}).items()}
        train = {k: v for k, v in (over.pop("train", None) or {}).items() if k != "seed"}
        s.pop("model", None)
        s.pop("only", None)  # which series a run holds, not how it scored them
        return {**s, **{f"overrides.{k}": v for k, v in over.items()}, **{f"train.{k}": v for k, v in train.items()}}

    flats = [flat(res) for _, res in named]
    keys = sorted({k for f in flats for k in f})
    return [f"{k}: " + " / ".join(str(f.get(k, "-")) for f in flats) for k in keys
            if len({repr(f.get(k)) for f in flats}) > 1]


def compare_timeseries(named: list[tuple[str, dict]]) -> str:
    """The markdown comparison of ``named`` ``(folder, results)`` pairs of the timeseries suite (see the module
    docstring)."""
    if len(named) < 2:
        raise DataError("bench compare: give at least two timeseries results folders (repeated runs, e.g. "
                        "--set train.seed=1 and 2)")
    crps: dict[tuple[str, str], list[float | None]] = {}
    series_order: list[str] = []
    for i, (folder, res) in enumerate(named):
        if res.get("suite") != "timeseries":
            raise DataError(f"{folder}: a {res.get('suite', '?')!r} results folder; compare timeseries folders with "
                            "timeseries folders")
        for r in res.get("rows") or []:
            key = forecaster_key(r)
            if key is None or r.get("crps") is None:
                continue
            if r["series"] not in series_order:
                series_order.append(r["series"])
            value = float(r["crps"])
            crps.setdefault((r["series"], key), [None] * len(named))[i] = value if np.isfinite(value) else None
    lines = ["Runs compared:", ""]
    for i, (folder, res) in enumerate(named, 1):
        s = res.get("settings") or {}
        seed = ((s.get("overrides") or {}).get("train") or {}).get("seed", 0)
        summed = ", summed over its parts" if res.get("wall_minutes_note") else ""
        lines.append(f"{i}. `{folder}`: `{res.get('command', '?')}` (training seed {seed}, "
                     f"{res.get('wall_minutes', '?')} min{summed})")
    differ = _differing_settings(named)
    if differ:
        lines += ["", "Warning: the runs differ in more than the training seed (" + "; ".join(differ) + "): the "
                  "spread below mixes settings, not only seeds."]
    runs = " | ".join(f"run {i}" for i in range(1, len(named) + 1))
    lines += ["", f"| series | forecaster | {runs} | mean | sd | mean / ETS | runs below ETS |",
              "|---|---|" + "---:|" * (len(named) + 4)]
    wins: dict[str, list[str]] = {}
    counted: dict[str, int] = {}
    partial: dict[str, list[str]] = {}  # series where a forecaster or ETS is missing from some run
    for series in series_order:
        ets = crps.get((series, "ets")) or [None] * len(named)
        for (s, key), vals in crps.items():
            if s != series:
                continue
            have = [v for v in vals if v is not None]
            mean = float(np.mean(have)) if have else None
            sd = float(np.std(have, ddof=1)) if len(have) > 1 else None
            # against ETS over the runs that have both (the same windows and seeds on each side)
            paired = [(v, e) for v, e in zip(vals, ets) if v is not None and e is not None] if key != "ets" else []
            ratio = float(np.mean([v for v, _ in paired]) / np.mean([e for _, e in paired])) if paired else None
            below = sum(v < e for v, e in paired) if paired else None
            if key != "ets":
                if len(paired) == len(named):
                    counted[key] = counted.get(key, 0) + 1
                    if ratio < 1:
                        wins.setdefault(key, []).append(series)
                else:
                    partial.setdefault(key, []).append(series)
            lines.append(f"| {series} | {key} | " + " | ".join(_fmt(v) for v in vals) +
                         f" | {_fmt(mean)} | {_fmt(sd)} | {_fmt(ratio, 2)} | "
                         f"{'-' if below is None else f'{below} of {len(paired)}'} |")
    lines += ["", "Mean CRPS below ETS's mean (series where both have every run):", ""]
    for key in dict.fromkeys([*counted, *partial]):
        got = wins.get(key, [])
        text = f"- {key}: {len(got)} of {counted.get(key, 0)}" + (f" ({', '.join(got)})" if got else "")
        if key in partial:
            text += f"; not in every run on {', '.join(partial[key])} (left out)"
        lines.append(text)
    return "\n".join(lines) + "\n"
