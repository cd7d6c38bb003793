"""What the ``kernels`` suite times: inputs of each kernel and the implementations compared.

Edge-conditioned attention (:func:`graphdiff.kernels.edge_attention_reference`):

- ``reference``: the torch reference, eager; ``compile``: ``torch.compile`` of it;
- ``sdpa``: ``scaled_dot_product_attention`` for the node output with an additive mask. The edge term is not
  additive in the score (``S (1 + M) + A``), but once ``S`` is known it is: the mask is ``S (1 + M) + A - S``,
  computed from the materialised modulated scores, which the new edge features need anyway;
- ``flex``: compiled FlexAttention with a ``score_mod`` reading the FiLM maps ``M``, ``A`` of the heads (and the
  padding mask); the edge output is computed in torch as in the reference;
- ``triton``: the fused kernel (CUDA only).

Message scatter (:func:`graphdiff.kernels.message_scatter_reference`), on the fully connected graphs of a padded
batch (every ordered pair of distinct real nodes is a message, destinations sorted as in the 3D networks):

- ``segment``: ``out[i] = mean_j values[e_ij]`` of per-message rows (the 3D networks' ``_scatter``);
- ``gather``: ``out[i] = sum_j w_ij h[j]`` (gather, weight and scatter in one call);

each by the ``reference``, ``compile`` (of the reference), ``pyg`` (``torch_geometric.utils.scatter`` of the
materialised messages) and ``triton`` (CUDA only).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from ..kernels import edge_attention_reference, message_scatter_reference

__all__ = ["attention_inputs", "scatter_inputs", "attention_routes", "scatter_routes", "attention_bytes",
           "scatter_bytes"]


def _mask(b: int, n: int, g: torch.Generator) -> Tensor:
    sizes = torch.randint(max(n // 2, 1), n + 1, (b,), generator=g)
    return torch.arange(n) < sizes[:, None]


def attention_inputs(b: int, n: int, heads: int, hidden: int, edge_hidden: int, dtype, device, seed: int = 0):
    """Random inputs of the edge-conditioned attention at the graph transformer's widths (``hidden`` split over
    ``heads``, edge width ``edge_hidden`` in and out); graphs of ``n / 2 .. n`` real nodes."""
    g = torch.Generator().manual_seed(seed)
    dh, de = hidden // heads, edge_hidden
    r = lambda *s, scale=0.5: (scale * torch.randn(*s, generator=g)).to(device=device, dtype=dtype)
    w = 1 / math.sqrt(de)
    return dict(q=r(b, n, heads, dh), k=r(b, n, heads, dh), v=r(b, n, heads, dh), qe=r(b, n, de), ke=r(b, n, de),
                e=r(b, n, n, de), mask=_mask(b, n, g).to(device), w_mul=r(heads + de, de, scale=w),
                b_mul=r(heads + de), w_add=r(heads + de, de, scale=w), b_add=r(heads + de),
                w_out=r(de, heads + de, scale=w), b_out=r(de))


def scatter_inputs(b: int, n: int, features: int, dtype, device, seed: int = 0):
    """The fully connected graphs of a random padded batch: messages ``[E, F]``, node rows ``[M, F]``, per-message
    weights ``[E]``, destinations (sorted) and sources."""
    g = torch.Generator().manual_seed(seed)
    mask = _mask(b, n, g)
    flat = torch.full((b, n), -1, dtype=torch.long)
    flat[mask] = torch.arange(int(mask.sum()))
    pairs = mask[:, :, None] & mask[:, None, :] & ~torch.eye(n, dtype=torch.bool)
    gb, gi, gj = pairs.nonzero(as_tuple=True)
    m, e = int(mask.sum()), gb.numel()
    r = lambda *s: torch.randn(*s, generator=g).to(device=device, dtype=dtype)
    return dict(messages=r(e, features), nodes=r(m, features), weight=r(e), dst=flat[gb, gi].to(device),
                src=flat[gb, gj].to(device), num_nodes=m)


def _film(q, k, qe, ke, e, w_mul, b_mul, w_add, b_add):
    h, dh, de = q.shape[2], q.shape[3], qe.shape[-1]
    scores = torch.einsum("bihd,bjhd->bijh", q, k) / math.sqrt(dh)
    mul, add = F.linear(e, w_mul, b_mul), F.linear(e, w_add, b_add)
    pair = torch.cat([scores, qe.unsqueeze(2) * ke.unsqueeze(1) / math.sqrt(de)], -1) * (mul + 1.0) + add
    return scores, mul[..., :h], add[..., :h], pair


def sdpa_route(q, k, v, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out):
    h = q.shape[2]
    scores, _, _, pair = _film(q, k, qe, ke, e, w_mul, b_mul, w_add, b_add)
    pm = (mask[:, :, None] & mask[:, None, :]).unsqueeze(-1)
    e_out = F.linear(pair, w_out, b_out) * pm.to(pair.dtype)
    bias = (pair[..., :h] - scores).permute(0, 3, 1, 2)
    bias = bias.masked_fill(~mask[:, None, None, :], torch.finfo(bias.dtype).min)
    x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=bias)
    return x.transpose(1, 2) * mask[:, :, None, None].to(x.dtype), e_out


_FLEX = None


def flex_route(q, k, v, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out):
    global _FLEX
    from torch.nn.attention.flex_attention import flex_attention

    if _FLEX is None:
        _FLEX = torch.compile(flex_attention, dynamic=False)
    _, mul, add, pair = _film(q, k, qe, ke, e, w_mul, b_mul, w_add, b_add)
    pm = (mask[:, :, None] & mask[:, None, :]).unsqueeze(-1)
    e_out = F.linear(pair, w_out, b_out) * pm.to(pair.dtype)
    mul, add = mul.permute(0, 3, 1, 2), add.permute(0, 3, 1, 2)

    def score_mod(score, b, h, qi, kv):
        s = score * (1.0 + mul[b, h, qi, kv]) + add[b, h, qi, kv]
        return torch.where(mask[b, kv], s, -float("inf"))

    x = _FLEX(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), score_mod=score_mod)
    return x.transpose(1, 2) * mask[:, :, None, None].to(x.dtype), e_out


def attention_routes(cuda: bool) -> dict:
    """name -> callable with the reference's arguments, returning ``(x, e_out)``."""
    routes = {"reference": edge_attention_reference,
              "compile": lambda *a: torch.compile(edge_attention_reference, dynamic=False)(*a),
              "sdpa": sdpa_route, "flex": flex_route}
    if cuda:
        from ..kernels.attention_triton import edge_attention_triton

        routes["triton"] = edge_attention_triton
    return routes


def scatter_routes(cuda: bool) -> dict:
    """name -> callable ``(values, index, dim_size, reduce, gather, weight)``."""
    from torch_geometric.utils import scatter

    def pyg(values, index, dim_size, reduce, gather, weight):
        rows = values if gather is None else values[gather]
        rows = rows if weight is None else rows * weight[:, None]
        return scatter(rows, index, dim=0, dim_size=dim_size, reduce=reduce)

    ref = lambda values, index, dim_size, reduce, gather, weight: message_scatter_reference(
        values, index, dim_size, reduce, gather=gather, weight=weight)
    routes = {"reference": ref, "compile": lambda *a: torch.compile(ref, dynamic=False)(*a), "pyg": pyg}
    if cuda:
        from ..kernels.scatter_triton import message_scatter_triton

        routes["triton"] = lambda values, index, dim_size, reduce, gather, weight: message_scatter_triton(
            values, index, dim_size, reduce, gather=gather, weight=weight)
    return routes


def attention_bytes(inp: dict) -> int:
    """Bytes the attention must move at least: read ``q, k, v, qe, ke, e``, write ``x`` and ``e_out``."""
    size = inp["q"].element_size()
    b, n = inp["mask"].shape
    return size * (4 * inp["q"].numel() + 2 * inp["qe"].numel() + inp["e"].numel() + b * n * n * inp["w_out"].shape[0])


def scatter_bytes(inp: dict, variant: str) -> int:
    """Bytes a scatter must move at least: read the rows (messages, or node rows once), indices (and weights), write
    the output."""
    size, e, m = inp["messages"].element_size(), inp["dst"].numel(), inp["num_nodes"]
    f = inp["messages"].shape[1]
    if variant == "segment":
        return size * (e * f + m * f) + 8 * e
    return size * (2 * m * f + e) + 16 * e
