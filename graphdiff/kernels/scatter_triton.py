"""Triton kernel of the gather-weight-scatter message reduction
(:func:`~graphdiff.kernels.reference.message_scatter_reference`).

Messages are grouped by destination (a stable sort when ``index`` is not already sorted, as it is for the edge lists
of :class:`~graphdiff.nn.eqgat.FullyConnectedBatch`) into CSR segments. One program per destination row and block of
``BF`` feature columns walks its segment in blocks of ``BE`` messages, gathers the source rows, weights them and
reduces in fp32 registers: no ``[M, F]`` message tensor is written and no atomics are needed, so the result does not
depend on scheduling. The backward pass is the same kernel with the roles of ``index`` and ``gather`` swapped (the
transposed reduction), plus a per-message dot product for the weights.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ["message_scatter_triton"]


@triton.jit
def _segment_reduce(VALUES, GATHER, WEIGHT, PTR, OUT, F, HAS_GATHER: tl.constexpr, HAS_WEIGHT: tl.constexpr,
                    MEAN: tl.constexpr, BE: tl.constexpr, BF: tl.constexpr):
    seg = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BF + tl.arange(0, BF)
    fm = cols < F
    start = tl.load(PTR + seg)
    end = tl.load(PTR + seg + 1)
    acc = tl.zeros([BF], tl.float32)
    for e0 in range(start, end, BE):
        msg = e0 + tl.arange(0, BE)
        em = msg < end
        if HAS_GATHER:
            src = tl.load(GATHER + msg, mask=em, other=0)
        else:
            src = msg
        rows = tl.load(VALUES + src[:, None] * F + cols[None, :], mask=em[:, None] & fm[None, :],
                       other=0.0).to(tl.float32)
        if HAS_WEIGHT:
            rows = rows * tl.load(WEIGHT + msg, mask=em, other=0.0).to(tl.float32)[:, None]
        acc += tl.sum(rows, axis=0)
    if MEAN:
        acc = acc / tl.maximum(end - start, 1).to(tl.float32)
    tl.store(OUT + seg * F + cols, acc.to(OUT.dtype.element_ty), mask=fm)


@triton.jit
def _message_dot(A, A_INDEX, B, B_INDEX, OUT, M, F, HAS_B_INDEX: tl.constexpr, BE: tl.constexpr, BF: tl.constexpr):
    msg = tl.program_id(0).to(tl.int64) * BE + tl.arange(0, BE)
    em = msg < M
    a_row = tl.load(A_INDEX + msg, mask=em, other=0)
    if HAS_B_INDEX:
        b_row = tl.load(B_INDEX + msg, mask=em, other=0)
    else:
        b_row = msg
    acc = tl.zeros([BE], tl.float32)
    for f0 in range(0, F, BF):
        cols = f0 + tl.arange(0, BF)
        m2 = em[:, None] & (cols < F)[None, :]
        a = tl.load(A + a_row[:, None] * F + cols[None, :], mask=m2, other=0.0).to(tl.float32)
        b = tl.load(B + b_row[:, None] * F + cols[None, :], mask=m2, other=0.0).to(tl.float32)
        acc += tl.sum(a * b, axis=1)
    tl.store(OUT + msg, acc.to(OUT.dtype.element_ty), mask=em)


def _blocks(f: int) -> tuple[int, int]:
    bf = min(128, max(16, triton.next_power_of_2(max(f, 1))))
    return 32, bf


def _csr(index: Tensor, rows: int) -> tuple[Tensor, Tensor | None]:
    """``(ptr [rows + 1], perm)``: segment bounds of the sorted ``index`` and the sorting permutation (``None`` when
    ``index`` is already sorted)."""
    perm = None
    if index.numel() > 1 and not bool((index[1:] >= index[:-1]).all()):
        index, perm = torch.sort(index, stable=True)
    ptr = torch.searchsorted(index, torch.arange(rows + 1, device=index.device, dtype=index.dtype))
    return ptr, perm


def _reduce(values: Tensor, ptr: Tensor, gather: Tensor | None, weight: Tensor | None, rows: int, mean: bool,
            dtype: torch.dtype) -> Tensor:
    f = values.shape[1]
    out = torch.empty((rows, f), device=values.device, dtype=dtype)
    if rows == 0 or f == 0:
        return out.zero_()
    be, bf = _blocks(f)
    _segment_reduce[(rows, triton.cdiv(f, bf))](
        values, gather if gather is not None else ptr, weight if weight is not None else values, ptr, out, f,
        HAS_GATHER=gather is not None, HAS_WEIGHT=weight is not None, MEAN=mean, BE=be, BF=bf)
    return out


class _MessageScatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, index, dim_size, mean, gather, weight):
        flat = values.reshape(values.shape[0], math.prod(values.shape[1:])).contiguous()
        ptr, perm = _csr(index, dim_size)
        g = gather if perm is None or gather is None else gather[perm]
        if perm is not None and gather is None:
            g = perm
        w = None if weight is None else (weight if perm is None else weight[perm]).contiguous()
        out = _reduce(flat, ptr, None if g is None else g.contiguous(), w, dim_size, mean, values.dtype)
        ctx.save_for_backward(flat, index, gather, weight, ptr)
        ctx.mean, ctx.shape, ctx.dim_size = mean, values.shape, dim_size
        return out.view(dim_size, *values.shape[1:])

    @staticmethod
    def backward(ctx, g_out):
        flat, index, gather, weight, ptr = ctx.saved_tensors
        g = g_out.reshape(ctx.dim_size, math.prod(ctx.shape[1:]))
        if ctx.mean:
            g = g / (ptr[1:] - ptr[:-1]).clamp(min=1).to(g.dtype).unsqueeze(-1)
        g = g.contiguous()
        g_values = g_weight = None
        if ctx.needs_input_grad[0]:
            # transposed reduction: each source row sums the (weighted) output gradients of its messages
            if gather is None:
                each = torch.arange(index.numel() + 1, device=index.device, dtype=index.dtype)
                g_values = _reduce(g, each, index.contiguous(), weight, index.numel(), False, flat.dtype)
            else:
                ptr_t, perm_t = _csr(gather, flat.shape[0])
                src = index if perm_t is None else index[perm_t]
                w = None if weight is None else (weight if perm_t is None else weight[perm_t]).contiguous()
                g_values = _reduce(g, ptr_t, src.contiguous(), w, flat.shape[0], False, flat.dtype)
            g_values = g_values.view(ctx.shape)
        if weight is not None and ctx.needs_input_grad[5]:
            m, f = index.numel(), flat.shape[1]
            g_weight = torch.empty(m, device=weight.device, dtype=weight.dtype)
            if m:
                be, bf = _blocks(f)
                _message_dot[(triton.cdiv(m, be),)](g, index, flat, gather if gather is not None else index, g_weight,
                                                    m, f, HAS_B_INDEX=gather is not None, BE=be, BF=bf)
        return g_values, None, None, None, None, g_weight


def message_scatter_triton(values: Tensor, index: Tensor, dim_size: int, reduce: str = "sum", *,
                           gather: Tensor | None = None, weight: Tensor | None = None) -> Tensor:
    """The Triton kernel of :func:`~graphdiff.kernels.reference.message_scatter_reference` (same arguments, same
    results up to float rounding; differentiable in ``values`` and ``weight``)."""
    return _MessageScatter.apply(values, index.long(), int(dim_size), reduce == "mean",
                                 None if gather is None else gather.long(), weight)
