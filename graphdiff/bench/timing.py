"""Timing of training steps, shared by the ``speed`` suite and the benchmark scripts."""

from __future__ import annotations

import os
import time


def rss_mb() -> float:
    """Current resident memory of this process in MB (``/proc/self/statm``; Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def time_train_steps(pipe, ds, batch_size: int, steps: int, *, lr: float = 1e-4, warmup: int = 2,
                     order=None, module=None, device=None) -> dict:
    """Mean wall time of ``steps`` optimizer steps of ``pipe``'s process loss on consecutive batches of ``ds``
    after ``warmup`` untimed ones (their total time is reported too); each timed step includes assembling its
    batch from the memory-mapped store. ``order``: the graph order to slice batches from (default: a seeded random
    permutation). ``module``: what the loss calls (default ``pipe.denoiser``; a compiled wrapper of it, say).
    ``device``: where the batches go (default: the CPU); on CUDA each timed step ends with a synchronisation."""
    import torch

    device = torch.device(device or "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    module = pipe.denoiser if module is None else module
    bs = min(int(batch_size), len(ds))
    opt = torch.optim.AdamW(pipe.denoiser.parameters(), lr=lr)
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)) if order is None else order
    module.train()
    times, padded, warm = [], [], 0.0
    for i in range(steps + warmup):
        start = (i * bs) % max(len(ds) - bs + 1, 1)
        t = time.perf_counter()
        batch = ds.batch(perm[start:start + bs].tolist()).to(device)
        loss = pipe.process.loss(module, batch, generator=torch.Generator(device=device).manual_seed(i)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t)
            padded.append(int(batch.mask.shape[1]))
        else:
            warm += time.perf_counter() - t
    module.eval()
    mean = sum(times) / len(times)
    return {"batch_size": bs, "timed_steps": steps, "steps_per_s": round(1 / mean, 3),
            "graphs_per_s": round(bs / mean, 1), "mean_padded_nodes": round(sum(padded) / len(padded), 2),
            "warmup_steps": warmup, "warmup_seconds": round(warm, 1), "final_loss": round(float(loss.detach()), 4),
            "note": "each step includes assembling its batch"}


__all__ = ["time_train_steps", "rss_mb"]
