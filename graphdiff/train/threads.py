"""How many torch threads training uses on a CPU, chosen from what the other processes on the machine leave free.

torch's intra-op threads synchronise at every operation; when another CPU-bound process takes a core, a thread is
descheduled and the others wait for it, so two threads beside one competing job can be many times slower than one
(``graphdiff bench run threads`` measures it). ``train.threads: auto`` (the default) therefore starts with the
cores the rest of the machine leaves idle (at most torch's own thread count, which ``OMP_NUM_THREADS`` or
``torch.set_num_threads`` may have lowered), and looks again every ``interval`` seconds: the CPU time the machine
spent outside this process over the last interval (``/proc/stat`` minus this process's own time, not counting niced
processes, which yield to this one; the 1-minute load average at the start and where there is no ``/proc/stat``)
says how many cores are taken. An integer fixes the count.
"""

from __future__ import annotations

import math
import os
import time

INTERVAL = 30.0  # seconds between looks at the machine


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _busy_ticks() -> int | None:
    """Busy clock ticks of the whole machine since boot (``/proc/stat``), or ``None`` off Linux."""
    try:
        with open("/proc/stat") as fh:
            parts = fh.readline().split()
    except OSError:
        return None
    if not parts or parts[0] != "cpu":
        return None
    v = [int(x) for x in parts[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    busy = sum(v[:8]) - idle
    # niced processes yield to a process at normal priority: they do not compete with it (unless it is niced too)
    if os.nice(0) <= 0:
        busy -= v[1]
    return busy


def _own_ticks() -> float:
    t = os.times()
    return (t.user + t.system) * os.sysconf("SC_CLK_TCK")


class ThreadPolicy:
    """Chooses and adjusts torch's intra-op thread count during training.

    Args:
        setting: ``"auto"`` or a positive integer.
        interval: seconds between re-evaluations under ``"auto"``.
    """

    def __init__(self, setting="auto", interval: float = INTERVAL):
        import torch

        self.setting = setting
        self.interval = interval
        self.cap = torch.get_num_threads()  # the user's / environment's ceiling
        self.cores = cores()
        self.threads = self.cap
        self._mark = None
        self.changes: list[tuple[float, int, float]] = []

    def _sample(self):
        return time.monotonic(), _busy_ticks(), _own_ticks()

    def others_busy(self, start=None) -> float:
        """Cores the rest of the machine kept busy since ``start`` (a :meth:`_sample`; default: the 1-minute load
        average at the start, before this process computes)."""
        if start is not None and start[1] is not None:
            now = self._sample()
            wall = (now[0] - start[0]) * os.sysconf("SC_CLK_TCK")
            if wall > 0 and now[1] is not None:
                return max(0.0, ((now[1] - start[1]) - (now[2] - start[2])) / wall)
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0

    def choose(self, others: float) -> int:
        if self.setting != "auto":
            return int(self.setting)
        free = self.cores - others
        return max(1, min(self.cap, int(math.floor(free + 0.5))))

    def start(self) -> str:
        """Set the starting thread count; returns the line the trainer prints."""
        import torch

        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        self.threads = self.choose(load)
        torch.set_num_threads(self.threads)
        self._mark = self._sample()
        how = ("auto: " if self.setting == "auto" else "train.threads: ") + (
            f"{self.cores} cores, load average {load:.2f} at the start, at most {self.cap}")
        return f"torch threads: {self.threads} ({how})"

    def poll(self) -> str | None:
        """Every ``interval`` seconds under ``"auto"``: re-choose from the last interval; a line when it changed."""
        if self.setting != "auto" or self._mark is None or time.monotonic() - self._mark[0] < self.interval:
            return None
        import torch

        others = self.others_busy(self._mark)
        self._mark = self._sample()
        new = self.choose(others)
        if new == self.threads:
            return None
        self.changes.append((time.monotonic(), new, round(others, 2)))
        self.threads = new
        torch.set_num_threads(new)
        return f"torch threads: {new} (other processes kept {others:.1f} of {self.cores} cores busy)"

    def restore(self) -> None:
        import torch

        torch.set_num_threads(self.cap)


__all__ = ["ThreadPolicy", "cores", "INTERVAL"]
