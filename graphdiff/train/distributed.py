"""Multi-process data-parallel training with ``torch.distributed``, launched by ``torchrun``.

``torchrun --nproc_per_node K script.py`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_from_env` reads them and joins the process group (NCCL on CUDA, Gloo on CPU).
Without ``WORLD_SIZE`` (or with 1) everything here is a no-op and training runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import TrainingError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job.

    Attributes:
        rank: global rank (0 writes logs and checkpoints).
        world_size: number of processes.
        local_rank: rank on this machine (picks the GPU).
        device: the device this process trains on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise TrainingError(f"environment variable {name}={value!r} is not an integer") from None


def _pick_device(device: str | torch.device, local_rank: int) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev


def is_initialized() -> bool:
    """Whether a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_from_env(device: str | torch.device = "auto") -> DistInfo:
    """Join the process group described by torchrun's environment variables.

    Idempotent: when the group is already initialised, its rank and size are returned.

    Args:
        device: ``"auto"`` (``cuda:LOCAL_RANK`` when CUDA is present, else CPU), ``"cpu"`` or ``"cuda"``.

    Returns:
        This process's :class:`DistInfo` (rank 0 of 1 outside torchrun).

    Raises:
        TrainingError: ``WORLD_SIZE`` > 1 but ``torch.distributed`` is unavailable, or CUDA asked for and absent.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = _pick_device(device, local_rank)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {str(device)!r} asked for but CUDA is not available")
    if world_size <= 1 and not (dist.is_available() and dist.is_initialized()):
        return DistInfo(rank=0, world_size=1, local_rank=local_rank, device=dev)
    if not dist.is_available():
        raise TrainingError(f"WORLD_SIZE={world_size} but this torch build has no torch.distributed")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=dev)


def rank() -> int:
    """This process's global rank (0 outside a process group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """Whether this is rank 0 (always true in a single process)."""
    return rank() == 0


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if is_initialized():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over all processes (a new tensor on ``tensor``'s device)."""
    if not is_initialized():
        return tensor.clone()
    t = tensor.detach().to(_comm_device(), copy=True)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.to(tensor.device)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over all processes (a new tensor; ``tensor`` itself is not changed)."""
    if not is_initialized():
        return tensor.clone()
    return all_reduce_sum(tensor) / dist.get_world_size()


def broadcast_flag(flag: bool, src: int = 0) -> bool:
    """Rank ``src``'s value of ``flag`` on every process (so that all agree, e.g. on stopping)."""
    if not is_initialized():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device())
    dist.broadcast(t, src=src)
    return bool(t.item())


def broadcast_float(value: float, src: int = 0) -> float:
    """Rank ``src``'s ``value`` on every process (e.g. the share of a time budget, read from rank 0's clock)."""
    if not is_initialized():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device())
    dist.broadcast(t, src=src)
    return float(t.item())


def all_gather_object(obj) -> list:
    """Every process's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup() -> None:
    """Leave the process group (no-op when none is running). Call it on the success path only, once every rank has
    finished its collectives: never from ``finally`` or ``atexit``, where a failed rank would wait at the barrier
    for a peer that sits in another collective.

    All ranks meet at a barrier first: a rank that tears its Gloo pairs down while another still talks to it can
    make the other abort at exit.
    """
    if dist.is_available() and dist.is_initialized():
        barrier()
        dist.destroy_process_group()
