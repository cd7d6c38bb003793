"""What makes a run reproducible and resumable as pure functions of the step: per-purpose seeds
(:func:`derive_seed`) and the learning rate of every step (:class:`LRSchedule`)."""

from __future__ import annotations

import contextlib
import hashlib
import math

import torch

from .config import TrainConfig


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple of ints and strings (stable across runs, platforms and Python versions).

    Example:
        ``derive_seed(seed, "noise", step, micro_batch, rank)``
    """
    digest = hashlib.blake2b(repr(tuple(parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


@contextlib.contextmanager
def seeded_init(*parts: int | str):
    """Draw from torch's CPU generator seeded with ``derive_seed(*parts)`` inside the block (initial weights), and
    leave the global random state as it was before it."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(derive_seed(*parts))
        yield


class LRSchedule:
    """The learning rate of optimizer step ``step`` (0-based) in epoch ``epoch``: a pure function, so that a resumed
    run continues the schedule exactly.

    Linear warm-up ``lr * (step + 1) / warmup_steps`` for the first ``warmup_steps`` steps, times
    ``lr_gamma ** epoch`` (exponential) or a half cosine from ``lr`` to 0 over the steps after warm-up up to
    ``total_steps`` (cosine). With ``lr_horizon: budget`` the cosine's position is the larger of that step
    fraction and ``time_fraction`` (the share of the time budget used, which the trainer passes), so it also ends
    when the minutes do.

    Args:
        config: the training options.
        total_steps: planned optimizer steps (the cosine's horizon).
    """

    def __init__(self, config: TrainConfig, total_steps: int):
        self.config = config
        self.total_steps = max(1, int(total_steps))

    def factor(self, step: int, epoch: int, time_fraction: float = 0.0) -> float:
        """The multiplier of ``config.lr``; ``time_fraction`` in [0, 1] counts only with ``lr_horizon: budget``."""
        c = self.config
        warm = (step + 1) / c.warmup_steps if step < c.warmup_steps else 1.0
        if c.lr_schedule == "exponential":
            decay = c.lr_gamma**epoch
        elif c.lr_schedule == "cosine":
            span = max(1, self.total_steps - c.warmup_steps)
            t = min(max(step - c.warmup_steps, 0), span) / span
            if c.lr_horizon == "budget":
                t = max(t, min(max(float(time_fraction), 0.0), 1.0))
            decay = 0.5 * (1.0 + math.cos(math.pi * t))
        else:
            decay = 1.0
        return warm * decay

    def __call__(self, step: int, epoch: int, time_fraction: float = 0.0) -> float:
        return self.config.lr * self.factor(step, epoch, time_fraction)

    def state_dict(self) -> dict:
        """The schedule's settings (for the record; the rate is recomputed from step, epoch and, with
        ``lr_horizon: budget``, the time fraction the training state keeps)."""
        c = self.config
        return {"schedule": c.lr_schedule, "lr": c.lr, "warmup_steps": c.warmup_steps, "lr_gamma": c.lr_gamma,
                "lr_horizon": c.lr_horizon, "total_steps": self.total_steps}


__all__ = ["LRSchedule", "derive_seed"]
