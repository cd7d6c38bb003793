"""graphdiff.progress: a tqdm bar on a terminal, sparse whole lines elsewhere."""

from __future__ import annotations

import io
import os
import re

import pytest

from graphdiff.errors import ConfigError
from graphdiff.progress import LineProgress, format_duration, progress, report_interval, stage


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_captured_stderr_gets_no_carriage_returns_and_few_lines(capsys, monkeypatch):
    monkeypatch.delenv("GRAPHDIFF_PROGRESS_EVERY", raising=False)
    bar = progress(range(20_000), desc="work", unit="mol")
    assert isinstance(bar, LineProgress)  # pytest's captured stderr is not a terminal
    assert sum(1 for _ in bar) == 20_000
    with progress(total=500, desc="manual") as p:
        for _ in range(500):
            p.update(1)
            p.set_postfix(loss=0.123456)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 2  # finished well within 30 s: only the two final lines
    assert lines[0].startswith("work: 20000/20000 mol, done in ")
    assert lines[1].startswith("manual: 500/500 it, done in ") and lines[1].endswith("loss=0.1235")


def test_interval_rule_with_a_fake_clock():
    clock, out = FakeClock(), io.StringIO()
    bar = LineProgress(total=1000, desc="d", unit="it", file=out, every=30, clock=clock)
    printed_at = []
    for _ in range(1000):
        clock.t += 1.0
        before = bar.lines_printed
        bar.update(1)
        if bar.lines_printed > before:
            printed_at.append(clock.t)
    gaps = [b - a for a, b in zip([1000.0] + printed_at, printed_at)]
    assert gaps and all(g >= 30 for g in gaps)  # never more often than every 30 s ...
    assert len(printed_at) == 1000 // 30  # ... and as soon as 30 s have passed
    bar.close()
    bar.close()  # closing twice prints one final line
    lines = out.getvalue().splitlines()
    assert len(lines) == 1000 // 30 + 1
    assert lines[0] == "d: 30/1000 it, 1.0 it/s, eta 16 min"
    assert lines[-1] == "d: 1000/1000 it, done in 17 min, 1.0 it/s"


def test_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("GRAPHDIFF_PROGRESS_EVERY", "5")
    assert report_interval() == 5.0
    clock, out = FakeClock(), io.StringIO()
    bar = progress(total=None, desc="x", file=out, clock=clock)
    for _ in range(20):
        clock.t += 1.0
        bar.update(2)
    assert out.getvalue().splitlines() == [f"x: {k} it, 2.0 it/s" for k in (10, 20, 30, 40)]
    for bad in ("soon", "-1", "inf", "nan"):
        monkeypatch.setenv("GRAPHDIFF_PROGRESS_EVERY", bad)
        with pytest.raises(ConfigError, match="GRAPHDIFF_PROGRESS_EVERY"):
            progress(range(3), file=io.StringIO())


def test_disable_break_and_postfix_str():
    out = io.StringIO()
    assert list(progress(range(4), disable=True, file=out)) == [0, 1, 2, 3]
    assert out.getvalue() == ""
    bar = progress("abcdef", desc="letters", file=out, every=0, clock=FakeClock())
    bar.set_postfix_str("step 3")
    for ch in bar:
        if ch == "b":
            break
    # leaving the loop finalises its generator, which closes the bar (as tqdm, the item broken on is not counted)
    assert bar.closed
    lines = out.getvalue().splitlines()
    assert lines == ["letters: 1/6 it, ? it/s, step 3", "letters: 1/6 it, done in 0.0 s, step 3"]


def test_terminal_gets_a_tqdm_bar():
    from tqdm import tqdm

    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w") as tty:
            assert tty.isatty()
            bar = progress(total=3, desc="tty", file=tty)
            assert isinstance(bar, tqdm)
            bar.update(3)
            bar.close()
    finally:
        os.close(master)


def test_stage_prints_one_timestamped_line(capsys):
    stage("computing reference statistics of 1,584,663 MOSES training molecules...")
    err = capsys.readouterr().err
    assert re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] computing reference statistics of 1,584,663 MOSES "
                        r"training molecules\.\.\.\n", err)


def test_format_duration():
    assert [format_duration(s) for s in (3.25, 45, 720, 7500)] == ["3.2 s", "45 s", "12 min", "2 h 05 min"]
