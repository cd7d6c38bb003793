"""Sampling in worker processes: ``pipe.sample(n, workers=K)`` / ``graphdiff sample --workers K``.

On a CPU with few cores, K processes of one torch thread each, every one sampling its contiguous shard of the same
``n`` samples (``pipe.sample(..., shard=(i, K))``), can beat one process with K threads, where small kernels leave
threads waiting on each other: ``qm9-defog`` on 2 cores samples 1.36x faster eager and 1.18x compiled in two
processes (``benchmarks/sampling_compile.py --processes 2``), while GDSS's batch of 1,000 QM9 graphs uses two threads
about as well (``benchmarks/gdss_authors_speed.py --processes 2``). Since sample ``i`` depends only on
``(seed, i)``, the shards concatenated in order are the samples of one unsharded run.

The pipeline travels to the workers as a saved model folder (``save_pretrained`` into a temporary folder; each
worker loads it with ``from_pretrained``); a compiled pipeline is compiled again in each worker with the same
options. Workers start with the ``spawn`` method (a fresh interpreter: no state forked from the caller), which costs
each a few seconds of imports and loading, so workers pay off from about a thousand samples.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .errors import ConfigError
from .state import GraphState


def check_workers(workers) -> int:
    """``workers`` as a positive int, else a one-line error."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    return int(workers)


def _shard(cls, folder: str, n: int, shard: tuple[int, int], compile_options: dict | None, kwargs: dict):
    """One worker: load the saved pipeline, sample its shard on one thread, return the decoded states."""
    import torch

    torch.set_num_threads(1)
    pipe = cls.from_pretrained(folder)
    if compile_options is not None:
        pipe.compile(**compile_options)
    return pipe.sample(n, shard=shard, output="state", progress=False, **kwargs)


def sample_in_workers(pipe, n: int, workers: int, **kwargs) -> GraphState:
    """The ``n`` samples of ``pipe.sample(n, **kwargs)``, drawn by ``workers`` one-thread processes (at most one per
    sample), each sampling a contiguous shard; the decoded states concatenated in shard order.

    Args:
        pipe: a CPU pipeline (workers run on CPU; for a GPU, sample in the one process).
        kwargs: ``pipe.sample`` arguments that a saved model reproduces (``steps``, ``sampler``, ``seed``,
            ``n_nodes``, ``batch_size``, ``cond``, ``guidance``, sampler knobs); not ``callback``, ``generator``,
            ``shard`` nor ``guide``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"number of samples must be a positive integer, got {n!r}")
    workers = min(check_workers(workers), int(n))
    if pipe.device.type != "cpu":
        raise ConfigError(f"workers sample on CPU; this pipeline is on {pipe.device} (sample in one process there)")
    compiled = getattr(pipe, "_compiled", None)
    options = getattr(pipe, "_compile_options", {}) if compiled is not None else None
    with tempfile.TemporaryDirectory(prefix="graphdiff-workers-") as folder:
        pipe.save_pretrained(folder)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            jobs = [pool.submit(_shard, type(pipe), folder, n, (i, workers), options, kwargs) for i in range(workers)]
            parts = [job.result() for job in jobs]
    return GraphState.cat(parts)


__all__ = ["sample_in_workers", "check_workers"]
