"""The causal block rule of PARD's network (Zhao, Ding & Akoglu, NeurIPS 2024) as tensor operations: which node and
pair belongs to which block level (:class:`BlockStructure`), the block-causal PPGN product, and pooling of graph
vectors per level. :mod:`graphdiff.nn.ppgn` (the network) and :mod:`graphdiff.nn.ppgn_cache` (its prefix cache for
sampling) both build on these; the rule itself is stated in :mod:`graphdiff.nn.ppgn`'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..state import pair_mask

__all__ = ["BlockStructure", "block_causal_matmul", "causal_pool", "level_stats", "finish_pool", "gather_levels"]


# ---- the causal structure ---------------------------------------------------------------------------------------


@dataclass
class BlockStructure:
    """Everything a layer needs to know about real slots and block levels, built once per forward pass.

    Attributes:
        mask: real nodes.
        level: block index of each real node, ``-1`` at padded slots.
        pair_level: ``max(level_i, level_j)`` on pairs of real nodes (diagonal included), ``-1`` elsewhere.
        pool_pair_level: ``pair_level`` on real off-diagonal pairs, ``-1`` elsewhere (flattened), for pooling.
        attend: node ``i`` may read node ``j`` (both real, ``level_j <= level_i``).
        prefix_count: number of real nodes in blocks ``<= level_i`` (as a float), 0 at padded slots.
        n_levels: number of graph-level vectors, ``max(level) + 1`` over the batch (at least 1; the number of
            slots inside ``torch.compile``).
        causal: a block assignment was given (``False``: one block, no causal mask).

    Shapes:
        mask: ``[B, N]`` bool.
        level: ``[B, N]`` long.
        pair_level: ``[B, N, N]`` long.
        pool_pair_level: ``[B, N * N]`` long.
        attend: ``[B, N, N]`` bool.
        prefix_count: ``[B, N]``.
    """

    mask: Tensor
    level: Tensor
    pair_level: Tensor
    pool_pair_level: Tensor
    attend: Tensor
    prefix_count: Tensor
    n_levels: int
    causal: bool
    recorder: object | None = None  # a prefix-cache recorder (graphdiff.nn.ppgn_cache) during a recording pass

    # Paper: Zhao et al. 2024, PARD, "parallel training" (causal block mask, here per block index).
    @classmethod
    def build(cls, mask: Tensor, level: Tensor, causal: bool, dtype: torch.dtype) -> "BlockStructure":
        """Masks and levels from ``mask [B, N]`` and ``level [B, N]`` (``-1`` at padded slots)."""
        b, n = mask.shape
        real_pairs = pair_mask(mask, include_diagonal=True)
        pair_level = torch.maximum(level.unsqueeze(2), level.unsqueeze(1)).masked_fill(~real_pairs, -1)
        off = pair_mask(mask)
        pool_pair_level = pair_level.masked_fill(~off, -1).reshape(b, n * n)
        attend = real_pairs & (level.unsqueeze(1) <= level.unsqueeze(2))
        prefix_count = attend.sum(-1).to(dtype)
        if torch.compiler.is_compiling():
            # inside torch.compile (train.compile): a shape bound instead of a data-dependent count keeps one graph;
            # levels past the last real one get vectors that nothing reads (and zero size logits)
            n_levels = max(n, 1)
        else:
            n_levels = int(level.max()) + 1 if level.numel() and bool((level >= 0).any()) else 1
        return cls(mask, level, pair_level, pool_pair_level, attend, prefix_count, n_levels, causal)

    def at_nodes(self, v: Tensor) -> Tensor:
        """Per-level vectors ``[B, L, F]`` read at each node's level: ``[B, N, F]`` (level 0 at padded slots)."""
        return gather_levels(v, self.level.clamp(min=0))

    def at_pairs(self, v: Tensor) -> Tensor:
        """Per-level vectors ``[B, L, F]`` read at each pair's level: ``[B, N, N, F]`` (level 0 off real pairs)."""
        return gather_levels(v, self.pair_level.clamp(min=0))


def gather_levels(v: Tensor, idx: Tensor) -> Tensor:
    b, f = v.shape[0], v.shape[-1]
    flat = idx.reshape(b, -1, 1).expand(-1, -1, f)
    return torch.gather(v, 1, flat).reshape(*idx.shape, f)


# Paper: Zhao et al. 2024, PARD, "higher-order transformer" (causal PPGN product); Maron et al. 2019, PPGN block.
def block_causal_matmul(a: Tensor, b: Tensor, level: Tensor | None = None) -> Tensor:
    """Per-channel matrix product of two pair tensors, ``P_ij = sum_k a_ik b_kj``, restricted causally.

    With ``level``, only ``k`` with ``level_k >= 0`` and ``level_k <= max(level_i, level_j)`` contribute. When
    ``level_i >= level_j`` the condition is ``level_k <= level_i``, which depends on the row only, so it masks
    ``a``; otherwise it is ``level_k <= level_j`` and masks ``b``. Two batched matrix products and a selection give
    the exact result. Pairs whose endpoints are padded (``level = -1``) get zeros from padded ``k`` only; mask them
    afterwards.

    Args:
        a: left factor.
        b: right factor.
        level: block index per node, ``-1`` for slots that must not contribute; ``None`` for the plain product.

    Returns:
        ``P`` with the shape of ``a``.

    Shapes:
        a: ``[B, N, N, C]``.
        b: ``[B, N, N, C]``.
        level: ``[B, N]`` long or ``None``.
        output: ``[B, N, N, C]``.
    """
    a_cf, b_cf = a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2)  # [B, C, N, N]
    if level is None:
        return (a_cf @ b_cf).permute(0, 2, 3, 1)
    real = level >= 0
    # row_ok[i, k]: k may contribute to rows of block level_i
    row_ok = (real.unsqueeze(1) & (level.unsqueeze(1) <= level.unsqueeze(2))).to(a.dtype).unsqueeze(1)
    lower = (a_cf * row_ok) @ b_cf  # valid where level_i >= level_j
    upper = a_cf @ (b_cf * row_ok.transpose(-1, -2))  # valid where level_j > level_i
    first = (level.unsqueeze(2) >= level.unsqueeze(1)).unsqueeze(1)
    return torch.where(first, lower, upper).permute(0, 2, 3, 1)


# Paper: Vignac et al. 2023, DiGress, Sec. 3 (pooled graph features), made causal per PARD's block order.
def causal_pool(h: Tensor, level: Tensor, n_levels: int, eps: float = 1e-6) -> Tensor:
    """Mean, min, max and standard deviation of ``h`` over the entries of levels ``<= c``, for every ``c``.

    The prefix version of :func:`graphdiff.nn.transformer.masked_pool`: per-level sums, sums of squares, minima and
    maxima are scattered once and accumulated along the levels (``cumsum``, ``cummin``, ``cummax``), so the cost is
    that of a single pooling (:func:`level_stats`, then :func:`finish_pool`). The standard deviation is
    ``sqrt(max(E[h^2] - E[h]^2, eps))`` (population). A level whose prefix has no entry pools to zeros.

    Args:
        h: features of ``S`` entries (nodes, or flattened node pairs).
        level: level of each entry, ``-1`` for entries that are left out.
        n_levels: number of levels ``L``; entries of a level ``>= L`` must not occur.
        eps: floor of the variance under the square root.

    Returns:
        ``[mean, min, max, std]`` per prefix.

    Shapes:
        h: ``[B, S, F]``.
        level: ``[B, S]`` long.
        output: ``[B, L, 4 F]``.
    """
    return finish_pool(*level_stats(h, level, n_levels), eps)


def level_stats(h: Tensor, level: Tensor, n_levels: int, weight: Tensor | None = None) -> tuple[Tensor, ...]:
    """Prefix statistics of ``h`` per level ``c`` (entries of levels ``<= c``): ``(count [B, L, 1], sum, sum of
    squares, min, max [B, L, F])``; an empty prefix has min ``+max float`` and max ``-max float``.

    ``weight [B, S]`` (default 1) counts an entry that many times in the count and the sums; entries of level
    ``-1`` are left out.
    """
    b, _, f = h.shape
    valid = level >= 0
    idx = level.clamp(min=0)
    w = valid.to(h.dtype) if weight is None else weight.to(h.dtype) * valid.to(h.dtype)
    idx_f = idx.unsqueeze(-1).expand(-1, -1, f)
    hw = h * w.unsqueeze(-1)
    count = h.new_zeros(b, n_levels).scatter_add_(1, idx, w).cumsum(1).unsqueeze(-1)
    s1 = h.new_zeros(b, n_levels, f).scatter_add(1, idx_f, hw).cumsum(1)
    s2 = h.new_zeros(b, n_levels, f).scatter_add(1, idx_f, h * hw).cumsum(1)
    big = torch.finfo(h.dtype).max
    hv = valid.unsqueeze(-1)
    mx = h.new_full((b, n_levels, f), -big).scatter_reduce(1, idx_f, torch.where(hv, h, -big), "amax")
    mn = h.new_full((b, n_levels, f), big).scatter_reduce(1, idx_f, torch.where(hv, h, big), "amin")
    return count, s1, s2, torch.cummin(mn, 1).values, torch.cummax(mx, 1).values


def finish_pool(count: Tensor, s1: Tensor, s2: Tensor, mn: Tensor, mx: Tensor, eps: float = 1e-6) -> Tensor:
    """``[mean, min, max, std]`` from an entry count ``[..., 1]``, sums ``s1``, sums of squares ``s2``, minima and
    maxima ``[..., F]`` (zeros where the count is 0); the last step of :func:`causal_pool`."""
    any_ = count > 0
    c = count.clamp(min=1)
    mean = s1 / c
    var = s2 / c - mean * mean
    std = var.clamp(min=eps).sqrt()
    out = torch.cat([mean, torch.where(any_, mn, 0.0), torch.where(any_, mx, 0.0), std], -1)
    return out * any_.to(s1.dtype)
