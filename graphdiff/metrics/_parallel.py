"""Process-pool helpers shared by the molecule metrics (fork pools, single-threaded torch inside)."""

from __future__ import annotations

import multiprocessing
import os
from contextlib import contextmanager

_PARALLEL_MIN = 1000  # below this many items a pool costs more than it saves


def _n_jobs(n_jobs: int | None) -> int:
    if n_jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:
            return max(1, os.cpu_count() or 1)
    return max(1, int(n_jobs))


def _pool(n_jobs: int):
    """A process pool; ``fork`` where available (workers run RDKit/numpy only, never torch)."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ctx.Pool(n_jobs)


class _Runner:
    """Maps chunk functions ``f((items, *opts)) -> list`` over items, through a lazily started pool."""

    def __init__(self, n_jobs: int):
        self.n_jobs = n_jobs
        self.pool = None

    def map(self, func, items: list, *opts) -> list:
        if self.n_jobs <= 1 or len(items) < _PARALLEL_MIN:
            return func((items, *opts))
        if self.pool is None:
            self.pool = _pool(self.n_jobs)
        size = max(64, -(-len(items) // (4 * self.n_jobs)))
        chunks = [(items[i:i + size], *opts) for i in range(0, len(items), size)]
        return [r for part in self.pool.map(func, chunks) for r in part]

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None



@contextmanager
def _torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
