"""The process-agnostic training engine: :class:`Trainer`, :class:`TrainConfig`, checkpoints, EMA and DDP.

Any diffusion process trains through the same loop as long as it offers
``process.loss(denoiser, batch, *, generator=None) -> Tensor[B]`` (one loss per graph) and ``process.name``.
"""

from __future__ import annotations

from .batching import graph_sizes, group_by_size
from .checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_weights,
    read_config,
    resolve_checkpoint,
    save_checkpoint,
)
from .config import LR_HORIZONS, LR_SCHEDULES, TrainConfig
from .distributed import DistInfo, all_reduce_mean, barrier, cleanup, init_from_env, is_main
from .ema import EMA
from .schedule import LRSchedule, derive_seed
from .trainer import Trainer

__all__ = [
    "Checkpoint",
    "DistInfo",
    "EMA",
    "LRSchedule",
    "LR_HORIZONS",
    "LR_SCHEDULES",
    "TrainConfig",
    "Trainer",
    "all_reduce_mean",
    "barrier",
    "cleanup",
    "derive_seed",
    "graph_sizes",
    "group_by_size",
    "init_from_env",
    "is_main",
    "load_checkpoint",
    "load_weights",
    "read_config",
    "resolve_checkpoint",
    "save_checkpoint",
]
