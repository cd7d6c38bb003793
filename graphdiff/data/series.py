"""Time series: the datasets that ship inside pip wheels, a user's ``.csv``, and the rolling forecast windows.

``load_series(name_or_path)`` is the one entry point. A name picks a built-in series (``list_series()``; each has a
card in ``graphdiff/data/cards/<name>.yaml`` naming the package, the series, its frequency, season length and split
rule); a path to a ``.csv`` file reads a date column and value columns (:func:`read_series_csv`). Nothing is
downloaded: the built-in series are read from the installed ``pmdarima`` and ``statsmodels`` wheels.

The split follows the rolling evaluation of GluonTS as used by TSDiff (Kollovieh et al. 2023): the last
``test_windows * prediction_length`` points are forecast in ``test_windows`` consecutive, non-overlapping windows,
each from the ``context_length`` points before it (the whole history before it for the classical baselines); the
series before the first test window is the training part.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import load_card
from .files import check_file, open_text

# season length per frequency code (the GluonTS convention for MASE's seasonal error)
SEASON_BY_FREQ = {"30min": 48, "h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "Q": 4, "Y": 1,
                  "ME": 12, "QE": 4, "YE": 1}
_MISSING = {"", "na", "nan", "null", "none", "?", "-"}


@dataclass(frozen=True)
class ForecastTask:
    """How a series is forecast and scored.

    Attributes:
        prediction_length: H, points forecast per window.
        context_length: L, points a window's model sees (the diffusion model's input besides the H to predict).
        test_windows: how many consecutive windows of H points at the end of the series are test windows.
        season: the season length m (seasonal naive, MASE's seasonal error, seasonal lags).
        baseline_history: the classical baselines fit on this many points before a window (``None``: all).
    """

    prediction_length: int
    context_length: int
    test_windows: int
    season: int
    baseline_history: int | None = None

    def __post_init__(self):
        for k in ("prediction_length", "context_length", "test_windows", "season"):
            if int(getattr(self, k)) < 1:
                raise DataError(f"forecast task: {k} must be >= 1, got {getattr(self, k)}")


@dataclass
class TimeSeries:
    """One (possibly multichannel) regular series; NaN marks a missing value.

    Shapes:
        values: ``[T, C]`` float64.
        timestamps: ``[T]`` ``datetime64`` (or ``None`` when only positions are known).
    """

    name: str
    values: np.ndarray
    freq: str
    timestamps: np.ndarray | None = None
    channels: tuple[str, ...] = ("value",)
    task: ForecastTask | None = None
    card: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim == 1:
            self.values = self.values[:, None]
        if self.values.ndim != 2:
            raise DataError(f"{self.name}: values must be [T] or [T, C], got shape {self.values.shape}")

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def season(self) -> int:
        return self.task.season if self.task else SEASON_BY_FREQ.get(self.freq, 1)

    def with_task(self, **changes) -> "TimeSeries":
        """A copy whose forecast task has ``changes`` (``prediction_length``, ``context_length``, ...)."""
        base = self.task or default_task(len(self), self.freq, changes.get("prediction_length"))
        return replace(self, task=replace(base, **{k: int(v) for k, v in changes.items() if v is not None}))


def default_task(length: int, freq: str, prediction_length: int | None = None) -> ForecastTask:
    """A task for a series without a card: H = one season (at least 1), L = 4 H, as many test windows as leave
    half the series for history (at most 5)."""
    m = SEASON_BY_FREQ.get(freq, 1)
    h = int(prediction_length or max(m, 1))
    windows = max(1, min(5, (length // 2) // max(h, 1)))
    return ForecastTask(prediction_length=h, context_length=4 * h, test_windows=windows, season=m)


# ---- windows --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """One test window: forecast ``target`` (``[H, C]``) from ``history`` (``[start, C]``, everything before)."""

    index: int
    start: int
    history: np.ndarray
    target: np.ndarray

    def context(self, length: int) -> np.ndarray:
        """The last ``length`` points of the history, NaN-padded on the left when the history is shorter."""
        h = self.history[-length:]
        if len(h) < length:
            h = np.concatenate([np.full((length - len(h), h.shape[1]), np.nan), h])
        return h


def evaluation_windows(series: TimeSeries, task: ForecastTask | None = None) -> list[Window]:
    """The rolling test windows of ``series`` (GluonTS ``OffsetSplitter`` + rolling instances, as in TSDiff)."""
    task = task or series.task or default_task(len(series), series.freq)
    h, n, total = task.prediction_length, task.test_windows, len(series)
    first = total - n * h
    if first < max(2, task.season + 1):
        raise DataError(f"{series.name}: {total} points leave {first} before the first of {n} test windows of {h} "
                        f"points; need at least {max(2, task.season + 1)} (lower --horizon or the test windows)")
    return [Window(k, first + k * h, series.values[:first + k * h], series.values[first + k * h:first + (k + 1) * h])
            for k in range(n)]


def training_windows(series: TimeSeries, task: ForecastTask | None = None, stride: int = 1,
                     holdout: int = 0) -> np.ndarray:
    """All windows of ``context_length + prediction_length`` points inside the training part, ``[W, L + H, C]``
    (NaN where values are missing); empty when the training part is shorter than one window. ``holdout``: also
    leave out the last ``holdout * prediction_length`` points before the test windows (validation windows that
    no training window overlaps)."""
    task = task or series.task or default_task(len(series), series.freq)
    span = task.context_length + task.prediction_length
    end = len(series) - (task.test_windows + int(holdout)) * task.prediction_length
    starts = range(0, max(end - span + 1, 0), stride)
    if not len(starts):
        return np.zeros((0, span, series.values.shape[1]))
    return np.stack([series.values[s:s + span] for s in starts])


# ---- built-in series (read from the files of installed wheels) -------------------------------------
# The files are read where the wheel put them, without importing the package (pmdarima's import pulls in
# scikit-learn and takes seconds): the package's directory comes from importlib's finder.
def _package_dir(package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"No module named {package!r}")
    return Path(list(spec.submodule_search_locations)[0])


def _array_in_source(package: str, module: str, function: str) -> np.ndarray:
    """The ``np.array([...])`` literal assigned in ``function`` of ``package/<module>.py`` (pmdarima keeps its
    small series as literals in the loader's source)."""
    import ast

    tree = ast.parse((_package_dir(package) / f"{module}.py").read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "array" and node.args and \
                isinstance(node.args[0], ast.List):
            return np.asarray(ast.literal_eval(node.args[0]), dtype=np.float64)
    raise DataError(f"{package}/{module}.py: no array literal in {function}() (an unexpected {package} version)")


def _pmdarima(name: str):
    return lambda: (_array_in_source("pmdarima", f"datasets/{name}", f"load_{name}"), None)


def _ausbeer():
    values = _array_in_source("pmdarima", "datasets/ausbeer", "load_ausbeer")
    return values[: len(values) - int(np.isnan(values[-1]))], None  # the wheel's array ends with a missing quarter


def _co2():
    """Monthly means of the weekly Mauna Loa averages in statsmodels (weeks without a value skipped; a month with
    none is missing)."""
    with open(_package_dir("statsmodels") / "datasets" / "co2" / "co2.csv", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    months = np.array([np.datetime64(f"{d[:4]}-{d[4:6]}", "M") for d, _ in rows])
    values = np.array([float(v) if v.strip() else np.nan for _, v in rows])
    grid = np.arange(months.min(), months.max() + 1)
    slot, ok = (months - months.min()).astype(np.int64), ~np.isnan(values)
    total = np.bincount(slot[ok], values[ok], minlength=len(grid))
    count = np.bincount(slot[ok], minlength=len(grid))
    return np.where(count > 0, total / np.maximum(count, 1), np.nan), grid


def _sunspots():
    return np.loadtxt(_package_dir("pmdarima") / "datasets" / "data" / "sunspots.txt.gz").ravel(), None


def _msft():
    import io
    import tarfile

    with tarfile.open(_package_dir("pmdarima") / "datasets" / "data" / "msft.tar.gz", "r:*") as tar:
        text = io.TextIOWrapper(tar.extractfile(tar.getnames()[0]), encoding="utf-8")
        rows = list(csv.DictReader(text))
    return (np.array([float(r["Close"]) for r in rows]),
            np.array([r["Date"] for r in rows], dtype="datetime64[D]"))


def _elec_equip():
    with open(_package_dir("statsmodels") / "datasets" / "elec_equip" / "elec_equip.csv", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    months = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                          "Nov", "Dec"), start=1)}
    stamps = [np.datetime64(f"{d.split('-')[2]}-{months[d.split('-')[0]]:02d}", "M") for d, _ in rows]
    return np.array([float(v) for _, v in rows]), np.array(stamps)


_BUILTIN = {"taylor": _pmdarima("taylor"), "wineind": _pmdarima("wineind"),
            "airpassengers": _pmdarima("airpassengers"), "sunspots": _sunspots, "msft": _msft,
            "elec_equip": _elec_equip, "ausbeer": _ausbeer, "woolyrnq": _pmdarima("woolyrnq"), "co2": _co2}


def list_series() -> list[str]:
    """Names of the built-in series (each has a dataset card)."""
    return list(_BUILTIN)


def _regular_timestamps(start: str, freq: str, n: int) -> np.ndarray:
    if freq in ("M", "Q"):
        return np.datetime64(start, "M") + np.arange(n) * (3 if freq == "Q" else 1)
    step = {"30min": np.timedelta64(30, "m"), "h": np.timedelta64(1, "h"), "D": np.timedelta64(1, "D")}[freq]
    return np.datetime64(start, "m") + step * np.arange(n)


def load_builtin(name: str) -> TimeSeries:
    """A built-in series by name, with its card's frequency and forecast task."""
    from ..checks import check_choice

    key = check_choice(name.lower().replace("-", "_"), _BUILTIN, "time series", error=DataError)
    card = load_card(key)
    try:
        values, stamps = _BUILTIN[key]()
    except (ImportError, OSError) as exc:
        raise DataError(f"time series {key}: needs the {card['package']} package's data files ({exc}); pip install "
                        f"{card['package']}") from None
    if stamps is None:
        stamps = _regular_timestamps(str(card["start"]), card["frequency"], len(values))
    s = card["split"]
    task = ForecastTask(s["prediction_length"], s["context_length"], s["test_windows"], card["season_length"],
                        s.get("baseline_history"))
    return TimeSeries(key, values, card["frequency"], stamps, (card.get("channel", "value"),), task, card)


def load_series(name_or_path: str, **csv_options) -> TimeSeries:
    """A built-in series by name or a ``.csv`` file by path (options as :func:`read_series_csv`)."""
    p = Path(str(name_or_path))
    if p.suffix.lower() in (".csv", ".gz") or p.exists() or "/" in str(name_or_path):
        return read_series_csv(p, **csv_options)
    return load_builtin(str(name_or_path))


# ---- user CSV ------------------------------------------------------------------------------------
def _parse_time(text: str, path: Path, line: int, column: str) -> np.datetime64:
    t = text.strip().replace("T", " ")
    try:
        if not re.match(r"\d{4}(\D|$)", t):  # numpy reads "100" as the year 100: a date starts with a 4-digit year
            raise ValueError(t)
        if " " in t:
            return np.datetime64(t.replace(" ", "T"), "s")
        return np.datetime64(t)
    except ValueError:
        raise DataError(f"{path}: line {line}: column {column!r}: {text!r} is not a date "
                        f"(expected YYYY-MM-DD, YYYY-MM, YYYY or YYYY-MM-DD HH:MM[:SS])") from None


def looks_like_series_csv(path) -> bool:
    """Whether ``path`` reads as a series CSV rather than a molecule CSV: a ``.csv`` file whose header has no
    ``smiles`` column and whose first data row starts with a date (``YYYY-MM...``)."""
    p = Path(path)
    if not str(path).lower().endswith(".csv") or not p.is_file():
        return False
    try:
        with open(p, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            first = next((r for r in reader if any(c.strip() for c in r)), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    if not header or not first or any(h.strip().lower() == "smiles" for h in header):
        return False
    if not re.match(r"\s*\d{4}-\d{2}", first[0]):
        return False
    try:
        _parse_time(first[0], p, 2, header[0])
    except DataError:
        return False
    return True


def on_month_ends(stamps) -> bool:
    """Whether every timestamp is midnight of a month's last day."""
    t = np.asarray(stamps)
    days = t.astype("datetime64[D]")
    return bool(len(t) and (t.astype("datetime64[s]") == days.astype("datetime64[s]")).all()
                and ((days + 1).astype("datetime64[M]") != days.astype("datetime64[M]")).all())


def month_ends(months: np.ndarray) -> np.ndarray:
    """The last day of each month of ``months`` (``datetime64[M]``), as ``datetime64[D]``."""
    return (np.asarray(months, "datetime64[M]") + 1).astype("datetime64[D]") - np.timedelta64(1, "D")


def _infer_freq(stamps: list[np.datetime64], path: Path, lines: list[int]) -> tuple[str, np.ndarray, np.ndarray]:
    """Frequency code, the regular grid of timestamps and each row's position on it."""
    months = np.array([s.astype("datetime64[M]").astype(np.int64) for s in stamps])
    on_month_start = all(s.astype("datetime64[s]") == s.astype("datetime64[M]").astype("datetime64[s]")
                         for s in stamps)
    on_month_end = not on_month_start and on_month_ends(stamps)
    if (on_month_start or on_month_end) and len(stamps) > 1:
        step = int(np.min(np.diff(months))) if len(months) > 1 else 1
        if step >= 1 and step in (1, 3, 12):
            pos, code, unit = months - months[0], {1: "M", 3: "Q", 12: "Y"}[step], np.timedelta64(step, "M")
            grid_start = stamps[0].astype("datetime64[M]")
            if on_month_start:
                return _place(pos, step, code, path, lines, lambda n: grid_start + unit * np.arange(n))
            return _place(pos, step, code + "E", path, lines,
                          lambda n: month_ends(grid_start + unit * np.arange(n)))
    secs = np.array([s.astype("datetime64[s]").astype(np.int64) for s in stamps])
    step = int(np.min(np.diff(secs))) if len(secs) > 1 else 86400
    code = {1800: "30min", 3600: "h", 86400: "D", 7 * 86400: "W"}.get(step, f"{step}s")
    if step > 0 and step % 86400 == 0 and not (secs % 86400).any():  # whole days: dates without a time
        t0, unit = stamps[0].astype("datetime64[D]"), np.timedelta64(step // 86400, "D")
    else:
        t0, unit = stamps[0].astype("datetime64[s]"), np.timedelta64(step, "s")
    return _place(secs - secs[0], step, code, path, lines, lambda n: t0 + unit * np.arange(n))


def _place(offsets, step, code, path, lines, grid):
    if step <= 0:
        i = int(np.argmin(np.diff(offsets))) + 1
        raise DataError(f"{path}: line {lines[i]}: dates must increase strictly (a repeated or earlier date)")
    bad = np.flatnonzero(offsets % step)
    if len(bad):
        raise DataError(f"{path}: line {lines[bad[0]]}: date off the regular grid of step {code} set by the first "
                        "rows")
    pos = (offsets // step).astype(np.int64)
    return code, grid(int(pos[-1]) + 1), pos


def read_series_csv(path, *, date_column: str | None = None, value_columns: list[str] | None = None,
                    season: int | None = None, name: str | None = None) -> TimeSeries:
    """A regular series from a CSV with a header: a date column (default the first) and value columns (default
    every other column).

    Empty cells and ``NA``/``NaN``/``null`` are missing values (NaN, masked by the adapter); dates that skip grid
    points leave missing rows. Frequency is read from the dates (month starts: monthly, quarterly or yearly;
    month ends: the same, as codes ``ME``, ``QE``, ``YE``; otherwise the smallest step: half-hourly, hourly,
    daily, weekly, or ``<n>s``).

    Raises:
        DataError: one line naming the file, the line, the column and the value: a cell that is not a number, a
            date that does not parse, dates that do not increase or leave the grid, a missing column, too few rows.
    """
    path = check_file(path, "a CSV file")
    with open_text(path, "CSV text with a date column and value columns") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
        except csv.Error as exc:
            raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
    if not header:
        raise DataError(f"{path}: empty CSV (expected a header: a date column, then value columns)")
    header = [h.strip() for h in header]
    for col in [date_column] + list(value_columns or []):
        if col is not None and col not in header:
            raise DataError(f"{path}: line 1: no column {col!r} (columns: {', '.join(header)})")
    di = header.index(date_column) if date_column else 0
    vcols = list(value_columns) if value_columns else [h for i, h in enumerate(header) if i != di]
    if not vcols:
        raise DataError(f"{path}: line 1: no value column besides the date column {header[di]!r} (a series CSV "
                        f"has a date column first, then value columns)")
    vi = [header.index(c) for c in vcols]
    if len(rows) < 3:
        raise DataError(f"{path}: {len(rows)} data rows; a series needs at least 3")
    stamps, values, lines = [], np.empty((len(rows), len(vi))), []
    for r, (line, row) in enumerate(rows):
        if len(row) < len(header):
            raise DataError(f"{path}: line {line}: {len(row)} fields, the header has {len(header)}")
        stamps.append(_parse_time(row[di], path, line, header[di]))
        lines.append(line)
        for c, j in enumerate(vi):
            cell = row[j].strip()
            if cell.lower() in _MISSING:
                values[r, c] = np.nan
                continue
            try:
                v = float(cell)
            except ValueError:
                raise DataError(f"{path}: line {line}: column {header[j]!r}: {cell!r} is not a number") from None
            if not math.isfinite(v):
                raise DataError(f"{path}: line {line}: column {header[j]!r}: {cell!r} is not a finite number")
            values[r, c] = v
    code, grid, pos = _infer_freq(stamps, path, lines)
    full = np.full((len(grid), len(vi)), np.nan)
    full[pos] = values
    if np.isnan(full).all():
        raise DataError(f"{path}: every value is missing")
    m = season or SEASON_BY_FREQ.get(code, 1)
    s = TimeSeries(name or path.stem, full, code, grid, tuple(vcols))
    s.task = replace(default_task(len(s), code), season=int(m))
    return s


__all__ = ["ForecastTask", "TimeSeries", "Window", "SEASON_BY_FREQ", "default_task", "evaluation_windows",
           "looks_like_series_csv",
           "training_windows", "list_series", "load_builtin", "load_series", "read_series_csv"]
