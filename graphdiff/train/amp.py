"""Mixed precision for training (``train.amp: true``): the denoiser's forward pass under bf16 autocast.

Only the network runs in bf16; what it returns is cast back to float32 before the process computes its loss. On a
CPU, autocast leaves ``log_softmax`` and ``softmax`` in bf16 (on CUDA it promotes them), so running the whole loss
under autocast would compute the cross entropies of the discrete processes to about three significant digits. The
weights, their gradients and the optimizer stay float32 (bf16 has float32's exponent range, so no loss scaling).
"""

from __future__ import annotations

import platform
from dataclasses import replace

import torch
from torch import nn

from ..state import GraphState


def _to_float32(out):
    """Floating tensors of lower precision in ``out`` (a tensor, a GraphState, or tuples/lists/dicts of them) as
    float32; everything else unchanged."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype in (torch.bfloat16, torch.float16) else out
    if isinstance(out, GraphState):
        return replace(out, x=_to_float32(out.x), e=_to_float32(out.e), pos=_to_float32(out.pos),
                       y=_to_float32(out.y))
    if isinstance(out, (tuple, list)):
        return type(out)(_to_float32(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float32(v) for k, v in out.items()}
    return out


class AutocastForward(nn.Module):
    """``module``'s forward under ``torch.autocast(device_type, bfloat16)`` with float32 outputs.

    It shares ``module``'s parameters (no copy), and any other attribute is read from ``module``, so a process can
    call the denoiser's helpers (``size_logits``, ...) through it as through the module itself.
    """

    def __init__(self, module: nn.Module, device_type: str):
        super().__init__()
        self.module = module
        self.device_type = device_type

    def forward(self, *args, **kwargs):
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            out = self.module(*args, **kwargs)
        return _to_float32(out)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("module"), name)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively: on x86, AVX512-BF16 or AMX; other CPUs are given the benefit
    of the doubt (no warning)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return True
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    checks = [c for c in checks if c is not None]
    return not checks or any(bool(c()) for c in checks)
