"""A prefix cache for :class:`~graphdiff.nn.ppgn.PPGNTransformerDenoiser`: the block-causal analogue of a
transformer's key/value cache, for PARD's block-by-block sampler.

Under the causal block rule (:mod:`graphdiff.nn.ppgn`) nothing of a level below a graph's highest level reads
anything of the highest level. While the sampler denoises one block, only the elements at the highest level change
between network calls (the block's noisy nodes and the pairs from them to every node); every node, pair and graph
vector of the lower levels takes the same value in every call. The first call of a chain runs the whole network and
*records*, per layer, what the highest level will need of the lower ones; the next calls recompute only the rows of
the highest-level nodes:

* node-level work (layer norms, FiLM, the attention projections) runs on all nodes, from the recorded layer inputs:
  it is ``O(N d^2)`` and cheap;
* pair-level work runs on the ``u`` rows of the highest-level nodes (``[B, u, N, d]`` instead of ``[B, N, N, d]``;
  the columns are their transposes, as ``e`` is symmetric);
* the PPGN product of a row is ``sum_k a_ik b_kj`` over every node ``k`` (the highest level reads everything), with
  the recorded factors ``a, b`` of the fixed pairs and the fresh rows and columns written into them;
* the graph vector of the highest level pools the recorded sums, sums of squares, minima and maxima of the fixed
  pairs together with the fresh rows.

A call whose inputs differ from the recorded ones anywhere below the highest level (or in ``t``, ``cond``, the mask
or the levels) runs the whole network again and records anew, so a stale cache cannot change a result; results
match the whole network's up to float rounding (``tests/nn/test_ppgn_cache.py``). The cache is used only without
gradients, in eval mode and without structural features (their prefix graphs would need the whole graph).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..state import GraphState

__all__ = ["PrefixCache"]


class PrefixCache:
    """Holds one recorded forward pass of a block-causal denoiser; pass it as ``denoiser(..., cache=cache)``.

    One cache serves one sequence of calls whose inputs differ only at each graph's highest block level (one block's
    reverse chain); with classifier-free guidance use one cache per condition input. ``hits`` counts the calls
    answered incrementally, ``misses`` the full passes.

    Memory: the recorded PPGN factors take ``2 x B x N^2 x hidden`` floats per PPGN layer (the price of the speed-up).
    """

    def __init__(self):
        self.entry: _Entry | None = None
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self.entry = None

    # ---- used by PPGNTransformerDenoiser.forward -------------------------------------------------------------------
    def begin(self, model, state: GraphState, t: Tensor, cond: Tensor, level: Tensor, causal: bool):
        """``(output, None)`` answered from the cache, or ``(None, recorder)`` for a full pass to record (recorder
        ``None`` where the cache cannot be used: training, gradients, structural features, no block levels)."""
        if model.training or torch.is_grad_enabled() or not causal or model.features.kinds:
            return None, None
        e = self.entry
        if e is not None and e.matches(state, t, cond, level):
            self.hits += 1
            return _incremental(model, e, state, t, cond, level), None
        self.misses += 1
        self.entry = None
        return None, _Recorder(state, t, cond, level)

    def store(self, recorder: "_Recorder", s, *, x: Tensor, y: Tensor, out_x: Tensor, out_e: Tensor,
              size: Tensor | None) -> None:
        self.entry = _Entry(recorder, s, x, y, out_x, out_e, size)


def _fixed_pair_stats(e: Tensor, fixed: Tensor) -> tuple[Tensor, ...]:
    """``(count [B, 1], sum, sum of squares, min, max [B, F])`` of ``e [B, N, N, F]`` over pairs with ``fixed``."""
    b, _, _, f = e.shape
    flat, w = e.reshape(b, -1, f), fixed.reshape(b, -1, 1)
    big = torch.finfo(e.dtype).max
    wf = w.to(e.dtype)
    return (wf.sum(1), (flat * wf).sum(1), (flat * flat * wf).sum(1),
            torch.where(w, flat, big).amin(1), torch.where(w, flat, -big).amax(1))


class _Recorder:
    """What a recording pass collects, layer by layer (called from :class:`~graphdiff.nn.ppgn.PPGNTransformerLayer`).
    """

    def __init__(self, state: GraphState, t: Tensor, cond: Tensor, level: Tensor):
        mask = state.mask.bool()
        self.x_in, self.e_in = state.x.clone(), state.e.clone()
        self.t, self.cond, self.mask, self.level = t.clone(), cond.clone(), mask.clone(), level.clone()
        self.top = level.amax(1) if level.shape[1] else torch.full_like(level[:, 0], -1)
        self.fixed = mask & (level < self.top.unsqueeze(1))
        off = ~torch.eye(mask.shape[1], dtype=torch.bool, device=mask.device)
        self.fixed_pairs = self.fixed.unsqueeze(2) & self.fixed.unsqueeze(1) & off
        self.layers: list[dict] = []

    def layer_input(self, x: Tensor, y: Tensor) -> None:
        self.layers.append({"x": x, "y": y})

    def ppgn_factors(self, a: Tensor, b: Tensor) -> None:
        # channel-first and contiguous: the layout of the batched products in the incremental pass
        self.layers[-1]["a"] = a.permute(0, 3, 1, 2).contiguous()
        self.layers[-1]["b"] = b.permute(0, 3, 1, 2).contiguous()

    def layer_output(self, e: Tensor) -> None:
        self.layers[-1]["e_stats"] = _fixed_pair_stats(e, self.fixed_pairs)


class _Entry:
    """One recorded pass: its inputs (to check reuse), per-layer records and outputs."""

    def __init__(self, rec: _Recorder, s, x: Tensor, y: Tensor, out_x: Tensor, out_e: Tensor, size: Tensor | None):
        self.rec, self.s = rec, s
        self.s.recorder = None
        self.x, self.y, self.out_x, self.out_e, self.size = x, y, out_x, out_e, size

    def matches(self, state: GraphState, t: Tensor, cond: Tensor, level: Tensor) -> bool:
        r = self.rec
        if (state.x.shape != r.x_in.shape or state.e.shape != r.e_in.shape or level.shape != r.level.shape
                or t.shape != r.t.shape or cond.shape != r.cond.shape or state.x.dtype != r.x_in.dtype):
            return False
        if not (torch.equal(state.mask.bool(), r.mask) and torch.equal(level, r.level) and torch.equal(t, r.t)
                and torch.equal(cond, r.cond)):
            return False
        fx, fp = r.fixed.unsqueeze(-1), r.fixed_pairs.unsqueeze(-1)
        return (torch.equal(torch.where(fx, state.x, 0.0), torch.where(fx, r.x_in, 0.0))
                and torch.equal(torch.where(fp, state.e, 0.0), torch.where(fp, r.e_in, 0.0)))


def _rows(v: Tensor, order: Tensor) -> Tensor:
    """Rows ``order [B, u]`` of ``v [B, N, ...]``: ``[B, u, ...]``."""
    return v[torch.arange(v.shape[0], device=v.device).unsqueeze(1), order]


def _put_rows_cols(dst: Tensor, vals: Tensor, bsel: Tensor, usel: Tensor, nsel: Tensor) -> None:
    """In place: rows and columns ``nsel`` of the channel-first pair tensor ``dst [B, C, N, N]`` from ``vals
    [B, u, N, C]`` (columns first, so that within-row pairs keep the row's value)."""
    v = vals[bsel, usel].transpose(1, 2)  # [M, C, N]
    dst[bsel, :, :, nsel] = v
    dst[bsel, :, nsel, :] = v


# Paper: Zhao et al. 2024, PARD (block-causal parallel training) -- reused for incremental sampling calls.
def _incremental(model, entry: _Entry, state: GraphState, t: Tensor, cond: Tensor, level: Tensor) -> GraphState:
    """The denoiser's output recomputing only the highest level of each graph (module docstring)."""
    from .layers import timestep_embedding
    from .ppgn import _BLOCK_EMB, causal_pool, finish_pool  # ppgn imports this module

    rec, s = entry.rec, entry.s
    mask = rec.mask
    b, n = mask.shape
    dt = state.x.dtype
    upd = mask & ~rec.fixed  # real nodes at the graph's highest level
    u = int(upd.sum(1).max()) if n else 0
    out_x, out_e = entry.out_x.clone(), entry.out_e.clone()
    size = None if entry.size is None else entry.size.clone()
    if u == 0:
        return GraphState(x=out_x, e=out_e, y=size, mask=state.mask)
    order = torch.argsort((~upd).to(torch.int8), dim=1, stable=True)[:, :u]  # [B, u], highest-level nodes first
    valid = torch.gather(upd, 1, order)
    bsel, usel = valid.nonzero(as_tuple=True)
    nsel = order[bsel, usel]
    has = upd.any(1)
    top = rec.top.clamp(min=0)
    ar = torch.arange(b, device=mask.device)
    nm_u = valid.unsqueeze(-1).to(dt)
    off = ~torch.eye(n, dtype=torch.bool, device=mask.device)
    real_rows = _rows(mask.unsqueeze(2) & mask.unsqueeze(1) & off, order) & valid.unsqueeze(-1)  # [B, u, N]
    pm_rows = _rows(s.pair_level >= 0, order) & valid.unsqueeze(-1)
    pm_u = pm_rows.unsqueeze(-1).to(dt)
    # pair-pool weights of the fresh rows: a row pair counts once, and once more for its transpose outside the rows
    pool_w = (real_rows.to(dt) * (1.0 + (~upd).unsqueeze(1).to(dt))).unsqueeze(-1)

    def put_nodes(base: Tensor, vals: Tensor) -> Tensor:
        out = base.clone()
        out[bsel, nsel] = vals[bsel, usel]
        return out

    def put_top(base: Tensor, vec: Tensor) -> Tensor:
        out = base.clone()
        out[ar[has], top[has]] = vec[has]
        return out

    def pool_top(x_all: Tensor, e_rows: Tensor, stats) -> Tensor:
        """``[pool(x), pool(e)]`` of the highest level: every real node, the fixed pairs' stats and the rows."""
        px = causal_pool(x_all, torch.where(mask, 0, -1), 1)[:, 0]
        cnt, s1, s2, mn, mx = stats
        big = torch.finfo(dt).max
        rows_ok = real_rows.unsqueeze(-1)
        cnt = cnt + pool_w.sum((1, 2))
        s1 = s1 + (e_rows * pool_w).sum((1, 2))
        s2 = s2 + (e_rows * e_rows * pool_w).sum((1, 2))
        mn = torch.minimum(mn, torch.where(rows_ok, e_rows, big).amin((1, 2)))
        mx = torch.maximum(mx, torch.where(rows_ok, e_rows, -big).amax((1, 2)))
        return torch.cat([px, finish_pool(cnt, s1, s2, mn, mx)], -1)

    # ---- inputs (as in PPGNTransformerDenoiser.forward, rows only for pairs) ----
    nmask = mask.unsqueeze(-1).to(dt)
    x0 = state.x * nmask
    lvf = level.clamp(min=0).to(dt)
    bemb = timestep_embedding(lvf.reshape(-1), _BLOCK_EMB).reshape(b, n, _BLOCK_EMB)
    x_u = _rows(model.in_x(torch.cat([x0, bemb], -1)) * nmask, order)
    gap = (_rows(lvf, order).unsqueeze(2) - lvf.unsqueeze(1)).abs()
    rel = torch.stack([(gap == 0).to(dt), 1.0 / (1.0 + gap)], -1)
    ein = state.e.to(dt)
    er = _rows(ein, order) * real_rows.unsqueeze(-1).to(dt)
    ec = _rows(ein.transpose(1, 2), order) * real_rows.unsqueeze(-1).to(dt)
    e_u = 0.5 * (model.in_e(torch.cat([er, rel], -1)) + model.in_e(torch.cat([ec, rel], -1))) * pm_u
    y_top = entry.rec.layers[0]["y"][ar, top]

    # ---- layers ----
    n_layers = len(model.layers)
    for li, layer in enumerate(model.layers):
        lr = rec.layers[li]
        x_all = put_nodes(lr["x"], x_u)
        y_all = put_top(lr["y"], y_top)
        d = x_all.shape[-1]
        h_, dh = layer.n_heads, d // layer.n_heads
        gx, bx = layer.film_x(y_all).chunk(2, -1)
        ge, be = layer.film_e(y_top).chunk(2, -1)
        xn = layer.norm_x(x_all) * (1.0 + s.at_nodes(gx)) + s.at_nodes(bx)
        en = layer.norm_e(e_u) * (1.0 + ge.view(b, 1, 1, d)) + be.view(b, 1, 1, d)
        xn_u = _rows(xn, order)
        uu, qq = layer.pair_u(xn), layer.pair_q(xn)
        pair = _rows(uu, order).unsqueeze(2) + uu.unsqueeze(1) + _rows(qq, order).unsqueeze(2) * qq.unsqueeze(1) / \
            math.sqrt(d)
        h = torch.nn.functional.silu(layer.pair_e(en) + pair)  # [B, u, N, d]
        e_u = e_u + layer.out_e(h) * pm_u
        q = layer.q(xn_u).view(b, u, h_, dh)
        k, v = layer.k(xn).view(b, n, h_, dh), layer.v(xn).view(b, n, h_, dh)
        scores = torch.einsum("bihd,bjhd->bijh", q, k) / math.sqrt(dh) + layer.score_e(h)
        allowed = _rows(s.attend, order).unsqueeze(-1)
        attn = torch.softmax(scores.masked_fill(~allowed, torch.finfo(scores.dtype).min), dim=2)
        attn = attn * allowed.to(attn.dtype)
        msg = torch.einsum("bijh,bjhd->bihd", attn, v)
        msg = msg + torch.einsum("bijh,bijhd->bihd", attn, layer.value_e(h).view(b, u, n, h_, dh))
        x_u = x_u + layer.out_x(msg.reshape(b, u, d)) * nm_u
        x_u = x_u + layer.ff_x(layer.norm_ffx(x_u)) * nm_u
        if layer.ppgn:
            ep = layer.norm_p(e_u)
            a_u, b_u = layer.m1(ep) * pm_u, layer.m2(ep) * pm_u
            a_all, b_all = lr["a"], lr["b"]  # [B, d, N, N], fixed part recorded; fresh rows/columns written in
            _put_rows_cols(a_all, a_u, bsel, usel, nsel)
            _put_rows_cols(b_all, b_u, bsel, usel, nsel)
            p_row = a_u.permute(0, 3, 1, 2) @ b_all  # [B, d, u, N]: sum_k a_ik b_kj
            p_col = a_all @ b_u.permute(0, 3, 2, 1)  # [B, d, N, u]: sum_k a_jk b_ki
            prod = (0.5 * (p_row + p_col.transpose(-1, -2))).permute(0, 2, 3, 1)
            pc = s.prefix_count
            count = torch.maximum(_rows(pc, order).unsqueeze(2), pc.unsqueeze(1)).clamp(min=1.0)
            e_u = e_u + layer.out_p(prod / count.unsqueeze(-1)) * pm_u
        e_u = e_u + layer.ff_e(layer.norm_ffe(e_u)) * pm_u
        if layer.update_y:
            x_next = rec.layers[li + 1]["x"] if li + 1 < n_layers else entry.x
            pooled = pool_top(put_nodes(x_next, x_u), e_u, lr["e_stats"])
            y_top = y_top + layer.pool_y(pooled)
            y_top = y_top + layer.ff_y(layer.norm_ffy(y_top))

    # ---- outputs ----
    ox = model.out_x(model.norm_x(x_u)) * nm_u
    out_x[bsel, nsel] = ox[bsel, usel]
    oe = model.out_e(model.norm_e(e_u)) * real_rows.unsqueeze(-1).to(dt)
    vals = oe[bsel, usel]  # [M, N, Ke]
    out_e[bsel, :, nsel] = vals
    out_e[bsel, nsel] = vals
    if size is not None:
        pooled = pool_top(put_nodes(entry.x, x_u), e_u, rec.layers[-1]["e_stats"])
        head = model.norm_s(torch.cat([y_top, pooled], -1))
        logits = model.out_size(head)
        if model.max_degree:
            hd = model.deg_in(head).unsqueeze(1) + model.deg_size.weight
            logits = torch.cat([logits, model.deg_out(hd).flatten(1)], -1)
        rows = size.view(b, -1, logits.shape[-1])
        rows[ar[has], top[has]] = logits[has]
    return GraphState(x=out_x, e=out_e, y=size, mask=state.mask)
