"""Training through ``torch.compile`` (``train.compile: true``).

The trainer computes the loss through a compiled wrapper of the denoiser and keeps the plain module for everything
else (optimizer, EMA, checkpoints, sampling), so a compiled run saves the same weights as an eager one. The wrapper
is compiled with ``dynamic=True``: dense graph batches change their padded node count from batch to batch, and one
graph with symbolic sizes avoids a recompilation per size.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from ..errors import ConfigError


def compile_module(module: nn.Module) -> nn.Module:
    """``torch.compile(module, dynamic=True)``; it shares ``module``'s parameters, and compiles at its first call."""
    return torch.compile(module, dynamic=True)


def _compile_error_types() -> tuple[type[BaseException], ...]:
    from torch._dynamo.exc import BackendCompilerFailed

    try:
        from torch._inductor.exc import InductorError  # newer torch wraps compiler failures in this
    except ImportError:  # pragma: no cover - older torch
        return (BackendCompilerFailed,)
    return (BackendCompilerFailed, InductorError)


@contextmanager
def compile_errors(active: bool):
    """Turn a failure of the compiler (no C++ compiler on a CPU machine, no Triton on CUDA) into a one-line
    :class:`~graphdiff.errors.ConfigError` that says how to train without it; other errors pass unchanged."""
    if not active:
        yield
        return
    types = _compile_error_types()
    try:
        yield
    except types as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        first = lines[0] if lines else type(exc).__name__
        raise ConfigError(f"train.compile: torch.compile failed ({first[:200]}); set train.compile: false to train "
                          "without it") from None
