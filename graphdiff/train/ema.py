"""Exponential moving average of a model's parameters (the weights used for sampling)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


class EMA:
    """Keeps ``ema = d * ema + (1 - d) * param`` for every floating-point parameter of ``model``.

    Buffers (and integer parameters) are copied as they are. The average lives in :attr:`module`, a frozen copy
    of the model in eval mode that sampling and validation use directly.

    Without warm-up ``d = decay`` at every update, so after ``n`` updates the average still holds ``decay ** n`` of
    the initial weights (0.999 ** 1000 = 37%): a short run samples from a model that is a third random. With
    ``warmup`` the decay of update ``n`` (counted from 1) is ``min(decay, (1 + n) / (10 + n))``, the schedule of
    diffusers' ``EMAModel``: the average follows the model closely at first and reaches ``decay`` after about
    ``10 / (1 - decay)`` updates.

    Args:
        model: the trained model (a ``DistributedDataParallel`` wrapper is unwrapped).
        decay: weight of the old average, in ``[0, 1)``.
        warmup: use the warm-up schedule above (the trainer's default, ``train.ema_warmup``).
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = False):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.model = _unwrap(model)
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self._module = copy.deepcopy(self.model)
        self._module.eval()
        self._module.requires_grad_(False)

    @property
    def module(self) -> nn.Module:
        """The averaged copy of the model (eval mode, no gradients)."""
        return self._module

    def decay_at(self, n: int) -> float:
        """The decay of the ``n``-th update (``n >= 1``)."""
        return min(self.decay, (1.0 + n) / (10.0 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, n: int | None = None) -> None:
        """Move the average one step towards the model's current parameters.

        Args:
            n: the number of this update, counted from 1 (the trainer passes its optimizer step, so a resumed
                run continues the schedule); needed with ``warmup``.
        """
        if self.warmup and n is None:
            raise ValueError("EMA with warmup needs the update number n")
        weight = 1.0 - self.decay_at(n if n is not None else 1)
        ema_params = dict(self._module.named_parameters())
        for name, p in self.model.named_parameters():
            e = ema_params[name]
            if p.is_floating_point():
                e.lerp_(p.detach(), weight)
            else:
                e.copy_(p.detach())
        ema_buffers = dict(self._module.named_buffers())
        for name, b in self.model.named_buffers():
            ema_buffers[name].copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged module's ``state_dict`` (what ``ema.safetensors`` holds)."""
        return self._module.state_dict()

    def load_state_dict(self, state_dict: dict[str, torch.Tensor], where: str = "EMA state") -> None:
        """Load an averaged ``state_dict`` (strictly; a mismatch raises a one-line ``CheckpointError``)."""
        from .checkpoint import load_weights

        load_weights(self._module, state_dict, where)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Copy the averaged parameters and buffers into ``module`` (e.g. the model, before export)."""
        _unwrap(module).load_state_dict(self._module.state_dict())
