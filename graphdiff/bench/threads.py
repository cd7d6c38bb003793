"""The ``threads`` suite: training steps/s at 1 and 2 torch threads, on a quiet machine and beside one competing
CPU-bound process, so that the thread default is chosen from measurements (``train.threads``).

Each entry builds its model once; the four settings (threads x load) are timed in alternation, ``repeats`` times,
from the same weights, so that drift of the machine hits all of them alike. The competing process is a plain Python
busy loop (one core's worth of work), started before a "busy" measurement and stopped after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager

from .timing import time_train_steps


@contextmanager
def competing_process(enabled: bool):
    """A CPU-bound process running for the duration of the block (nothing when ``enabled`` is false)."""
    if not enabled:
        yield None
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(1.0)  # let the scheduler see it
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def thread_rows(pipe, ds, *, steps: int = 8, repeats: int = 3, threads=(1, 2)) -> list[dict]:
    """steps/s and graphs/s of ``pipe``'s training at each thread count, quiet and loaded; median over repeats."""
    import torch

    state = {k: v.clone() for k, v in pipe.denoiser.state_dict().items()}
    bs = pipe.config.train.batch_size
    before = torch.get_num_threads()
    got: dict = {}
    try:
        for _ in range(repeats):
            for busy in (False, True):
                with competing_process(busy):
                    for t in threads:
                        torch.set_num_threads(t)
                        pipe.denoiser.load_state_dict(state)
                        load = os.getloadavg()[0]
                        r = time_train_steps(pipe, ds.split("train"), bs, steps=steps, warmup=1,
                                             lr=pipe.config.train.lr)
                        got.setdefault((t, busy), []).append((r["steps_per_s"], r["graphs_per_s"], load))
    finally:
        torch.set_num_threads(before)
        pipe.denoiser.load_state_dict(state)
    rows = []
    for (t, busy), vals in sorted(got.items()):
        sps = sorted(v[0] for v in vals)
        rows.append({"threads": t, "load": "one competing process" if busy else "quiet",
                     "steps_per_s": sps[len(sps) // 2], "steps_per_s_all": sps, "batch_size": bs,
                     "graphs_per_s": sorted(v[1] for v in vals)[len(vals) // 2],
                     "load_average_seen": [round(v[2], 2) for v in vals]})
    return rows


__all__ = ["thread_rows", "competing_process"]
