"""Block-by-block ancestral sampling of PARD (Zhao, Ding & Akoglu, NeurIPS 2024), as a pure function.

Starting from the empty graph, every round ``r``:

1. one network call on the graph so far predicts the size of block ``r`` (read at level ``2r``: the start node for
   ``r = 0``, else the clean copy of block ``r - 1``); it is drawn from the per-sample stream; 0 stops that sample.
   A size that would take the graph past ``schema.max_nodes`` is cut to fit (and counted); a graph already at
   ``max_nodes`` stops. With ``block_degree`` the block's degree is then drawn given that size, from the same call,
   and conditions the block's diffusion;
2. the block's nodes go into the next free slots and its nodes and pairs (within the block and to every earlier
   node) are drawn from the limit distribution;
3. ``steps`` strided DiGress reverse steps (DiGress eq. 4, :meth:`DiscreteDiffusion.reverse_probs`) update ONLY the
   block's nodes and pairs; earlier blocks stay fixed and clean. The last step samples ``x_0``;
4. the finished block's "shadow" is drawn: its noisy copy at a uniform step in ``{1..T}``, which is what the noisy
   copies of earlier blocks look like in training (``processes/pard.py``), so every network input is distributed
   as in training.

The loop ends when every sample stopped or after ``max_blocks`` blocks (default: the process's ``max_blocks`` plus a
margin, at most ``max_nodes``); samples still asking for a block then are counted and a one-line warning is given.
Network calls per graph (size calls + ``steps`` per block, doubled by guidance) land in ``process.last_stats`` and
accumulate in ``process.total_stats``; with ``block_degree`` so do the drawn degree of every node
(``last_stats["node_degree"]``) and the number of nodes whose edges to blocks up to their own match it
(``degree_matched``, out of ``nodes``: how well the model honours the degree it conditions on). The returned state
carries the block each node was generated in (``state.blocks``). ``callback(i, t, state)`` is called after each
reverse step with ``t = s / T`` and the whole batch (the current block at its noisy state).

Between two network calls only the newest levels change (the block being denoised; after a block, its clean copy
and its shadow), and under the causal rule nothing below reads them. With ``prefix_cache`` (default) the denoiser
keeps its latest pass and recomputes only the rows of the changed levels (:mod:`graphdiff.nn.ppgn_cache`; the
record is re-laid out when samples stop or slots are added), which gives the same graphs in a fraction of the time
(``benchmarks/prefix_cache.py``).
"""

from __future__ import annotations

import inspect
import warnings

import torch
import torch.nn.functional as F

from ..nn.ppgn_cache import PrefixCache
from ..processes import categorical as _cat  # module object: the processes package imports this package too
from ..progress import maybe
from ..state import GraphState
from .noise import SampleNoise


def _run_block(process, denoiser, cx, ce, nx, ne, node_time, blocks, r, ts, sub, cond, guidance, dtype, on_step,
               node_degree=None, caches=None):
    """The reverse chain of block ``r`` on a sub-batch of active samples, then the block's shadow.

    Args:
        cx, ce: clean one-hot categories (blocks ``< r`` final); nx, ne: noisy copies (shadows of blocks ``< r``).
        node_time: step of each node's noisy copy; blocks: block per slot (``r`` on the new block, -1 unused).
        ts: the strided steps ``T = t_0 > ... > 0``; sub: the sub-batch's streams; on_step: per-step hook.
        node_degree: each node's block degree (with ``process.block_degree``), else ``None``.
        caches: prefix caches (one per condition input, laid out for this sub-batch), or ``None``.

    Returns:
        ``(cx, ce, nx, ne, node_time, calls)`` with block ``r`` clean in ``cx, ce`` and shadowed in ``nx, ne``.

    Shapes:
        cx, nx: ``[B, N, node_states]``; ce, ne: ``[B, N, N, Ke]``; node_time, blocks: ``[B, N]``.
    """
    present = blocks >= 0
    in_r = blocks == r
    pair_r = (torch.maximum(blocks.unsqueeze(2), blocks.unsqueeze(1)) == r) & _cat.pair_mask(present)
    clean_mask = present & (blocks < r)
    b, n = blocks.shape
    # PARD: the new block starts from the limit distribution (DiGress prior), earlier blocks fixed
    init = process.sample_state(process.m_x.to(cx.device).expand(b, n, -1),
                                process.m_e.to(cx.device).expand(b, n, n, -1), present, sub, dtype)
    nx = torch.where(in_r.unsqueeze(-1), init.x, nx)
    ne = torch.where(pair_r.unsqueeze(-1), init.e, ne)
    calls, log_px = 0, None
    for i in range(len(ts) - 1):
        t, s = ts[i], ts[i + 1]
        tn = torch.where(in_r, torch.full_like(node_time, t), node_time)
        log_px, log_pe, _, _, c = process.predict_blocks(denoiser, cx, ce, nx, ne, tn, blocks, clean_mask, present,
                                                         cond=cond, guidance=guidance, node_degree=node_degree,
                                                         caches=caches)
        calls += c
        # DiGress eq. 4: p(x_s | x_t) = sum_x0 q(x_s | x_t, x0) p_theta(x0 | x_t), on block r only
        px, pe = process.reverse_probs(log_px.exp(), log_pe.exp(), GraphState(x=nx, e=ne, mask=present), t, s)
        draw = process.sample_state(px, pe, present, sub, dtype)
        nx = torch.where(in_r.unsqueeze(-1), draw.x, nx)
        ne = torch.where(pair_r.unsqueeze(-1), draw.e, ne)
        on_step(s, nx, ne, in_r, pair_r)
    filled = process.fill_masks(GraphState(x=nx, e=ne, mask=present), log_px)
    nx = torch.where(in_r.unsqueeze(-1), filled.x, nx)
    cx = torch.where(in_r.unsqueeze(-1), nx, cx)
    ce = torch.where(pair_r.unsqueeze(-1), ne, ce)
    # PARD Sec. 4 (parallel training) as laid out here: block r's shadow = its noisy copy at a uniform step
    t_sh = (1 + (sub.rand(1)[:, 0].to(cx.device) * process.T).long()).clamp(max=process.T)
    node_time = torch.where(in_r, t_sh.unsqueeze(1), node_time)
    t_pairs = torch.where(pair_r, t_sh.view(-1, 1, 1), torch.zeros_like(pair_r, dtype=torch.long))
    px, pe = process.noise_probs_at(cx.argmax(-1), ce.argmax(-1), node_time * present, t_pairs)
    draw = process.sample_state(px, pe, present, sub, dtype)
    nx = torch.where(in_r.unsqueeze(-1), draw.x, nx)
    ne = torch.where(pair_r.unsqueeze(-1), draw.e, ne)
    return cx, ce, nx, ne, node_time, calls


def _slot_map(old_cap: int, new_cap: int, device) -> torch.Tensor:
    """Where each slot of the doubled set with ``new_cap`` nodes per copy was in the one with ``old_cap``
    (``process.assemble``: start node, clean copies, noisy copies; ``-1`` for a new slot)."""
    i = torch.arange(new_cap, device=device)
    old = torch.where(i < old_cap, i, -1)
    return torch.cat([torch.zeros(1, dtype=torch.long, device=device), torch.where(old >= 0, 1 + old, -1),
                      torch.where(old >= 0, 1 + old_cap + old, -1)])


def _takes_cache(denoiser) -> bool:
    fwd = getattr(denoiser, "forward", denoiser)
    try:
        return "cache" in inspect.signature(fwd).parameters
    except (TypeError, ValueError):
        return False


@torch.no_grad()
def block_ancestral(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise, callback=None,
                    progress: bool = False, cond=None, guidance: float = 0.0, max_blocks: int | None = None,
                    prefix_cache: bool = True, select=None) -> GraphState:
    """Generate graphs block by block with PARD (see the module docstring).

    Args:
        process: a :class:`~graphdiff.processes.pard.BlockAutoregressive`.
        denoiser: a block-causal denoiser, ``denoiser(state, t, cond, block=levels) -> GraphState`` of node, pair
            and size logits (:class:`~graphdiff.nn.ppgn.PPGNTransformerDenoiser`).
        state: the prior (``process.prior``: the empty graph with ``schema.max_nodes`` slots).
        steps: reverse steps per block, ``1 <= steps <= T``.
        noise: per-sample streams.
        cond: ``[B, Fy]`` graph-level conditions (``None``: unconditional).
        guidance: classifier-free guidance weight ``w`` on nodes, pairs and block sizes.
        max_blocks: bound on blocks per graph (default: ``process.max_blocks`` plus a margin, at most max_nodes).
        prefix_cache: recompute only the rows of the levels that changed since the previous network call
            (:class:`~graphdiff.nn.ppgn_cache.PrefixCache`; the same results up to float rounding; used when the
            denoiser's ``forward`` takes ``cache=``); ``False`` runs the whole network in every call.
        select: ``select(r, graphs, active) -> [B]`` long, called after every round ``r`` that had active samples
            with the clean graphs so far (a state with ``blocks``) and which samples are still growing; row ``i``
            then continues from row ``select(...)[i]``'s graph and sampler state, with its own noise stream (the
            block-level search of :mod:`graphdiff.guidance.svdd_blocks`). ``None``: no selection.

    Returns:
        the final process state: one-hot, the generated nodes in slots ``0..n-1`` (``process.decode`` compacts it).

    Shapes:
        state: ``x [B, N, node_states]``, ``e [B, N, N, Ke]``, ``mask [B, N]`` with ``N = schema.max_nodes``.
    """
    ts = process.timesteps(steps)
    bound = process.block_bound(max_blocks)
    process.check_denoiser(denoiser)
    full = process.schema.max_nodes
    b, n, dev = state.batch_size, max(state.max_nodes, full), state.device
    y = _cat.check_condition(cond, process.schema, b) if cond is not None else None
    dtype = state.x.dtype if state.x.is_floating_point() else torch.float32
    blocks = torch.full((b, n), -1, dtype=torch.long, device=dev)
    cx = torch.zeros(b, n, process.node_states, dtype=dtype, device=dev)
    ce = F.one_hot(torch.zeros(b, n, n, dtype=torch.long, device=dev), process.ke).to(dtype)
    nx, ne = cx.clone(), ce.clone()
    node_time = torch.zeros(b, n, dtype=torch.long, device=dev)
    node_deg = torch.zeros(b, n, dtype=torch.long, device=dev) if process.block_degree else None
    count = torch.zeros(b, dtype=torch.long, device=dev)
    active = torch.ones(b, dtype=torch.bool, device=dev)
    calls = torch.zeros(b, dtype=torch.long)
    hit = torch.zeros(b, dtype=torch.bool, device=dev)
    cut = torch.zeros(b, dtype=torch.bool, device=dev)
    step_no = [0]
    caches = [PrefixCache(), PrefixCache()] if prefix_cache and _takes_cache(denoiser) else None
    layout = [None]  # (samples, slots per copy) of the caches' record

    def follow(new_idx, new_cap):
        """Re-lay the caches' record for a call on samples ``new_idx`` with ``new_cap`` slots per copy."""
        if caches is None:
            return
        if layout[0] is not None:
            old_idx, old_cap = layout[0]
            if not (torch.equal(old_idx, new_idx) and old_cap == new_cap):
                pos = (old_idx.unsqueeze(0) == new_idx.unsqueeze(1)).long().argmax(1)
                if not bool(torch.isin(new_idx, old_idx).all()):
                    for c in caches:
                        c.clear()
                else:
                    slots = _slot_map(old_cap, new_cap, dev).expand(len(new_idx), -1)
                    for c in caches:
                        c.reindex(pos, slots)
        layout[0] = (new_idx.clone(), new_cap)

    for r in maybe(range(bound + 1), progress, "pard"):
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        sub = noise.subset(idx.tolist())
        cap = max(int(count[idx].max()), 1)
        blk = blocks[idx, :cap]
        present = blk >= 0
        c_sub = None if y is None else y[idx.to(y.device)]
        follow(idx, cap)
        # PARD Sec. 3.2: the size of block r from the clean prefix (level 2r), 0 = stop
        _, _, log_size, log_deg, c = process.predict_blocks(
            denoiser, cx[idx, :cap], ce[idx, :cap, :cap], nx[idx, :cap], ne[idx, :cap, :cap], node_time[idx, :cap],
            blk, present, present, cond=c_sub, guidance=guidance,
            node_degree=None if node_deg is None else node_deg[idx, :cap], caches=caches)
        calls[idx.cpu()] += c
        size = _cat.sample_categorical(log_size[:, 2 * r].exp(), sub.rand(1)[:, 0].to(dev))
        if r == bound:
            hit[idx] = size > 0
            break
        room = full - count[idx]
        cut[idx[size > room]] = True
        size = torch.minimum(size, room)
        degree = None
        if log_deg is not None:  # PARD: the block's degree given its size, from the same network call
            given = log_deg[:, 2 * r].gather(1, size.view(-1, 1, 1).expand(-1, 1, log_deg.shape[-1])).squeeze(1)
            degree = _cat.sample_categorical(given.exp(), sub.rand(1)[:, 0].to(dev))
        go = size > 0
        active[idx[~go]] = False
        if not bool(go.any()):
            continue
        keep = go.nonzero().squeeze(1)
        idx, size, sub = idx[keep], size[keep], sub.subset(keep.tolist())
        degree = None if degree is None else degree[keep]
        c_sub = None if c_sub is None else c_sub[keep.to(c_sub.device)]
        start, stop = count[idx], count[idx] + size
        cap = int(stop.max())
        slots = torch.arange(cap, device=dev).unsqueeze(0)
        new = (slots >= start.unsqueeze(1)) & (slots < stop.unsqueeze(1))
        blocks[idx, :cap] = torch.where(new, r, blocks[idx, :cap])
        if degree is not None:
            node_deg[idx, :cap] = torch.where(new, degree.unsqueeze(1), node_deg[idx, :cap])
        count[idx] = stop

        def on_step(s, sx, se, in_r, pair_r, idx=idx, cap=cap):
            step_no[0] += 1
            if callback is None:
                return
            vx, ve = cx.clone(), ce.clone()
            vx[idx, :cap] = torch.where(in_r.unsqueeze(-1), sx, cx[idx, :cap])
            ve[idx, :cap, :cap] = torch.where(pair_r.unsqueeze(-1), se, ce[idx, :cap, :cap])
            callback(step_no[0] - 1, s / process.T, GraphState(x=vx, e=ve, mask=blocks >= 0, schema=process.schema))

        follow(idx, cap)
        out = _run_block(process, denoiser, cx[idx, :cap], ce[idx, :cap, :cap], nx[idx, :cap], ne[idx, :cap, :cap],
                         node_time[idx, :cap], blocks[idx, :cap], r, ts, sub, c_sub, guidance, dtype, on_step,
                         None if node_deg is None else node_deg[idx, :cap], caches)
        cx[idx, :cap], ce[idx, :cap, :cap], nx[idx, :cap], ne[idx, :cap, :cap], node_time[idx, :cap] = out[:5]
        calls[idx.cpu()] += out[5]
        if select is not None:
            pick = torch.as_tensor(select(r, GraphState(x=cx, e=ce, mask=blocks >= 0, schema=process.schema,
                                                        blocks=blocks), active.clone()), dtype=torch.long, device=dev)
            if not torch.equal(pick, torch.arange(b, device=dev)):  # rows continue from the chosen rows' graphs
                for tensor in (cx, ce, nx, ne, node_time, blocks, count, active, hit, cut) + \
                        ((node_deg,) if node_deg is not None else ()):
                    tensor.copy_(tensor[pick])
                if caches is not None:
                    for c in caches:
                        c.clear()
                    layout[0] = None

    n_blocks = (blocks.amax(1) + 1).cpu()
    stats = {"network_calls": calls, "blocks": n_blocks, "nodes": count.cpu(), "hit_max_blocks": int(hit.sum()),
             "truncated": int(cut.sum()), "max_blocks": bound, "node_degree": None, "degree_matched": 0}
    if node_deg is not None:  # how often a node's edges to blocks <= its own number the block degree it was given
        real = blocks >= 0
        prefix = (blocks.unsqueeze(1) <= blocks.unsqueeze(2)) & real.unsqueeze(1) & real.unsqueeze(2)
        got = ((ce.argmax(-1) > 0) & prefix).sum(-1)
        stats["node_degree"] = node_deg.masked_fill(~real, -1).cpu()
        stats["degree_matched"] = int(((got == node_deg) & real).sum())
    process.last_stats = stats
    for key, val in (("graphs", b), ("network_calls", int(calls.sum())), ("hit_max_blocks", stats["hit_max_blocks"]),
                     ("truncated", stats["truncated"]), ("nodes", int(count.sum())),
                     ("degree_matched", stats["degree_matched"])):
        process.total_stats[key] = process.total_stats.get(key, 0) + val
    if stats["hit_max_blocks"]:
        warnings.warn(f"pard sampler: {stats['hit_max_blocks']} of {b} samples reached max_blocks={bound} without "
                      "a stop; their graphs end there", stacklevel=3)
    if stats["truncated"]:
        warnings.warn(f"pard sampler: {stats['truncated']} of {b} samples proposed a block past max_nodes={full}; "
                      "it was cut to fit", stacklevel=3)
    return GraphState(x=cx, e=ce, mask=blocks >= 0, schema=process.schema, blocks=blocks)


BLOCK_SAMPLERS = {"block": block_ancestral}
