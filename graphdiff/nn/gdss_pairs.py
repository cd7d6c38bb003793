"""The pair and head computations of the GDSS score networks (:mod:`graphdiff.nn.gdss`): adjacency powers, the
per-head dot products of the attention, tanh, and the pair MLPs over symmetric channels, each in the form that runs
fastest eager and under ``torch.compile`` on a CPU (the same function either way, up to float rounding)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..state import pair_mask

__all__ = ["adjacency_powers", "tanh", "head_dots", "head_blocks", "block_head_dots", "symmetric_pair_mlp",
           "BLOCK_HEAD_MAX_DIM", "EVERY_PAIR_MAX_NODES"]


def adjacency_powers(adj: Tensor, c: int, mask: Tensor | None = None) -> Tensor:
    """Stack ``A^1 .. A^c`` as channels, ``[B, N, N] -> [B, c, N, N]``.

    With a mask, ``A`` is first zeroed on pairs touching padded nodes and on its diagonal, so every power is zero
    on those pairs too (the diagonals of ``A^k``, ``k >= 2``, keep their walk counts).
    """
    if mask is not None:
        adj = adj * pair_mask(mask).to(adj.dtype)
    out = [adj]
    for _ in range(c - 1):
        out.append(out[-1] @ adj)
    return torch.stack(out, dim=1)


def tanh(x: Tensor) -> Tensor:
    """``torch.tanh``; under ``torch.compile`` as ``2 sigmoid(2x) - 1``, the same values up to float rounding:
    Inductor's CPU kernels evaluate ``tanh`` much slower than ATen does and their ``sigmoid`` about as fast as
    ATen's ``tanh``, and GDSS's attention maps are tanh of every pair's head scores."""
    if torch.compiler.is_compiling():
        return 2.0 * torch.sigmoid(2.0 * x) - 1.0
    return torch.tanh(x)


# Heads of at most this size take the block product (block_head_dots), larger ones the einsum: with GDSS's head
# size 4 the block product was the faster one on a CPU, eager and compiled, from 9 to 125 nodes.
BLOCK_HEAD_MAX_DIM = 8


def head_dots(q: Tensor, k: Tensor, heads: int, blocks: Tensor | None = None) -> Tensor:
    """Per-head dot products of every pair of nodes, ``q, k [B, N, H D] -> [B, H, N, N]``: the sums of
    ``einsum("bihd,bjhd->bhij")``, through :func:`block_head_dots` for heads of at most
    :data:`BLOCK_HEAD_MAX_DIM` channels (the same values up to float rounding)."""
    b, n, hd = q.shape
    if hd // heads <= BLOCK_HEAD_MAX_DIM:
        return block_head_dots(q, k, heads, blocks)
    return torch.einsum("bihd,bjhd->bhij", q.view(b, n, heads, hd // heads), k.view(b, n, heads, hd // heads))


def head_blocks(heads: int, head_dim: int, **kw) -> Tensor:
    """``[H, H D]``: row ``h`` is 1 on head ``h``'s ``D`` channels, 0 elsewhere (:func:`block_head_dots`)."""
    return torch.eye(heads, **kw).repeat_interleave(head_dim, dim=1)


def block_head_dots(q: Tensor, k: Tensor, heads: int, blocks: Tensor | None = None) -> Tensor:
    """:func:`head_dots` as one ``B``-batched product of block-diagonal queries with the keys: row ``(h, i)`` holds
    node ``i``'s head-``h`` query in block ``h`` and zeros elsewhere, so the extra terms add exact zeros. At GDSS's
    sizes (head size 4) the ``B H`` tiny products of the ``einsum`` cost more than this 4x larger product. ``blocks``:
    :func:`head_blocks` as a tensor the caller keeps (a module buffer: built inside a compiled graph, Inductor folds
    it into per-lane index arithmetic that runs several times slower than a load)."""
    b, n, hd = q.shape
    if blocks is None:
        blocks = head_blocks(heads, hd // heads, dtype=q.dtype, device=q.device)
    spread = (q.unsqueeze(1) * blocks.view(1, heads, 1, hd)).view(b, heads * n, hd)
    return torch.bmm(spread, k.transpose(1, 2)).view(b, heads, n, n)


def _triangle(n: int, diagonal: bool, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(up, full)``: the flat indices ``i N + j`` of the pairs ``i < j`` (``i <= j`` with ``diagonal``), ``P``
    of them, and for each of the ``N^2`` pairs the position in ``up`` of its triangle pair (``(j, i)`` for
    ``i > j``; ``P``, a zero row, for ``i = j`` without ``diagonal``)."""
    i, j = torch.triu_indices(n, n, 0 if diagonal else 1, device=device)
    pos = torch.arange(i.numel(), device=device)
    full = torch.full((n * n,), i.numel(), dtype=torch.long, device=device)
    full[i * n + j] = pos
    full[j * n + i] = pos
    return i * n + j, full


# Compiled pair MLPs run on every pair up to this many (padded) nodes and on the triangle above: on a CPU the
# every-pair form was the faster one at QM9's 9 nodes, even at ZINC250k's 38 and the slower one at ENZYMES's 125.
EVERY_PAIR_MAX_NODES = 32


def symmetric_pair_mlp(mlp: nn.Module, channels: list[Tensor], diagonal: bool, channels_first: bool = False
                       ) -> Tensor:
    """``mlp`` on every pair's channel vector of symmetric channels, symmetrised: ``channels`` (each
    ``[B, N, N, C_k]``, their concatenation the MLP's input) -> ``[B, N, N, C_out]`` (``channels_first``: a
    contiguous ``[B, C_out, N, N]``, the layout the next layer's per-channel convolutions read), zero on the
    diagonal unless ``diagonal``.

    The channels GDSS feeds its pair MLPs (adjacency powers, symmetrised attention maps and symmetrised adjacency
    outputs) are symmetric in ``(i, j)``, so eager the MLP runs on the upper triangle only (``i <= j`` with
    ``diagonal``, else ``i < j``) and its output is mirrored by one gather of the triangle's rows: 45 of 81 pairs
    at ``N = 9``, the same function at about half the work; where rounding makes ``(i, j)`` and ``(j, i)`` of an
    input differ (the powers ``A^k``), the value at ``i < j`` is the one read. Under ``torch.compile`` on graphs of
    at most :data:`EVERY_PAIR_MAX_NODES` slots it runs on every pair and is symmetrised as ``(M + M^T) / 2``, the
    authors' order of operations: on small graphs the gathers cost Inductor's CPU kernels more than the pairs they
    save (per-element index loads, strided channel reads in every kernel that consumes them). Above the threshold
    the triangle's indices fix ``N`` in a compiled graph, so ``torch.compile(dynamic=True)`` compiles once per
    padded size there."""
    b, n = channels[0].shape[:2]
    if torch.compiler.is_compiling() and n <= EVERY_PAIR_MAX_NODES:
        m = mlp(torch.cat(channels, -1))
        m = 0.5 * (m + m.transpose(1, 2))
        if not diagonal:
            m = m * (1.0 - torch.eye(n, dtype=m.dtype, device=m.device)).view(1, n, n, 1)
        return m.permute(0, 3, 1, 2).contiguous() if channels_first else m
    up, full = _triangle(n, diagonal, channels[0].device)
    feats = torch.cat(channels, -1)
    feats = feats.reshape(b, n * n, feats.shape[-1])  # one contiguous copy, channels last
    y = mlp(feats.index_select(1, up))  # [B, P, C_out]
    if not diagonal:
        y = torch.nn.functional.pad(y, (0, 0, 0, 1))  # row P: the zero diagonal
    if channels_first:
        return y.transpose(1, 2).index_select(2, full).view(b, y.shape[-1], n, n)
    return y.index_select(1, full).view(b, n, n, y.shape[-1])
