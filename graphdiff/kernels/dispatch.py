"""Which implementation of a kernel runs: the torch reference or the Triton kernel.

``auto`` (the default) picks Triton only where it was measured faster than the reference, every tensor is on a
CUDA device and ``triton`` imports; the reference otherwise. The measurements (``graphdiff bench run kernels`` on an
H200, ``benchmarks/results/kernels-h200/``): the earlier edge-conditioned attention kernel (one program per query
row) was slower than the eager reference at every size (0.25x forward at N = 256 in float32, 0.16x in bf16; DeFoG /
DiGress training on SBM at 0.45-0.53x); its replacement (pair tiles with tensor-core products, see
:mod:`graphdiff.kernels.attention_triton`) has not been timed on a GPU yet, so ``auto`` keeps the reference for the
attention and its kernels are opt-in (``triton``) until it has. The gather-weight-scatter kernel beat the
reference and PyG from about 2^18 messages (4.1x forward and 1.6x forward+backward at N = 256; 5.8x and 4.5x at
N = 512) and lost below (0.35x at N = 64), so ``auto`` uses it from :data:`SCATTER_MIN_MESSAGES` on; the plain segment
mean only helps without a backward pass and from about 2^20 messages (2.5x forward at N = 512, but 0.34x with the
backward). The environment variable ``GRAPHDIFF_KERNELS=reference|triton|auto``, when set, overrides the mode a model
was built with (a preset's ``model.kernels``), so one run can be switched without editing its preset. Forcing
``triton`` where it cannot run is a one-line :class:`~graphdiff.errors.ConfigError`. Under ``TRITON_INTERPRET=1``
the Triton kernels also run on CPU tensors (Triton's interpreter; slow, for tests), but only when forced.
"""

from __future__ import annotations

import functools
import os

from torch import Tensor

from ..errors import ConfigError

__all__ = ["MODES", "ENV_VAR", "SCATTER_MIN_MESSAGES", "check_mode", "scatter_auto_prefers_triton", "effective_mode",
           "triton_import_error", "triton_importable", "use_triton"]

MODES = ("auto", "reference", "triton")
ENV_VAR = "GRAPHDIFF_KERNELS"
# messages from which ``auto`` runs the scatter kernel: with a gather, and for a plain segment reduction without a
# backward pass (measured on an H200; see the module docstring)
SCATTER_MIN_MESSAGES = {"gather": 2**18, "segment_no_grad": 2**20}


def scatter_auto_prefers_triton(messages: int, gather: bool, needs_grad: bool) -> bool:
    """Whether ``auto`` runs the Triton scatter for ``messages`` rows (``gather``: gather-weight-scatter;
    ``needs_grad``: a backward pass will follow), by the measurements in the module docstring."""
    if gather:
        return messages >= SCATTER_MIN_MESSAGES["gather"]
    return not needs_grad and messages >= SCATTER_MIN_MESSAGES["segment_no_grad"]


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


def use_triton(mode: str, *tensors: Tensor, auto: bool = True) -> bool:
    """Whether the Triton kernel runs for ``tensors`` under ``mode`` (see the module docstring); ``auto``: whether
    the caller's kernel is the faster route for these tensors, which ``auto`` mode requires.

    Raises:
        ConfigError: ``triton`` forced (by ``mode`` or the environment) where Triton cannot run: it does not import,
            or a tensor is not on a CUDA device and ``TRITON_INTERPRET=1`` is not set.
    """
    mode, source = _effective_mode(mode)
    if mode == "reference":
        return False
    on_cuda = all(t.is_cuda for t in tensors)
    if mode == "auto":
        return auto and on_cuda and triton_importable()
    if not triton_importable():
        raise ConfigError(f"{source} but triton does not import ({triton_import_error()}); use kernels=reference")
    if not (on_cuda or _interpreting()):
        raise ConfigError(f"{source} but the tensors are on {tensors[0].device}, not CUDA (set TRITON_INTERPRET=1 "
                          "to run Triton's interpreter on CPU); use kernels=reference")
    return True
