"""Progress reporting for the whole package: a tqdm bar on a terminal, sparse one-line reports elsewhere.

:func:`progress` returns a ``tqdm`` bar when the output stream (``sys.stderr`` by default) is a terminal. When it is
not (a log file, CI, a pipe) a bar would write a carriage-return update many times a second into the log; instead
:class:`LineProgress` prints one compact line such as ::

    reference features: 1200/10000 mol, 12.0 mol/s, eta 12 min

at most every ``GRAPHDIFF_PROGRESS_EVERY`` seconds (default 30) and one final line when the work ends. Both objects
support the tqdm calls the package uses: iteration, ``update(n)``, ``set_postfix(...)``, ``set_postfix_str(s)``,
``set_description(s)``, ``close()`` and ``with``.

:func:`stage` prints one timestamped line, for a long step that has no natural counter
(``stage("computing reference statistics of 1,584,663 MOSES training molecules...")``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator

from .errors import ConfigError

__all__ = ["DEFAULT_EVERY", "ENV_EVERY", "LineProgress", "format_duration", "progress", "report_interval", "stage"]

ENV_EVERY = "GRAPHDIFF_PROGRESS_EVERY"
DEFAULT_EVERY = 30.0


def report_interval() -> float:
    """Seconds between two progress lines when the output is not a terminal (``$GRAPHDIFF_PROGRESS_EVERY``, 30)."""
    raw = os.environ.get(ENV_EVERY, "").strip()
    if not raw:
        return DEFAULT_EVERY
    try:
        every = float(raw)
    except ValueError:
        every = float("nan")
    if not every >= 0 or every == float("inf"):
        raise ConfigError(f"environment variable {ENV_EVERY}: expected a number of seconds >= 0, got {raw!r}")
    return every


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"`` or ``"2 h 05 min"`` (coarser as the duration grows)."""
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    h, m = divmod(int(round(s / 60)), 60)
    return f"{h} h {m:02d} min"


def _format_rate(rate: float, unit: str) -> str:
    if rate >= 100:
        return f"{rate:.0f} {unit}/s"
    if rate >= 1:
        return f"{rate:.1f} {unit}/s"
    if rate > 0:
        return f"{1 / rate:.1f} s/{unit}"
    return f"? {unit}/s"


def _format_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class LineProgress:
    """tqdm's interface, reporting as sparse whole lines (see the module docstring).

    Args:
        iterable: iterated over by ``for x in bar`` (each item counts 1).
        total: expected count (default ``len(iterable)`` where defined); without it no fraction or ETA is shown.
        desc: the line's prefix.
        unit: what is counted.
        disable: print nothing (iteration still passes the items through).
        initial: count already done (excluded from the rate).
        file: the stream written to (default ``sys.stderr`` at construction).
        every: seconds between lines (default :func:`report_interval`).
        clock: monotonic time source in seconds (tests pass a fake one).
    """

    def __init__(self, iterable: Iterable | None = None, *, total: float | None = None, desc: str = "",
                 unit: str = "it", disable: bool = False, initial: float = 0, file=None, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.disable = bool(disable)
        self.n = initial
        self.initial = initial
        self.file = file
        self.every = report_interval() if every is None else float(every)
        self._clock = clock
        self.start_t = self._last_print = clock()
        self.postfix = ""
        self.lines_printed = 0
        self.closed = False

    # ---- tqdm interface ------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("LineProgress: no iterable given")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("LineProgress: total unknown")
        return int(self.total)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        """Count ``n`` more; prints a line when ``every`` seconds have passed since the last one."""
        self.n += n
        if self.disable or self.closed:
            return
        now = self._clock()
        if now - self._last_print >= self.every:
            self._print(self._line(now))
            self._last_print = now

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        """``key=value`` pairs appended to the next lines (floats with 4 significant digits, as tqdm)."""
        items = dict(ordered_dict or {})
        items.update(kwargs)
        self.postfix = ", ".join(f"{k}={_format_value(v)}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """A free-form string appended to the next lines."""
        self.postfix = str(s)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        """Nothing to redraw: lines are only written by the interval rule and at the end."""

    def close(self) -> None:
        """Print the final line (once)."""
        if self.closed:
            return
        self.closed = True
        if not self.disable:
            self._print(self._line(self._clock(), final=True))

    # ---- formatting ----------------------------------------------------------------------------------------
    def _count(self) -> str:
        n = int(self.n) if float(self.n).is_integer() else round(self.n, 2)
        if self.total is None:
            return f"{n} {self.unit}"
        t = int(self.total) if float(self.total).is_integer() else self.total
        return f"{n}/{t} {self.unit}"

    def _line(self, now: float, final: bool = False) -> str:
        elapsed = now - self.start_t
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        parts = [self._count()]
        if final:
            parts.append(f"done in {format_duration(elapsed)}")
            if rate > 0:
                parts.append(_format_rate(rate, self.unit))
        else:
            parts.append(_format_rate(rate, self.unit))
            if self.total is not None and rate > 0:
                parts.append(f"eta {format_duration(max(0.0, self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        head = f"{self.desc}: " if self.desc else ""
        return head + ", ".join(parts)

    def _print(self, line: str) -> None:
        out = self.file if self.file is not None else sys.stderr
        out.write(line + "\n")
        out.flush()
        self.lines_printed += 1


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
             disable: bool = False, file=None, **kwargs):
    """A progress reporter: a ``tqdm`` bar when ``file`` (default ``sys.stderr``) is a terminal, else a
    :class:`LineProgress` (a line every ``$GRAPHDIFF_PROGRESS_EVERY`` seconds, 30 by default, and one at the end).

    Extra keyword arguments go to ``tqdm`` (``initial`` to both; ``every`` and ``clock`` to :class:`LineProgress`
    only, the rest to ``tqdm`` only)."""
    stream = file if file is not None else sys.stderr
    line_only = {k: kwargs.pop(k) for k in ("every", "clock") if k in kwargs}
    if _is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=file, **kwargs)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, disable=disable, file=file,
                        initial=kwargs.get("initial", 0), **line_only)


def maybe(iterable: Iterable, enabled: bool, desc: str = ""):
    """``iterable`` wrapped in :func:`progress` when ``enabled`` (sampler loops), else as it is."""
    return progress(iterable, desc=desc, leave=False) if enabled else iterable


def stage(message: str, *, file=None) -> None:
    """Print ``[YYYY-mm-dd HH:MM:SS] message`` as one line on ``file`` (default ``sys.stderr``)."""
    out = file if file is not None else sys.stderr
    out.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}\n")
    out.flush()
