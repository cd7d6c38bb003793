"""A prefix cache for :class:`~graphdiff.nn.ppgn.PPGNTransformerDenoiser`: the block-causal analogue of a
transformer's key/value cache, for PARD's block-by-block sampler.

Under the causal block rule (:mod:`graphdiff.nn.ppgn`) nothing of a level ``c`` reads anything of a level above
``c``. So when a call differs from the previous one only at levels ``>= c`` of a graph (its threshold), every node,
pair and graph vector of the levels below ``c`` keeps the value it had; only the nodes at levels ``>= c`` (``u`` of
them) need recomputing, together with every pair that touches them:

* node-level work (layer norms, FiLM, the attention projections, node pooling) runs on all nodes, from the
  recorded layer inputs: it is ``O(N d^2)`` and cheap;
* pair-level work runs on the ``u`` rows of the recomputed nodes (``[B, u, N, d]`` instead of ``[B, N, N, d]``;
  the columns are their transposes, as ``e`` is symmetric);
* the PPGN product of such a row, ``sum_k a_ik b_kj`` over ``k`` of levels ``<= max(level_i, level_j)``, reads the
  recorded factors ``a, b`` of every pair, into which the fresh rows and columns are written;
* the graph vectors of the recomputed levels pool the recorded prefix statistics (sums, sums of squares, minima,
  maxima) of the levels below the threshold together with the fresh rows.

The cache keeps the latest call (the first one runs the whole network and records it; each later call updates the
record), so consecutive calls of PARD's sampler -- a block's size, then the block's reverse chain, then the next
size -- each recompute one or two levels. :meth:`PrefixCache.reindex` follows the sampler when it drops finished
samples or moves slots. A call that differs in ``t`` or ``cond`` (or at more than ``max_fraction`` of the nodes,
when that is set below its default of 1) runs the whole network: recomputing rows costs about what the whole pass
costs even when most nodes changed, and it saves recording the pass again. Results match the whole network's up
to float rounding (``tests/nn/test_ppgn_cache.py``). The cache is used only without gradients, in eval mode and
without structural features (a prefix graph's features would need recomputing for every level).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..state import GraphState
from .block_causal import BlockStructure, gather_levels, causal_pool, finish_pool, level_stats

__all__ = ["PrefixCache"]


class PrefixCache:
    """Holds the latest forward pass of a block-causal denoiser; pass it as ``denoiser(..., cache=cache)``.

    With classifier-free guidance use one cache per condition input. A call that would recompute more than
    ``max_fraction`` of the real nodes (default 1: never) runs the whole network instead. ``hits`` counts the
    calls answered incrementally, ``misses`` the full passes, ``recomputed`` / ``nodes`` the recomputed and total
    real nodes over the hits.

    Memory: the recorded PPGN factors take ``2 x B x N^2 x hidden`` floats per PPGN layer.
    """

    def __init__(self, max_fraction: float = 1.0):
        self.max_fraction = float(max_fraction)  # recompute at most this fraction of the real nodes, else run it all
        self.entry: _Entry | None = None
        self.hits = self.misses = self.recomputed = self.nodes = 0

    def clear(self) -> None:
        self.entry = None

    def reindex(self, batch: Tensor, slots: Tensor) -> None:
        """Re-lay the record for a call whose sample ``i`` is recorded sample ``batch[i]`` and whose slot ``j`` is
        recorded slot ``slots[i, j]`` (``-1``: a new, empty slot)."""
        if self.entry is not None:
            self.entry.reindex(batch, slots)

    # ---- used by PPGNTransformerDenoiser.forward -------------------------------------------------------------------
    def begin(self, model, state: GraphState, t: Tensor, cond: Tensor, level: Tensor, causal: bool):
        """``(output, None)`` answered from the record, or ``(None, recorder)`` for a full pass to record (recorder
        ``None`` where the cache cannot be used: training, gradients, structural features, no block levels)."""
        if model.training or torch.is_grad_enabled() or not causal or model.features.kinds:
            return None, None
        e = self.entry
        thr = e.threshold(state, t, cond, level) if e is not None else None
        if thr is not None:
            mask = state.mask.bool()
            upd = mask & (level >= thr.unsqueeze(1))
            n_upd, n_real = int(upd.sum()), int(mask.sum())
            if n_upd <= self.max_fraction * n_real:
                self.hits += 1
                self.recomputed, self.nodes = self.recomputed + n_upd, self.nodes + n_real
                return _incremental(model, e, state, t, cond, level, thr, upd), None
        self.misses += 1
        self.entry = None
        return None, _Recorder()

    def store(self, recorder: "_Recorder", s, *, x: Tensor, y: Tensor, out_x: Tensor, out_e: Tensor,
              size: Tensor | None, state: GraphState, t: Tensor, cond: Tensor, level: Tensor) -> None:
        s.recorder = None
        self.entry = _Entry(recorder.layers, s, state, t, cond, level, x, y, out_x, out_e, size)


class _Recorder:
    """What a recording pass collects, layer by layer (called from :class:`~graphdiff.nn.ppgn.PPGNTransformerLayer`
    and the size head)."""

    def __init__(self):
        self.layers: list[dict] = []

    def layer_input(self, x: Tensor, y: Tensor) -> None:
        self.layers.append({"x": x, "y": y})

    def ppgn_factors(self, a: Tensor, b: Tensor) -> None:
        # channel-first and contiguous: the layout of the batched products in the incremental pass
        self.layers[-1]["a"] = a.permute(0, 3, 1, 2).contiguous()
        self.layers[-1]["b"] = b.permute(0, 3, 1, 2).contiguous()

    def pair_stats(self, stats: tuple[Tensor, ...]) -> None:
        """Prefix statistics of the layer's output pairs (the size head's, for the last layer)."""
        self.layers[-1]["e_stats"] = stats


def _eq(a: Tensor, b: Tensor) -> Tensor:
    return (a == b).reshape(*a.shape[:2], -1).all(-1) if a.dim() > 2 else a == b


class _Entry:
    """The latest call: its inputs, per-layer records (inputs, PPGN factors, pair prefix statistics) and outputs."""

    def __init__(self, layers, s, state: GraphState, t, cond, level, x, y, out_x, out_e, size):
        self.layers, self.s = layers, s
        self.x_in, self.e_in = state.x.clone(), state.e.clone()
        self.mask, self.level, self.t, self.cond = state.mask.bool().clone(), level.clone(), t.clone(), cond.clone()
        self.x, self.y, self.out_x, self.out_e, self.size = x, y, out_x, out_e, size

    def threshold(self, state: GraphState, t: Tensor, cond: Tensor, level: Tensor) -> Tensor | None:
        """Per graph, the lowest level at which this call differs from the record (a large value where it does not
        differ); ``None`` if the whole call differs (shapes, ``t``, ``cond``)."""
        if (state.x.shape != self.x_in.shape or state.e.shape != self.e_in.shape or level.shape != self.level.shape
                or t.shape != self.t.shape or cond.shape != self.cond.shape or state.x.dtype != self.x_in.dtype):
            return None
        if not (torch.equal(t, self.t) and torch.equal(cond, self.cond)):
            return None
        mask = state.mask.bool()
        big = torch.iinfo(torch.long).max // 4
        # each node's lowest level in either call, "big" where absent from both
        low = torch.minimum(torch.where(mask, level, big), torch.where(self.mask, self.level, big))
        node_diff = (mask != self.mask) | ((mask | self.mask) & ((level != self.level) | ~_eq(state.x, self.x_in)))
        pair_low = torch.maximum(low.unsqueeze(2), low.unsqueeze(1))
        pair_diff = (state.e != self.e_in).any(-1) & (pair_low < big)
        thr = torch.minimum(torch.where(node_diff, low, big).amin(1),
                            torch.where(pair_diff, pair_low, big).amin((1, 2)))
        # levels above the recorded last one were never computed for this graph (their size rows are zero)
        last = torch.where(self.mask, self.level, -1).amax(1) if level.shape[1] else torch.full_like(thr, -1)
        return torch.minimum(thr, last + 1)

    def reindex(self, batch: Tensor, slots: Tensor) -> None:
        """See :meth:`PrefixCache.reindex`."""
        b2, n2 = slots.shape
        new = slots < 0
        idx = slots.clamp(min=0)
        keep2 = (~new).unsqueeze(2) & (~new).unsqueeze(1)

        def nodes(v, fill=0):
            out = v[batch.unsqueeze(1), idx]
            return out.masked_fill(new.view(b2, n2, *([1] * (out.dim() - 2))), fill)

        def pairs(v):  # [B, N, N, F]
            out = v[batch.view(-1, 1, 1), idx.unsqueeze(2), idx.unsqueeze(1)]
            return out * keep2.unsqueeze(-1).to(out.dtype)

        def pairs_cf(v):  # [B, C, N, N]
            out = v[batch].gather(2, idx.view(b2, 1, n2, 1).expand(-1, v.shape[1], -1, v.shape[3]))
            out = out.gather(3, idx.view(b2, 1, 1, n2).expand(-1, v.shape[1], n2, -1))
            return out * keep2.unsqueeze(1).to(out.dtype)

        self.mask = nodes(self.mask, False)
        self.level = nodes(self.level, -1)
        self.x_in, self.e_in = nodes(self.x_in), pairs(self.e_in)
        self.t, self.cond, self.y = self.t[batch], self.cond[batch], self.y[batch]
        self.x, self.out_x, self.out_e = nodes(self.x), nodes(self.out_x), pairs(self.out_e)
        self.size = None if self.size is None else self.size[batch]
        for rec in self.layers:
            rec["x"], rec["y"] = nodes(rec["x"]), rec["y"][batch]
            if "a" in rec:
                rec["a"], rec["b"] = pairs_cf(rec["a"]), pairs_cf(rec["b"])
            if "e_stats" in rec:
                rec["e_stats"] = tuple(v[batch] for v in rec["e_stats"])
        self.s = None  # rebuilt from the new levels at the next call


def _rows(v: Tensor, order: Tensor) -> Tensor:
    """Rows ``order [B, u]`` of ``v [B, N, ...]``: ``[B, u, ...]``."""
    return v[torch.arange(v.shape[0], device=v.device).unsqueeze(1), order]


def _put_rows_cols(dst: Tensor, vals: Tensor, bsel: Tensor, usel: Tensor, nsel: Tensor) -> None:
    """In place: rows and columns ``nsel`` of the channel-first pair tensor ``dst [B, C, N, N]`` from ``vals
    [B, u, N, C]`` (columns first, so that within-row pairs keep the row's value)."""
    v = vals[bsel, usel].transpose(1, 2)  # [M, C, N]
    dst[bsel, :, :, nsel] = v
    dst[bsel, :, nsel, :] = v


def _pad_levels(v: Tensor, n_levels: int) -> Tensor:
    """``v [B, L, ...]`` cut or zero-padded to ``n_levels`` rows."""
    if v.shape[1] >= n_levels:
        return v[:, :n_levels]
    return torch.cat([v, v.new_zeros(v.shape[0], n_levels - v.shape[1], *v.shape[2:])], 1)


def _merge_stats(fixed: tuple[Tensor, ...], fresh: tuple[Tensor, ...], thr: Tensor) -> tuple[Tensor, ...]:
    """Prefix statistics per level of this call: the recorded ones below the threshold, above it the recorded
    prefix up to ``thr - 1`` combined with the fresh entries' prefix statistics."""
    lv = fresh[0].shape[1]
    fixed = tuple(_pad_levels(v, lv) for v in fixed)
    b = thr.shape[0]
    below = torch.arange(lv, device=thr.device).view(1, lv, 1) < thr.view(b, 1, 1)
    at = (thr - 1).clamp(min=0, max=lv - 1).view(b, 1, 1)
    empty = (thr <= 0).view(b, 1, 1)
    out = []
    for i, (f, g) in enumerate(zip(fixed, fresh)):
        base = f.gather(1, at.expand(-1, 1, f.shape[-1]))  # [B, 1, F]: the prefix below the threshold
        if i < 3:
            base = torch.where(empty, 0.0, base)
            comb = base + g
        else:
            big = torch.finfo(f.dtype).max
            base = torch.where(empty, big if i == 3 else -big, base)
            comb = torch.minimum(base, g) if i == 3 else torch.maximum(base, g)
        out.append(torch.where(below, f, comb))
    return tuple(out)


# Paper: Zhao et al. 2024, PARD (block-causal parallel training) -- reused for incremental sampling calls.
def _incremental(model, entry: _Entry, state: GraphState, t: Tensor, cond: Tensor, level: Tensor, thr: Tensor,
                 upd: Tensor) -> GraphState:
    """The denoiser's output recomputing only the nodes ``upd`` (levels ``>= thr``) and their pairs (module
    docstring); updates ``entry`` to this call."""

    mask = state.mask.bool()
    b, n = mask.shape
    dt = state.x.dtype
    same_levels = torch.equal(mask, entry.mask) and torch.equal(level, entry.level) and entry.s is not None
    s = entry.s if same_levels else BlockStructure.build(mask, level, causal=True, dtype=dt)
    lv = s.n_levels
    fixed = mask & ~upd
    stale = entry.mask & ~fixed  # recorded slots whose values must not be read any more
    lvl_idx = torch.arange(lv, device=mask.device).view(1, lv, 1)
    below = lvl_idx < thr.view(b, 1, 1)
    # at least one row (then invalid where nothing is recomputed: a graph that lost nodes still updates its record)
    u = max(int(upd.sum(1).max()) if n else 0, 1)
    order = torch.argsort((~upd).to(torch.int8), dim=1, stable=True)[:, :u]  # [B, u], recomputed nodes first
    valid = torch.gather(upd, 1, order)
    bsel, usel = valid.nonzero(as_tuple=True)
    nsel = order[bsel, usel]
    nm_u = valid.unsqueeze(-1).to(dt)
    off = ~torch.eye(n, dtype=torch.bool, device=mask.device)
    real_rows = _rows(mask.unsqueeze(2) & mask.unsqueeze(1) & off, order) & valid.unsqueeze(-1)  # [B, u, N]
    pl_rows = torch.where(valid.unsqueeze(-1), _rows(s.pair_level, order), -1)  # pair levels of the rows
    pm_u = (pl_rows >= 0).unsqueeze(-1).to(dt)
    # pair-pool entries of the rows: a row pair counts once, and once more for its transpose outside the rows
    pool_level = torch.where(real_rows, pl_rows, -1).reshape(b, -1)
    pool_w = (1.0 + (~upd).unsqueeze(1).to(dt)).expand(b, u, n).reshape(b, -1)
    lu = _rows(level, order)  # levels of the recomputed nodes
    ok_u = (mask.unsqueeze(1) & (level.unsqueeze(1) <= lu.unsqueeze(2))).unsqueeze(1).to(dt)  # [B, 1, u, N]: k ok
    spread = torch.where(valid, lu, -1).amax(1) != torch.where(valid, lu, torch.iinfo(lu.dtype).max).amin(1)
    multi = bool((spread & valid.any(1)).any())  # some graph recomputes nodes of more than one level

    def put_nodes(base: Tensor, vals: Tensor) -> Tensor:
        out = torch.where(fixed.unsqueeze(-1), base, 0.0)
        out[bsel, nsel] = vals[bsel, usel]
        return out

    def merge_y(rec_y: Tensor, fresh: Tensor) -> Tensor:
        return torch.where(below, _pad_levels(rec_y, lv), fresh)

    def pools(x_all: Tensor, e_rows: Tensor, stats) -> tuple[Tensor, tuple]:
        fresh = level_stats(e_rows.reshape(b, -1, e_rows.shape[-1]), pool_level, lv, pool_w)
        merged = _merge_stats(stats, fresh, thr)
        return torch.cat([causal_pool(x_all, level, lv), finish_pool(*merged)], -1), merged

    # ---- inputs (as in PPGNTransformerDenoiser.forward, rows only for pairs) ----
    nmask = mask.unsqueeze(-1).to(dt)
    lvf = level.clamp(min=0).to(dt)
    none = state.x.new_zeros(b, n, 0)
    x_u = _rows(model.embed_nodes(state.x * nmask, none, lvf) * nmask, order)
    lvf_u, none_u = _rows(lvf, order), state.x.new_zeros(b, u, n, 0)
    ein = state.e.to(dt)
    er = _rows(ein, order) * real_rows.unsqueeze(-1).to(dt)
    ec = _rows(ein.transpose(1, 2), order) * real_rows.unsqueeze(-1).to(dt)
    e_u = 0.5 * (model.embed_pairs(er, none_u, lvf_u, lvf) + model.embed_pairs(ec, none_u, lvf_u, lvf)) * pm_u
    y = merge_y(entry.layers[0]["y"], model.embed_graph(t, cond, state.x.new_zeros(b, lv, 0), level, mask, lv))

    plc = pl_rows.clamp(min=0)
    attend_u = _rows(s.attend, order)

    def rows(v: Tensor) -> Tensor:
        return _rows(v, order)

    # ---- layers ----
    n_layers = len(model.layers)
    for li, layer in enumerate(model.layers):
        lr = entry.layers[li]
        x_all = put_nodes(lr["x"], x_u)
        lr["x"], lr["y"] = x_all, y
        d = x_all.shape[-1]
        gx, bx = layer.film_x(y).chunk(2, -1)
        ge, be = layer.film_e(y).chunk(2, -1)
        xn = layer.norm_x(x_all) * (1.0 + s.at_nodes(gx)) + s.at_nodes(bx)
        en = layer.norm_e(e_u) * (1.0 + gather_levels(ge, plc)) + gather_levels(be, plc)
        h = layer.pair_hidden(xn, en, rows)  # [B, u, N, d]
        e_u = e_u + layer.out_e(h) * pm_u
        x_u = x_u + layer.attend(xn, h, attend_u, rows) * nm_u
        x_u = x_u + layer.ff_x(layer.norm_ffx(x_u)) * nm_u
        if layer.ppgn:
            ep = layer.norm_p(e_u)
            a_u, b_u = layer.m1(ep) * pm_u, layer.m2(ep) * pm_u
            a_all, b_all = lr["a"], lr["b"]  # [B, d, N, N]: the record, updated in place to this call
            _zero_rows_cols(a_all, b_all, stale & ~upd)
            _put_rows_cols(a_all, a_u, bsel, usel, nsel)
            _put_rows_cols(b_all, b_u, bsel, usel, nsel)
            a_cf, b_cf = a_u.permute(0, 3, 1, 2), b_u.permute(0, 3, 1, 2)  # [B, d, u, N]
            # pair (i, j), i recomputed: k of levels <= max(level_i, level_j); where level_j <= level_i that is
            # "k <= level_i", a mask on row i
            p_row = (a_cf * ok_u) @ b_all  # [B, d, u, N]: P_ij
            p_col = (a_all @ (b_cf * ok_u).transpose(-1, -2)).transpose(-1, -2)  # [B, d, u, N]: P_ji
            if multi:  # pairs of two recomputed nodes with level_j > level_i: "k <= level_j", a mask on row j
                hi = (lu.unsqueeze(1) > lu.unsqueeze(2)) & valid.unsqueeze(1) & valid.unsqueeze(2)  # [B, i, j]
                uu_row = a_cf @ (b_cf * ok_u).transpose(-1, -2)  # [B, d, i, j]
                uu_col = ((a_cf * ok_u) @ b_cf.transpose(-1, -2)).transpose(-1, -2)  # [B, d, i, j]: P_ji
                cols = order.view(b, 1, 1, u).expand(-1, d, u, -1)
                p_row = p_row.scatter(3, cols, torch.where(hi.unsqueeze(1), uu_row, p_row.gather(3, cols)))
                p_col = p_col.scatter(3, cols, torch.where(hi.unsqueeze(1), uu_col, p_col.gather(3, cols)))
            prod = (0.5 * (p_row + p_col)).permute(0, 2, 3, 1)
            pc = s.prefix_count
            count = torch.maximum(_rows(pc, order).unsqueeze(2), pc.unsqueeze(1)).clamp(min=1.0)
            e_u = e_u + layer.out_p(prod / count.unsqueeze(-1)) * pm_u
        e_u = e_u + layer.ff_e(layer.norm_ffe(e_u)) * pm_u
        x_next = entry.layers[li + 1]["x"] if li + 1 < n_layers else entry.x
        if layer.update_y:
            pooled, lr["e_stats"] = pools(put_nodes(x_next, x_u), e_u, lr["e_stats"])
            y_new = y + layer.pool_y(pooled)
            y_new = y_new + layer.ff_y(layer.norm_ffy(y_new))
            y = merge_y(entry.layers[li + 1]["y"] if li + 1 < n_layers else entry.y, y_new)

    # ---- outputs ----
    x_fin = put_nodes(entry.x, x_u)
    ox = model.out_x(model.norm_x(x_u)) * nm_u
    out_x = torch.where(fixed.unsqueeze(-1), entry.out_x, 0.0)
    out_x[bsel, nsel] = ox[bsel, usel]
    oe = model.out_e(model.norm_e(e_u)) * real_rows.unsqueeze(-1).to(dt)
    out_e = torch.where((fixed.unsqueeze(2) & fixed.unsqueeze(1)).unsqueeze(-1), entry.out_e, 0.0)
    vals = oe[bsel, usel]  # [M, N, Ke]
    out_e[bsel, :, nsel] = vals
    out_e[bsel, nsel] = vals
    size = None
    if entry.size is not None:
        pooled, entry.layers[-1]["e_stats"] = pools(x_fin, e_u, entry.layers[-1]["e_stats"])
        fresh = model.head_logits(y, pooled, level)
        k = fresh.shape[1] // lv
        size = torch.where(below, _pad_levels(entry.size.view(b, -1, k), lv), fresh.view(b, lv, k)).reshape(b, -1)
    # the record now describes this call
    entry.s, entry.x, entry.y, entry.out_x, entry.out_e, entry.size = s, x_fin, y, out_x, out_e, size
    entry.x_in, entry.e_in = state.x.clone(), state.e.clone()
    entry.mask, entry.level = mask.clone(), level.clone()
    return GraphState(x=out_x, e=out_e, y=size, mask=state.mask)


def _zero_rows_cols(a: Tensor, b: Tensor, slots: Tensor) -> None:
    """In place: zero the rows and columns ``slots [B, N]`` (bool) of the channel-first pair tensors."""
    if not bool(slots.any()):
        return
    bi, ni = slots.nonzero(as_tuple=True)
    for v in (a, b):
        v[bi, :, :, ni] = 0.0
        v[bi, :, ni, :] = 0.0
