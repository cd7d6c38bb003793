"""Which implementation of a kernel runs: the torch reference or the Triton kernel.

``auto`` (the default) picks Triton when every tensor is on a CUDA device and ``triton`` imports, the reference
otherwise. The environment variable ``GRAPHDIFF_KERNELS=reference|triton|auto``, when set, overrides the mode a model
was built with (a preset's ``model.kernels``), so one run can be switched without editing its preset. Forcing
``triton`` where it cannot run is a one-line :class:`~graphdiff.errors.ConfigError`. Under ``TRITON_INTERPRET=1``
the Triton kernels also run on CPU tensors (Triton's interpreter; slow, for tests), but only when forced.
"""

from __future__ import annotations

import functools
import os

from torch import Tensor

from ..errors import ConfigError

__all__ = ["MODES", "ENV_VAR", "check_mode", "effective_mode", "triton_import_error", "triton_importable",
           "use_triton"]

MODES = ("auto", "reference", "triton")
ENV_VAR = "GRAPHDIFF_KERNELS"


def check_mode(mode: str, where: str = "kernels") -> str:
    """``mode`` after checking it is one of :data:`MODES` (one-line ConfigError otherwise)."""
    if mode not in MODES:
        raise ConfigError(f"{where}={mode!r} is unknown; known: {', '.join(MODES)}")
    return mode


@functools.lru_cache(maxsize=1)
def triton_import_error() -> str | None:
    """Why ``import triton`` fails here (``None`` when it works)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install raising something else
        return f"{type(exc).__name__}: {exc}"
    return None


def triton_importable() -> bool:
    """Whether ``import triton`` works in this environment."""
    return triton_import_error() is None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "") not in ("", "0")


def _effective_mode(mode: str) -> tuple[str, str]:
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return check_mode(env, ENV_VAR), f"{ENV_VAR}={env}"
    return check_mode(mode), f"kernels={mode}"


def effective_mode(mode: str) -> str:
    """The mode that applies: ``GRAPHDIFF_KERNELS`` when set, else ``mode``."""
    return _effective_mode(mode)[0]


def use_triton(mode: str, *tensors: Tensor) -> bool:
    """Whether the Triton kernel runs for ``tensors`` under ``mode`` (see the module docstring).

    Raises:
        ConfigError: ``triton`` forced (by ``mode`` or the environment) where Triton cannot run: it does not import,
            or a tensor is not on a CUDA device and ``TRITON_INTERPRET=1`` is not set.
    """
    mode, source = _effective_mode(mode)
    if mode == "reference":
        return False
    on_cuda = all(t.is_cuda for t in tensors)
    if mode == "auto":
        return on_cuda and triton_importable()
    if not triton_importable():
        raise ConfigError(f"{source} but triton does not import ({triton_import_error()}); use kernels=reference")
    if not (on_cuda or _interpreting()):
        raise ConfigError(f"{source} but the tensors are on {tensors[0].device}, not CUDA (set TRITON_INTERPRET=1 "
                          "to run Triton's interpreter on CPU); use kernels=reference")
    return True
