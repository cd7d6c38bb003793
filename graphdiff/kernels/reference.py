"""Torch reference implementations: the definitions the Triton kernels are tested against.

Each function here is what its kernel computes, written with plain torch operations (autograd gives the gradients).
The dispatch (:mod:`graphdiff.kernels`) runs these everywhere Triton does not run.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["edge_attention_reference", "message_scatter_reference"]


# Paper: Vignac et al. 2023, DiGress, Sec. 3; Dwivedi & Bresson 2021 (edge-modulated attention scores).
def edge_attention_reference(
    q: Tensor, k: Tensor, v: Tensor, qe: Tensor, ke: Tensor, e: Tensor, mask: Tensor,
    w_mul: Tensor, b_mul: Tensor, w_add: Tensor, b_add: Tensor, w_out: Tensor, b_out: Tensor,
) -> tuple[Tensor, Tensor]:
    """Edge-conditioned attention of the DiGress graph transformer layer, with the new edge features.

    Per pair ``(i, j)`` the head scores ``S_ij = q_i . k_j / sqrt(Dh)`` ``[H]`` and the edge-width product
    ``P_ij = qe_i o ke_j / sqrt(De)`` ``[De]`` are FiLM-modulated by the edge features:
    ``A_ij = [S_ij, P_ij] * (1 + e_ij W_mul^T + b_mul) + e_ij W_add^T + b_add``. The node output is
    ``x_i = sum_j softmax_j(A_ij[:H]) v_j`` over real ``j`` (per head), the edge output ``A_ij W_out^T + b_out``.

    Args:
        q, k, v: ``[B, N, H, Dh]`` queries, keys and values.
        qe, ke: ``[B, N, De]`` the two factors of the edge-width product.
        e: ``[B, N, N, Fe]`` edge features.
        mask: ``[B, N]`` bool, real nodes.
        w_mul, w_add: ``[H + De, Fe]``; b_mul, b_add: ``[H + De]`` the FiLM maps of ``e``.
        w_out: ``[Do, H + De]``; b_out: ``[Do]`` the map of the modulated scores to the new edge features.

    Returns:
        ``(x [B, N, H, Dh], e_out [B, N, N, Do])``: ``x`` is zero at padded rows and for a graph without real nodes;
        ``e_out`` is zero on pairs touching padded slots (the diagonal of real nodes is kept).
    """
    h, dh, de = q.shape[2], q.shape[3], qe.shape[-1]
    keys = mask[:, None, :, None]
    pm = (mask[:, :, None] & mask[:, None, :]).unsqueeze(-1)
    scores = torch.einsum("bihd,bjhd->bijh", q, k) / math.sqrt(dh)
    prod = qe.unsqueeze(2) * ke.unsqueeze(1) / math.sqrt(de)
    pair = torch.cat([scores, prod], -1) * (F.linear(e, w_mul, b_mul) + 1.0) + F.linear(e, w_add, b_add)
    e_out = F.linear(pair, w_out, b_out) * pm.to(pair.dtype)
    logits = pair[..., :h].masked_fill(~keys, torch.finfo(pair.dtype).min)
    attn = torch.softmax(logits, dim=2) * keys.to(pair.dtype)
    x = torch.einsum("bijh,bjhd->bihd", attn, v) * mask[:, :, None, None].to(v.dtype)
    return x, e_out


def message_scatter_reference(
    values: Tensor, index: Tensor, dim_size: int, reduce: str = "sum", *, gather: Tensor | None = None,
    weight: Tensor | None = None,
) -> Tensor:
    """Gather, weight and segment-reduce messages: ``out[i] = reduce_{m : index[m] = i} w_m values[g_m]``.

    With ``gather=None`` the messages are the rows of ``values`` themselves (``g_m = m``), which is PyG's
    ``scatter(values, index, dim=0, dim_size=dim_size, reduce=reduce)`` (same ``scatter_add_`` summation).

    Args:
        values: ``[S, ...]`` source rows.
        index: ``[M]`` int64 destination of each message, in ``[0, dim_size)``.
        dim_size: rows of the output.
        reduce: ``"sum"`` or ``"mean"`` (a row without messages is zero).
        gather: ``[M]`` int64 source row of each message, or ``None`` (``M = S``).
        weight: ``[M]`` a scalar per message, or ``None``.

    Returns:
        ``[dim_size, ...]``.
    """
    rows = values if gather is None else values[gather]
    if weight is not None:
        rows = rows * weight.view(-1, *([1] * (rows.dim() - 1)))
    idx = index.view(-1, *([1] * (rows.dim() - 1))).expand_as(rows)
    out = rows.new_zeros((dim_size, *rows.shape[1:])).scatter_add_(0, idx, rows)
    if reduce == "mean":
        count = rows.new_zeros(dim_size).scatter_add_(0, index, rows.new_ones(index.numel())).clamp(min=1)
        out = out / count.view(-1, *([1] * (rows.dim() - 1)))
    return out
