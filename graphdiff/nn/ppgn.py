"""PARD's higher-order graph transformer with a causal block mask (Zhao, Ding & Akoglu, NeurIPS 2024, "Pard:
Permutation-Invariant Autoregressive Diffusion for Graph Generation").

PARD generates a graph block by block. Every node carries a block index; a block's nodes and edges are denoised by
one shared, permutation-equivariant network that conditions on all earlier blocks, and all blocks are trained in
parallel, like a GPT, by masking what each element may read. The network interleaves two kinds of layers:

* attention over nodes whose scores and messages also come from the edge stream (as in GRIT, Ma et al. 2023);
* PPGN edge-to-edge products (Maron et al. 2019, "Provably Powerful Graph Networks"):
  ``E'_ij = sum_k MLP1(E)_ik MLP2(E)_kj`` per channel, a batched matrix product over the node dimension, which
  gives the network PPGN's 3-WL distinguishing power; PARD adds it because a network bounded by 1-WL sees too many
  nodes of a block as interchangeable.

Causal rule (``block`` given): write ``b_i`` for node ``i``'s block and let pair ``(i, j)`` belong to block
``max(b_i, b_j)``. An element of block ``c`` reads only nodes and pairs of blocks ``<= c``:

* attention: node ``i`` attends to node ``j`` only if ``b_j <= b_i``;
* PPGN product for pair ``(i, j)``: only ``k`` with ``b_k <= max(b_i, b_j)`` contributes (``(i, k)`` and ``(k, j)``
  then belong to blocks ``<= max(b_i, b_j)`` too);
* graph level: one graph vector per block ``c`` (``y_c``), pooled from the nodes of blocks ``<= c`` and the pairs of
  blocks ``<= c``; node ``i`` is modulated by ``y_{b_i}``, pair ``(i, j)`` by ``y_{max(b_i, b_j)}``;
* structural features (:mod:`graphdiff.nn.features`) are computed on the prefix graph of blocks ``<= c`` and given
  to the nodes and pairs of block ``c`` (and, for graph-level features, to ``y_c``).

With ``block=None`` every real node is in block 0 and the network is an ordinary (non-causal) denoiser.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..errors import ConfigError, SchemaError
from ..state import GraphState, pair_mask
from .features import ExtraFeatures
from .layers import check_inputs, check_sizes, run_layers, timestep_embedding
from .block_causal import BlockStructure, block_causal_matmul, causal_pool, finish_pool, level_stats
from .ppgn_cache import PrefixCache

__all__ = ["PPGNTransformerDenoiser", "PPGNTransformerLayer", "BlockStructure", "block_causal_matmul", "causal_pool",
           "level_stats", "finish_pool"]

_BLOCK_EMB = 16  # width of the sinusoidal block-index embedding


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, o))


# ---- one layer --------------------------------------------------------------------------------------------------


# Paper: Zhao et al. 2024, PARD, "higher-order transformer" (attention + PPGN block); Ma et al. 2023, GRIT, Sec. 3.
class PPGNTransformerLayer(nn.Module):
    """One block of PARD's higher-order transformer: edge-aware causal attention, then (optionally) a causal PPGN
    product on the edge stream, then an update of the per-block graph vectors.

    Pre-norm residual structure. With ``xn = LN(x)``, ``en = LN(e)`` FiLM-modulated by the graph vector of their
    block (``y_{b_i}`` for nodes, ``y_{max(b_i, b_j)}`` for pairs):

    1. pair features ``h_ij = SiLU(W_e en_ij + U xn_i + U xn_j + (Q xn_i) o (Q xn_j) / sqrt(d))`` (symmetric);
       ``e += O_e(h)``;
    2. attention of node ``i`` over the nodes ``j`` it may read (``b_j <= b_i``): scores
       ``q_i . k_j / sqrt(d_h) + A(h_ij)``, messages ``v_j + V_e(h_ij)`` (GINE-like, as in GRIT); ``x += O_x(.)``,
       then a feed-forward block on ``x``;
    3. with ``ppgn``: ``e += O_p(sym(P) / n_ij)`` with ``P = block_causal_matmul(M1(LN e), M2(LN e))``, ``sym`` the
       average with the transpose (keeps ``e`` symmetric) and ``n_ij`` the number of nodes that may contribute;
       then a feed-forward block on ``e``;
    4. with ``update_y``: ``y_c += Y([pool_c(x), pool_c(e)])`` (:func:`causal_pool`), then a feed-forward block.

    Args:
        dim: width of the node, edge and graph streams (a multiple of ``n_heads``).
        n_heads: attention heads.
        ppgn: include the PPGN product.
        update_y: update the graph vectors (off for a last layer whose ``y`` is not read).
        dropout: dropout on every residual branch.

    Shapes:
        x: ``[B, N, dim]``.
        e: ``[B, N, N, dim]`` symmetric.
        y: ``[B, L, dim]``, one vector per block level.
        s: :class:`BlockStructure`.
        output: ``(x, e, y)`` with the same shapes; ``x`` zero at padded slots, ``e`` zero on pairs touching them.
    """

    def __init__(self, *, dim: int, n_heads: int, ppgn: bool = True, update_y: bool = True, dropout: float = 0.0):
        super().__init__()
        if n_heads < 1 or dim % n_heads:
            raise ConfigError(f"hidden={dim} must be a positive multiple of n_heads={n_heads}")
        self.dim, self.n_heads, self.ppgn, self.update_y = dim, n_heads, bool(ppgn), bool(update_y)
        self.norm_x, self.norm_e = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.film_x, self.film_e = nn.Linear(dim, 2 * dim), nn.Linear(dim, 2 * dim)
        self.pair_e, self.pair_u, self.pair_q = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out_e = nn.Linear(dim, dim)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.score_e, self.value_e = nn.Linear(dim, n_heads), nn.Linear(dim, dim)
        self.out_x = nn.Linear(dim, dim)
        self.norm_ffx, self.ff_x = nn.LayerNorm(dim), _mlp(dim, 2 * dim, dim)
        if self.ppgn:
            self.norm_p = nn.LayerNorm(dim)
            self.m1, self.m2 = _mlp(dim, dim, dim), _mlp(dim, dim, dim)
            self.out_p = nn.Linear(dim, dim)
        self.norm_ffe, self.ff_e = nn.LayerNorm(dim), _mlp(dim, 2 * dim, dim)
        if self.update_y:
            self.pool_y = nn.Linear(8 * dim, dim)
            self.norm_ffy, self.ff_y = nn.LayerNorm(dim), _mlp(dim, 2 * dim, dim)
        self.drop = nn.Dropout(dropout)

    def pair_hidden(self, xn: Tensor, en: Tensor, rows=None) -> Tensor:
        """``h_ij = SiLU(W_e en_ij + U xn_i + U xn_j + (Q xn_i) o (Q xn_j) / sqrt(d))`` for the rows ``i`` that
        ``rows`` picks from a node tensor (default: every node; ``en`` holds those rows).

        Shapes: xn ``[B, N, d]``; en ``[B, R, N, d]``; output ``[B, R, N, d]``."""
        u, qq = self.pair_u(xn), self.pair_q(xn)
        ur, qr = (u, qq) if rows is None else (rows(u), rows(qq))
        pair = ur.unsqueeze(2) + u.unsqueeze(1) + qr.unsqueeze(2) * qq.unsqueeze(1) / math.sqrt(xn.shape[-1])
        return torch.nn.functional.silu(self.pair_e(en) + pair)

    def attend(self, xn: Tensor, h: Tensor, allowed: Tensor, rows=None) -> Tensor:
        """``O_x`` of the attention of the rows ``i`` (``rows`` as in :meth:`pair_hidden`) over the nodes ``j`` with
        ``allowed[i, j]``: scores ``q_i . k_j / sqrt(d_h) + A(h_ij)``, messages ``v_j + V_e(h_ij)``.

        Shapes: xn ``[B, N, d]``; h ``[B, R, N, d]``; allowed ``[B, R, N]`` bool; output ``[B, R, d]``."""
        b, n, d = xn.shape
        r, h_ = h.shape[1], self.n_heads
        dh = d // h_
        q = self.q(xn if rows is None else rows(xn)).view(b, r, h_, dh)
        k, v = self.k(xn).view(b, n, h_, dh), self.v(xn).view(b, n, h_, dh)
        scores = torch.einsum("bihd,bjhd->bijh", q, k) / math.sqrt(dh) + self.score_e(h)
        allowed = allowed.unsqueeze(-1)
        attn = torch.softmax(scores.masked_fill(~allowed, torch.finfo(scores.dtype).min), dim=2)
        attn = attn * allowed.to(attn.dtype)
        msg = torch.einsum("bijh,bjhd->bihd", attn, v)
        msg = msg + torch.einsum("bijh,bijhd->bihd", attn, self.value_e(h).view(b, r, n, h_, dh))
        return self.out_x(msg.reshape(b, r, d))

    def forward(self, x: Tensor, e: Tensor, y: Tensor, s: BlockStructure) -> tuple[Tensor, Tensor, Tensor]:
        bsz, n, d = x.shape
        rec = s.recorder
        if rec is not None:
            rec.layer_input(x, y)
        nm = s.mask.unsqueeze(-1).to(x.dtype)
        pm = (s.pair_level >= 0).unsqueeze(-1).to(e.dtype)

        # FiLM by the graph vector of the element's own block
        gx, bx = self.film_x(y).chunk(2, -1)
        ge, be = self.film_e(y).chunk(2, -1)
        xn = self.norm_x(x) * (1.0 + s.at_nodes(gx)) + s.at_nodes(bx)
        en = self.norm_e(e) * (1.0 + s.at_pairs(ge)) + s.at_pairs(be)

        # pair features from both endpoints and the edge (symmetric when e is)
        h = self.pair_hidden(xn, en)
        e = e + self.drop(self.out_e(h)) * pm

        # causal attention over nodes, scores and messages also from the pair features
        x = x + self.drop(self.attend(xn, h, s.attend)) * nm
        x = x + self.drop(self.ff_x(self.norm_ffx(x))) * nm

        # PPGN: causal edge-to-edge product over the node dimension
        if self.ppgn:
            ep = self.norm_p(e)
            a, b = self.m1(ep) * pm, self.m2(ep) * pm
            if rec is not None:
                rec.ppgn_factors(a, b)
            prod = block_causal_matmul(a, b, s.level if s.causal else None)  # a, b are zero off real pairs
            count = torch.maximum(s.prefix_count.unsqueeze(2), s.prefix_count.unsqueeze(1)).clamp(min=1.0)
            prod = 0.5 * (prod + prod.transpose(1, 2)) / count.unsqueeze(-1)
            e = e + self.drop(self.out_p(prod)) * pm
        e = e + self.drop(self.ff_e(self.norm_ffe(e))) * pm

        # graph vector per block from the nodes and pairs of blocks <= that block
        if self.update_y:
            px = causal_pool(x, s.level, s.n_levels)
            stats = level_stats(e.reshape(bsz, n * n, d), s.pool_pair_level, s.n_levels)
            if rec is not None:
                rec.pair_stats(stats)
            pe = finish_pool(*stats)
            y = y + self.drop(self.pool_y(torch.cat([px, pe], -1)))
            y = y + self.drop(self.ff_y(self.norm_ffy(y)))
        return x, e, y


# ---- the denoiser -----------------------------------------------------------------------------------------------


# Paper: Zhao et al. 2024, PARD (block-wise autoregressive diffusion, higher-order transformer, parallel training).
class PPGNTransformerDenoiser(nn.Module):
    """PARD's higher-order graph transformer: noisy one-hot graph, time, condition and block indices in; node logits,
    edge logits and (optionally) next-block-size logits out, with a causal mask over blocks.

    Inputs: node features ``[x, node structural features, sinusoidal embedding of b_i]``, edge features
    ``[e, edge structural features, 1{b_i = b_j}, 1 / (1 + |b_i - b_j|)]`` (symmetrised), and one graph vector per
    block level ``c``: ``[t, n_{<=c} / max_nodes, n_c / max_nodes, cond, graph structural features of the prefix,
    sinusoidal embedding of c]`` where ``n_{<=c}`` counts the real nodes of blocks ``<= c`` and ``n_c`` those of block
    ``c``. Structural features are those of the noisy graph (``adj = e.argmax(-1) > 0``) restricted to the prefix of
    blocks ``<= c`` (see the module docstring). Each goes through a two-layer SiLU MLP to width ``hidden``, then
    ``n_layers`` :class:`PPGNTransformerLayer` run (PPGN in every ``ppgn_every``-th layer; the last layer does not
    update the graph vectors) and LayerNorm + two-layer MLP heads give the logits. Edge logits are symmetrised and
    zero on the diagonal and on pairs touching padded slots; node logits are zero at padded slots.

    Causal rule with ``block``: information flows from node ``j`` to node ``i`` only if ``b_j <= b_i``; pair
    ``(i, j)`` belongs to block ``max(b_i, b_j)`` and reads only nodes and pairs of blocks ``<= max(b_i, b_j)``
    (attention, PPGN products, structural features, per-block graph vectors). Outputs of block ``c`` therefore do not
    depend on the features of blocks ``> c``.

    Size head (``size_head=True`` and ``block`` given): for every block position ``c`` the logits of the *next*
    block's size (class 0 = stop, ``1..max_block`` = size) from the graph vector ``y_c`` and causal pools of the final
    node and edge streams over blocks ``<= c``. They are returned in the output's ``y`` **flattened** to
    ``[B, L * (max_block + 1)]`` because :class:`~graphdiff.state.GraphState` holds ``y`` as ``[B, Fy]``;
    :meth:`size_logits` reshapes them to ``[B, L, max_block + 1]``, with ``L = max(block over real nodes in the batch)
    + 1``. Row ``c`` of a graph whose last block is below ``c`` is zero (padding). With ``block=None`` the output's
    ``y`` is ``None``.

    Block-degree head (``max_degree > 0``, PARD's block degree: the number of edges each node of a block has to the
    nodes of that block and earlier ones): per block position ``c`` and per candidate size ``s`` of the next block,
    logits of the next block's degree (``0..max_degree``), from the same pooled vector plus an embedding of ``s``,
    so that the degree is drawn given the drawn size (teacher-forced with the true size in training). They follow
    the size logits in ``y``: per level ``(max_block + 1) * (max_degree + 2)`` values; :meth:`degree_logits` gives
    ``[B, L, max_block + 1, max_degree + 1]``.

    Args:
        node_dim: node input channels (one-hot categories or probability vectors).
        edge_dim: edge input channels (channel 0 = no edge).
        node_out: node logit channels (default ``node_dim``).
        edge_out: edge logit channels (default ``edge_dim``).
        cond_dim: width of the graph-level condition (0 for none).
        max_nodes: largest number of node slots a batch may have (also normalises node counts and bounds block
            indices).
        n_layers: layers.
        hidden: width of the node, edge and graph streams (a multiple of ``n_heads``).
        n_heads: attention heads.
        ppgn_every: a PPGN product in layers ``l`` with ``(l + 1) % ppgn_every == 0`` (1: every layer, 0: none).
        extra_features: kinds of structural features, any of ``"cycles"``, ``"spectral"``, ``"rrwp"`` (``None`` or
            ``()`` for none; PARD uses none).
        rrwp_steps: random-walk lengths of the RRWP features.
        dropout: dropout rate inside the layers.
        size_head: predict the next block's size per block position.
        max_block: largest block size the size head can predict (default ``max_nodes``).
        max_degree: largest block degree the degree head predicts (0: no degree head).
        gradient_checkpointing: recompute each layer's activations in the backward pass instead of storing them
            (less training memory, about a third more compute; see :func:`graphdiff.nn.layers.run_layers`).

    Raises:
        ConfigError: a size below 1, ``hidden`` not a multiple of ``n_heads``, ``ppgn_every`` outside
            ``0..n_layers`` or an unknown feature kind.
        SchemaError: in ``forward``, inputs whose widths differ from the ones the model was built with, more node
            slots than ``max_nodes``, or a malformed ``block``.

    Shapes:
        state.x: ``[B, N, node_dim]``.
        state.e: ``[B, N, N, edge_dim]``.
        state.mask: ``[B, N]`` bool.
        t: ``[B]`` floats in ``[0, 1]`` (or a scalar).
        cond: ``[B, cond_dim]`` or ``None`` (zeros).
        block: ``[B, N]`` integer block index per node (values at padded slots are ignored, ``-1`` by convention;
            real nodes need ``0 <= block < max_nodes``) or ``None`` (every node in block 0, no causal mask).
        output: ``GraphState(x=[B, N, node_out] logits, e=[B, N, N, edge_out] symmetric logits,
        y=[B, L * (max_block + 1) * (1 + [max_degree > 0] (max_degree + 1))] flattened size (and degree) logits or
        None, mask=state.mask)``.
    """

    def __init__(
        self, *, node_dim: int, edge_dim: int, node_out: int | None = None, edge_out: int | None = None,
        cond_dim: int = 0, max_nodes: int, n_layers: int = 4, hidden: int = 64, n_heads: int = 4, ppgn_every: int = 1,
        extra_features: Iterable[str] | None = (), rrwp_steps: int = 8, dropout: float = 0.0, size_head: bool = True,
        max_block: int | None = None, gradient_checkpointing: bool = False, max_degree: int = 0,
    ):
        super().__init__()
        node_out = node_dim if node_out is None else node_out
        edge_out = edge_dim if edge_out is None else edge_out
        max_block = max_nodes if max_block is None else max_block
        sizes = dict(node_dim=node_dim, edge_dim=edge_dim, node_out=node_out, edge_out=edge_out, max_nodes=max_nodes,
                     n_layers=n_layers, hidden=hidden, n_heads=n_heads, max_block=max_block)
        check_sizes(sizes, cond_dim=cond_dim, dropout=dropout)
        if not 0 <= int(ppgn_every) <= int(n_layers):
            raise ConfigError(f"ppgn_every must be in 0..n_layers={n_layers}, got {ppgn_every}")
        if hidden % n_heads:
            raise ConfigError(f"hidden={hidden} must be a multiple of n_heads={n_heads}")
        if isinstance(max_degree, bool) or not isinstance(max_degree, int) or max_degree < 0:
            raise ConfigError(f"max_degree must be an integer >= 0, got {max_degree!r}")
        self.node_dim, self.edge_dim, self.node_out, self.edge_out = node_dim, edge_dim, node_out, edge_out
        self.cond_dim, self.max_nodes, self.max_block = int(cond_dim), int(max_nodes), int(max_block)
        self.ppgn_every, self.size_head = int(ppgn_every), bool(size_head)
        self.max_degree = int(max_degree) if self.size_head else 0
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.features = ExtraFeatures(extra_features or (), rrwp_steps=rrwp_steps)
        fn, fe, fg = self.features.dims
        self.in_x = _mlp(node_dim + fn + _BLOCK_EMB, hidden, hidden)
        self.in_e = _mlp(edge_dim + fe + 2, hidden, hidden)
        self.in_y = _mlp(3 + self.cond_dim + fg + _BLOCK_EMB, hidden, hidden)
        self.layers = nn.ModuleList(
            PPGNTransformerLayer(dim=hidden, n_heads=n_heads, dropout=dropout, update_y=i < n_layers - 1,
                                 ppgn=self.ppgn_every > 0 and (i + 1) % self.ppgn_every == 0)
            for i in range(n_layers)
        )
        self.norm_x, self.norm_e = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.out_x, self.out_e = _mlp(hidden, hidden, node_out), _mlp(hidden, hidden, edge_out)
        if self.size_head:
            self.norm_s = nn.LayerNorm(9 * hidden)
            self.out_size = _mlp(9 * hidden, hidden, self.max_block + 1)
        if self.max_degree:
            # PARD's next-block degree given the next block's size: pooled vector + size embedding -> degree logits
            self.deg_in = nn.Linear(9 * hidden, hidden)
            self.deg_size = nn.Embedding(self.max_block + 1, hidden)
            self.deg_out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, self.max_degree + 1))

    # ---- inputs ----------------------------------------------------------------------------------------------------
    def _check_inputs(self, state: GraphState, t, cond, block) -> tuple[Tensor, Tensor, Tensor]:
        b, n = state.mask.shape
        dev = state.x.device
        t, cond = check_inputs(self, state, t, cond)
        mask = state.mask.bool()
        if block is None:
            level = torch.where(mask, 0, -1)
        else:
            block = torch.as_tensor(block, device=dev)
            if block.shape != (b, n):
                raise SchemaError(f"block must be [B, N] = {[b, n]}, got {list(block.shape)}")
            if torch.is_floating_point(block) or torch.is_complex(block) or block.dtype == torch.bool:
                raise SchemaError(f"block must hold integer block indices, got dtype {block.dtype}")
            level = torch.where(mask, block.long(), -1)
            real = level[mask]
            # a data-dependent check: skipped inside torch.compile (train.compile), where it would split the graph
            checked = not torch.compiler.is_compiling() and real.numel()
            if checked and (int(real.min()) < 0 or int(real.max()) >= self.max_nodes):
                raise SchemaError(f"block indices of real nodes must be in [0, max_nodes={self.max_nodes}), got "
                                  f"{int(real.min())}..{int(real.max())}")
        return t, cond, level

    # Paper: Vignac et al. 2023, DiGress, Sec. 4 (structural features), computed per block prefix for PARD.
    def _prefix_features(self, adj: Tensor, s: BlockStructure) -> tuple[Tensor, Tensor, Tensor]:
        """Structural features of the prefix graphs: ``(node [B, N, Fn], edge [B, N, N, Fe], graph [B, L, Fg])``."""
        b, n = s.mask.shape
        lv = s.n_levels
        if lv == 1:
            fx, fe, fy = self.features(adj, s.mask)
            return fx, fe, fy.unsqueeze(1)
        steps = torch.arange(lv, device=adj.device)
        masks = s.mask.unsqueeze(1) & (s.level.unsqueeze(1) <= steps.view(1, lv, 1))  # [B, L, N]
        adj_l = adj.unsqueeze(1).expand(b, lv, n, n).reshape(b * lv, n, n)
        fx, fe, fy = self.features(adj_l, masks.reshape(b * lv, n))
        fx = fx.reshape(b, lv, n, -1)
        fx = fx.gather(1, s.level.clamp(min=0).view(b, 1, n, 1).expand(-1, -1, -1, fx.shape[-1])).squeeze(1)
        fe = fe.reshape(b, lv, n, n, -1)
        idx = s.pair_level.clamp(min=0).view(b, 1, n, n, 1).expand(-1, -1, -1, -1, fe.shape[-1])
        fe = fe.gather(1, idx).squeeze(1)
        return fx, fe, fy.reshape(b, lv, -1)

    # ---- forward ---------------------------------------------------------------------------------------------------
    def forward(self, state: GraphState, t: Tensor, cond: Tensor | None = None, *,
                block: Tensor | None = None, cache: PrefixCache | None = None) -> GraphState:
        """Logits for the noisy batch ``state`` at times ``t``; see the class docstring for shapes and the causal
        rule.

        ``cache`` (a :class:`~graphdiff.nn.ppgn_cache.PrefixCache`, sampling only): the network keeps its latest
        pass there, and a call whose inputs differ from it only from some block level of a graph upward recomputes
        just the rows of those levels' nodes; a call with another ``t``, ``cond`` or shape runs the whole network
        and records it. Ignored with gradients, in training mode or with structural features."""
        t, cond, level = self._check_inputs(state, t, cond, block)
        recorder = None
        if cache is not None:
            out, recorder = cache.begin(self, state, t, cond, level, block is not None)
            if out is not None:
                return out
        mask = state.mask.bool()
        b, n = mask.shape
        dt = state.x.dtype
        s = BlockStructure.build(mask, level, causal=block is not None, dtype=dt)
        s.recorder = recorder
        lv = s.n_levels
        nm = mask.unsqueeze(-1).to(dt)
        pm = (s.pair_level >= 0).unsqueeze(-1).to(dt)
        real_pairs = pair_mask(mask).unsqueeze(-1).to(dt)
        x0, e0 = state.x * nm, state.e * real_pairs
        adj = GraphState(x=x0, e=e0, mask=mask).adjacency()
        fx, fe, fy = self._prefix_features(adj, s)

        # block-position inputs: absolute block index per node, same-block and distance per pair, prefix sizes
        lvf = level.clamp(min=0).to(dt)
        x = self.embed_nodes(x0, fx.to(dt), lvf) * nm
        e = self.embed_pairs(e0, fe.to(dt), lvf, lvf)
        e = 0.5 * (e + e.transpose(1, 2)) * pm
        y = self.embed_graph(t, cond, fy.to(dt), level, mask, lv)

        x, e, y = run_layers(self.layers, x, e, y, s, checkpoint=self.gradient_checkpointing)

        out_x = self.out_x(self.norm_x(x)) * nm
        out_e = self.out_e(self.norm_e(e))
        out_e = 0.5 * (out_e + out_e.transpose(1, 2)) * real_pairs
        size = None
        if self.size_head and block is not None:
            d = x.shape[-1]
            px = causal_pool(x, s.level, lv)
            stats = level_stats(e.reshape(b, n * n, d), s.pool_pair_level, lv)
            if recorder is not None:
                recorder.pair_stats(stats)
            size = self.head_logits(y, torch.cat([px, finish_pool(*stats)], -1), level)
        if recorder is not None:
            cache.store(recorder, s, x=x, y=y, out_x=out_x, out_e=out_e, size=size, state=state, t=t, cond=cond,
                        level=level)
        return GraphState(x=out_x, e=out_e, y=size, mask=state.mask)

    # ---- pieces shared with the prefix cache's incremental pass (graphdiff.nn.ppgn_cache) ------------------------
    def embed_nodes(self, x0: Tensor, fx: Tensor, lvf: Tensor) -> Tensor:
        """Node inputs (categories, structural features, block-index embedding): ``[B, R, hidden]``."""
        bemb = timestep_embedding(lvf.reshape(-1), _BLOCK_EMB).reshape(*lvf.shape, _BLOCK_EMB)
        return self.in_x(torch.cat([x0, fx, bemb], -1))

    def embed_pairs(self, e0: Tensor, fe: Tensor, lvf_rows: Tensor, lvf: Tensor) -> Tensor:
        """Pair inputs (categories, structural features, same block and ``1 / (1 + block distance)``) of the rows
        with block levels ``lvf_rows [B, R]`` against every node: ``[B, R, N, hidden]``."""
        gap = (lvf_rows.unsqueeze(2) - lvf.unsqueeze(1)).abs()
        rel = torch.stack([(gap == 0).to(e0.dtype), 1.0 / (1.0 + gap)], -1)
        return self.in_e(torch.cat([e0, fe, rel], -1))

    def embed_graph(self, t: Tensor, cond: Tensor, fy: Tensor, level: Tensor, mask: Tensor, lv: int) -> Tensor:
        """Graph vectors per level (time, prefix and block sizes, condition, features, level embedding):
        ``[B, L, hidden]``."""
        b, dt = mask.shape[0], fy.dtype
        per_level = torch.zeros(b, lv, dtype=dt, device=mask.device).scatter_add_(1, level.clamp(min=0), mask.to(dt))
        steps = torch.arange(lv, device=mask.device, dtype=dt)
        return self.in_y(torch.cat([
            t.view(b, 1, 1).expand(b, lv, 1),
            (per_level.cumsum(1) / self.max_nodes).unsqueeze(-1),
            (per_level / self.max_nodes).unsqueeze(-1),
            cond.unsqueeze(1).expand(b, lv, self.cond_dim),
            fy,
            timestep_embedding(steps, _BLOCK_EMB).unsqueeze(0).expand(b, lv, _BLOCK_EMB),
        ], -1))

    def head_logits(self, y: Tensor, pooled: Tensor, level: Tensor) -> Tensor:
        """Flattened size (and degree) logits per level from the graph vectors and the pooled node and pair streams,
        zero at levels past each graph's last: ``[B, L * K]``."""
        head = self.norm_s(torch.cat([y, pooled], -1))
        logits = self.out_size(head)  # [B, L, max_block + 1]
        if self.max_degree:
            h = self.deg_in(head).unsqueeze(2) + self.deg_size.weight  # [B, L, max_block + 1, hidden]
            logits = torch.cat([logits, self.deg_out(h).flatten(2)], -1)
        b, lv = y.shape[:2]
        last = level.amax(1) if level.shape[1] else torch.full((b,), -1, device=y.device)
        rows = (torch.arange(lv, device=y.device).unsqueeze(0) <= last.unsqueeze(1)).to(logits.dtype)
        return (logits * rows.unsqueeze(-1)).reshape(b, -1)

    def size_logits(self, out: GraphState | Tensor) -> Tensor:
        """The next-block-size logits of an output (or its ``y``) as ``[B, L, max_block + 1]``.

        Raises:
            SchemaError: the output has no size logits (``block=None`` or ``size_head=False``) or a bad width.

        Shapes:
            out: a :class:`~graphdiff.state.GraphState` whose ``y`` is ``[B, L * (max_block + 1)]``, or that ``y``.
            output: ``[B, L, max_block + 1]``; ``[b, c, 0]`` is "stop after block c", ``[b, c, s]`` "block c + 1 has
            s nodes".
        """
        return self._head_rows(out)[..., : self.max_block + 1]

    def degree_logits(self, out: GraphState | Tensor) -> Tensor:
        """The next-block-degree logits per candidate next-block size, ``[B, L, max_block + 1, max_degree + 1]``.

        Raises:
            SchemaError: the model has no degree head (``max_degree=0``) or the output has no head logits.
        """
        if not self.max_degree:
            raise SchemaError("this model has no block-degree head (max_degree=0)")
        rows = self._head_rows(out)[..., self.max_block + 1:]
        return rows.reshape(*rows.shape[:2], self.max_block + 1, self.max_degree + 1)

    def _head_rows(self, out: GraphState | Tensor) -> Tensor:
        y = out.y if isinstance(out, GraphState) else out
        k = (self.max_block + 1) * (1 + (self.max_degree + 1 if self.max_degree else 0))
        if y is None or y.dim() != 2 or y.shape[1] % k:
            raise SchemaError(f"no size logits of width L * {k} here (forward with block=... and size_head=True)")
        return y.reshape(y.shape[0], -1, k)

    def grow(self, *, node_new: int = 0, edge_new: int = 0, max_nodes: int | None = None,
             cond_dim: int | None = None, **_) -> None:
        """Widen the network for fine-tuning (see :mod:`graphdiff.nn.growth`): new node / edge categories after
        the old ones (the channels that follow them move behind), a larger ``max_nodes`` (the prefix- and
        block-size inputs are re-scaled so they keep their effect) and new condition columns. The size and degree
        heads (``max_block``, ``max_degree``) are not grown: data needing larger ones is refused by the caller."""
        from .growth import grow_categories, replace_inputs, scale_input

        grow_categories(self, node_new, edge_new)
        if max_nodes is not None and int(max_nodes) != self.max_nodes:
            for col in (1, 2):  # prefix size / max_nodes and block size / max_nodes
                scale_input(self.in_y[0], col, int(max_nodes) / self.max_nodes)
            self.max_nodes = int(max_nodes)
        if cond_dim is not None and int(cond_dim) != self.cond_dim:
            self.in_y[0] = replace_inputs(self.in_y[0], 3, 3 + self.cond_dim, int(cond_dim))
            self.cond_dim = int(cond_dim)

    def extra_repr(self) -> str:
        return (f"node_dim={self.node_dim}, edge_dim={self.edge_dim}, node_out={self.node_out}, "
                f"edge_out={self.edge_out}, cond_dim={self.cond_dim}, max_nodes={self.max_nodes}, "
                f"ppgn_every={self.ppgn_every}, size_head={self.size_head}, max_block={self.max_block}, "
                f"max_degree={self.max_degree}, "
                f"features={self.features!r}")
