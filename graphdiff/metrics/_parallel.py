"""Process-pool helpers shared by the molecule metrics (fork pools, single-threaded torch inside)."""

from __future__ import annotations

import multiprocessing
import os
from contextlib import contextmanager

_PARALLEL_MIN = 1000  # below this many items a pool costs more than it saves
_SERIAL_CHUNK = 2000  # items per progress update when a progress bar is given and no pool is used


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

    def map(self, func, items: list, *opts, bar=None, chunk: int | None = None) -> list:
        """``func`` over ``items`` in chunks (of at most ``chunk`` items when given); ``bar`` (a
        :func:`graphdiff.progress.progress` object) counts the items as chunks finish. Per-item functions give the
        same list either way."""
        if self.n_jobs <= 1 or len(items) < _PARALLEL_MIN:
            if bar is None:
                return func((items, *opts))
            out = []
            for i in range(0, len(items), _SERIAL_CHUNK):
                out.extend(func((items[i:i + _SERIAL_CHUNK], *opts)))
                bar.update(len(items[i:i + _SERIAL_CHUNK]))
            return out
        if self.pool is None:
            self.pool = _pool(self.n_jobs)
        size = max(64, -(-len(items) // (4 * self.n_jobs)))
        if chunk is not None:
            size = max(1, min(size, int(chunk)))
        chunks = [(items[i:i + size], *opts) for i in range(0, len(items), size)]
        if bar is None:
            return [r for part in self.pool.map(func, chunks) for r in part]
        out = []
        for part in self.pool.imap(func, chunks):
            out.extend(part)
            bar.update(len(part))
        return out

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
