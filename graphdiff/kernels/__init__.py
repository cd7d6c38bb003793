"""Fused kernels for the denoisers' hot paths, each with a torch reference that is its definition.

- :func:`edge_attention`: the edge-conditioned attention of the DiGress/DeFoG graph transformer (scores modulated by
  edge features, masked softmax over neighbours, value aggregation and the new edge features), the pair-level part
  fused.
- :func:`message_scatter`: gather-weight-scatter of messages with a segment reduction (sum or mean), the
  aggregation of the 3D message-passing networks.

Under ``auto`` each call runs the Triton kernel on CUDA tensors where it was measured faster (see
:mod:`graphdiff.kernels.dispatch`: the scatter on large graphs; the attention kernels not until they are timed on
a GPU) and the torch reference (:mod:`graphdiff.kernels.reference`) otherwise; ``mode`` (a model's
``kernels`` setting) or the environment variable ``GRAPHDIFF_KERNELS`` forces one. Both paths give the same results
up to float rounding. This package is reached through :mod:`graphdiff.nn`; it imports nothing from it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .dispatch import ENV_VAR, MODES, check_mode, effective_mode, scatter_auto_prefers_triton, triton_importable, \
    use_triton
from .reference import edge_attention_reference, message_scatter_reference

__all__ = ["edge_attention", "message_scatter", "edge_attention_reference", "message_scatter_reference", "MODES",
           "ENV_VAR", "check_mode", "triton_importable", "use_triton"]


def edge_attention(q: Tensor, k: Tensor, v: Tensor, qe: Tensor, ke: Tensor, e: Tensor, mask: Tensor, w_mul: Tensor,
                   b_mul: Tensor, w_add: Tensor, b_add: Tensor, w_out: Tensor, b_out: Tensor, *,
                   mode: str = "auto") -> tuple[Tensor, Tensor]:
    """Edge-conditioned attention; arguments, shapes and results as
    :func:`~graphdiff.kernels.reference.edge_attention_reference`, ``mode`` as :func:`use_triton`."""
    if use_triton(mode, q, k, v, qe, ke, e, auto=False):  # not yet timed on a GPU: opt-in only
        from .attention_triton import edge_attention_triton

        # once auto runs it (after a GPU measurement), a GPU too small for a kernel falls back to the reference
        # there; forced, it raises
        return edge_attention_triton(q, k, v, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out,
                                     fallback=effective_mode(mode) == "auto")
    return edge_attention_reference(q, k, v, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out)


def message_scatter(values: Tensor, index: Tensor, dim_size: int, reduce: str = "sum", *,
                    gather: Tensor | None = None, weight: Tensor | None = None, mode: str = "auto") -> Tensor:
    """Gather-weight-scatter with a segment reduction; arguments, shapes and results as
    :func:`~graphdiff.kernels.reference.message_scatter_reference`, ``mode`` as :func:`use_triton`.

    Raises:
        ValueError: ``reduce`` is neither ``"sum"`` nor ``"mean"``.
    """
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce={reduce!r} is not supported; use 'sum' or 'mean'")
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (values, weight))
    if use_triton(mode, values, index, auto=scatter_auto_prefers_triton(index.numel(), gather is not None,
                                                                         needs_grad)):
        from .scatter_triton import message_scatter_triton

        return message_scatter_triton(values, index, dim_size, reduce, gather=gather, weight=weight)
    return message_scatter_reference(values, index, dim_size, reduce, gather=gather, weight=weight)
