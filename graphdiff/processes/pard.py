"""PARD: block-autoregressive discrete diffusion on graphs.

Zhao, Ding & Akoglu, "Pard: Permutation-Invariant Autoregressive Diffusion for Graph Generation", NeurIPS 2024.
A graph's nodes are split into an ordered sequence of blocks by PARD's structural partial order
(:mod:`graphdiff.processes.order`: degree-based peeling, block 0 = the densest core, generated first) and the graph is
generated block by block, ``p(G) = prod_k p(B_k | B_<k)`` (PARD eq. 3). Block ``k`` consists of its nodes and of every
pair that belongs to it: the pairs inside the block and the pairs from its nodes to the nodes of earlier blocks
(a pair ``(i, j)`` belongs to block ``max(b_i, b_j)``). Each conditional ``p(B_k | B_<k)`` is a DiGress discrete
diffusion (:class:`~graphdiff.processes.digress.DiscreteDiffusion`: the cosine schedule, ``Qbar_t``, the exact
posteriors and strided steps are reused from there) over the categories of block ``k``'s nodes and pairs, with the
earlier blocks held clean; one shared denoiser serves every block. Before each block, the same network predicts its
size (class 0 = stop), so the model decides the number of nodes.

Parallel training (PARD Sec. 4, "parallel training"; ``ToParallelBlocks(add_virtual_blocks=True)`` and
``get_causal_block_mask`` in github.com/LingxiaoShawn/Pard, ``pard/parallel``). Denoising block ``k`` needs the
*clean* blocks ``< k`` but the *noisy* block ``k``; a single copy of the graph cannot hold both for every ``k`` at
once. PARD therefore doubles the node set: a clean ("real") copy of every node and a noisy ("virtual") copy of every
node, each block of the noisy copy at its own diffusion time, and a causal mask under which the noisy copy of block
``k`` reads the clean copies of blocks ``< k`` and itself. All blocks are then trained in ONE forward pass, like a GPT.
Our denoiser (:class:`graphdiff.nn.ppgn.PPGNTransformerDenoiser`) implements a causal rule by a block index per node
("node ``i`` reads node ``j`` iff ``b_j <= b_i``; pair ``(i, j)`` belongs to ``max(b_i, b_j)``"), so the doubled set
is laid out by *interleaving levels*::

    slot 0            start node         level 0           (no category; its size logits give block 0's size)
    slots 1 .. N      clean copy R_k     level 2k + 2
    slots N+1 .. 2N   noisy copy V_k     level 2k + 1      (time t_k/T in an extra node channel)

The noisy copy ``V_k`` (level ``2k + 1``) then reads the start node, the clean ``R_j`` for ``j < k`` (level
``2j + 2 <= 2k``) and never the clean ``R_k`` (level ``2k + 2``), so its target cannot leak, and no element of block
``< k`` reads anything of block ``k`` (tested in ``tests/processes/test_blockar.py``). Input pairs: clean-clean pairs
hold the clean edge categories, noisy-noisy pairs of one block and noisy ``V_k``-clean ``R_j`` pairs (``j < k``) hold
the noisy categories of the pairs of block ``k``; every other pair (start node, noisy copies of different blocks,
``V_k`` with a clean ``R_j`` of ``j >= k``, a node with its own copy) is all-zero ("not a pair", the closest to PARD,
which masks them out). The size of block ``k + 1`` (0 = stop) is read at level ``2k + 2`` (the clean prefix up to
``k``); the size of block 0 at level 0 (the start node alone).

A total order of levels cannot express PARD's mask exactly: ``V_k`` also reads the noisy copies ``V_j`` of earlier
blocks (and ``R_k`` reads ``V_k``). Those carry no information about block ``k`` beyond the clean blocks ``< k``
(independent noise given them), so the conditional being learnt is unchanged; to keep the network's inputs at
sampling distributed exactly as in training, the sampler keeps a "shadow" of every finished block: its noisy copy at
a uniformly drawn time, which is what training shows the network (``samplers/pard.py``).

Block degree (PARD's ``block_degree``, ``ToParallelBlocks`` and ``PredictBlockProperties`` in the authors' code; option
``block_degree=True``): block ``k``'s degree is the number of edges each of its nodes has to the nodes of blocks
``<= k``, i.e. its degree in the graph left when it was peeled (the nodes of a block tie on it). The same network
predicts it with the size, given the size (class per candidate size, teacher-forced in training), and both copies of
a node carry their block's degree in an extra input channel, so each block's diffusion knows how many edges its
nodes will have. It is off by default (models saved before it existed load unchanged); the presets turn it on.

Per graph, the loss is the mean over its blocks of the DiGress x0 cross entropy of the block (node CE averaged over
the block's nodes + ``lambda_edge`` x pair CE averaged over the block's pairs; DiGress eq. 2), each block noised at
its own uniformly drawn step ``t_k in {1..T}``, plus ``lambda_size`` x the mean cross entropy of the block-size
predictions (block 0's size, every next size, and the final stop = 0), plus, with ``block_degree``, ``lambda_size``
x the mean cross entropy of the block degrees given the true sizes.

Time convention: ``t = 0`` is data, ``t = T`` noise. The denoiser's graph-level time input is 0; the noise time of
each node rides in its time channel (PARD conditions on the time per block, too).
"""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, DataError, SchemaError
from ..schema import Schema
from ..state import GraphState, pair_mask
from .categorical import check_condition, condition_input, guided_log_probs, upper_pair_mask
from .digress import DiscreteDiffusion
from .order import block_degrees, block_statistics, blocks_from_state, dataset_blocks

EXTRA_NODE_CHANNELS = 2  # the noisy copy's time t/T, the start-node flag (then the block degree, when it is used)


def _check_count(value, field: str, limit: int) -> int:
    if value == "auto":
        raise ConfigError(f"{field}: 'auto' needs the training data (BlockAutoregressive.resolve fills it in)")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= limit:
        raise ConfigError(f"{field} must be an integer in 1..{limit} (the schema's max_nodes) or 'auto', got {value!r}")
    return int(value)


class BlockAutoregressive(DiscreteDiffusion):
    """PARD: blocks in structural order, each generated by DiGress diffusion conditioned on the earlier blocks.

    Args:
        schema: the dataset schema.
        T: diffusion steps per block (PARD uses 50 or fewer).
        transition: the limit distribution: ``"marginal"``, ``"uniform"`` or ``"absorbing"``.
        lambda_edge: weight of the pair cross entropy within a block.
        lambda_size: weight of the block-size cross entropy.
        max_block: largest block the size head predicts (``"auto"``: the largest block of the training graphs,
            filled in by :meth:`resolve`).
        max_blocks: most blocks of a training graph (``"auto"`` as above); the sampler's default bound on blocks
            is this plus a margin.
        cond_drop: probability of dropping a graph's condition in training (classifier-free guidance).
        block_degree: PARD's block degree. The network also predicts the next block's degree (the edges each of its
            nodes has to it and earlier blocks) given its size, and each block's diffusion is conditioned on it
            (an extra node channel, ``degree / max_degree``). Off by default so that models saved before it
            existed load unchanged; the ``pard-*`` presets turn it on.
        max_degree: largest block degree the head predicts (``"auto"``: the largest over the training graphs).

    Shapes:
        state (the sampler's and ``decode``'s): ``x [B, N, node_states]`` one-hot, ``e [B, N, N, Ke]`` one-hot and
        symmetric, ``mask [B, N]`` with the generated nodes in slots ``0..n-1``.
        denoiser input (:meth:`assemble`): ``x [B, 2N + 1, node_states + 2]``, ``e [B, 2N + 1, 2N + 1, Ke]``,
        ``block [B, 2N + 1]`` levels.
    """

    name = "pard"

    def __init__(self, schema: Schema, *, T: int = 50, transition: str = "marginal", lambda_edge: float = 5.0,
                 lambda_size: float = 1.0, max_block="auto", max_blocks="auto", cond_drop: float = 0.1,
                 block_degree: bool = False, max_degree="auto"):
        super().__init__(schema, transition=transition, T=T, schedule="cosine", lambda_edge=lambda_edge,
                         cond_drop=cond_drop)
        if not float(lambda_size) >= 0:
            raise ConfigError(f"process.lambda_size must be >= 0, got {lambda_size}")
        self.lambda_size = float(lambda_size)
        self.max_block = _check_count(max_block, "process.max_block", schema.max_nodes)
        self.max_blocks = _check_count(max_blocks, "process.max_blocks", schema.max_nodes)
        if not isinstance(block_degree, bool):
            raise ConfigError(f"process.block_degree must be true or false, got {block_degree!r}")
        self.block_degree = block_degree
        self.max_degree = 0
        if block_degree:
            if max_degree == "auto":
                raise ConfigError("process.max_degree: 'auto' needs the training data (BlockAutoregressive.resolve "
                                  "fills it in)")
            if isinstance(max_degree, bool) or not isinstance(max_degree, (int, np.integer)) or \
                    not 0 <= int(max_degree) < schema.max_nodes:
                raise ConfigError(f"process.max_degree must be an integer in 0..{schema.max_nodes - 1} or 'auto', "
                                  f"got {max_degree!r}")
            self.max_degree = max(int(max_degree), 1)  # at least classes 0 and 1 (a head of one class is moot)
        self.extra_channels = EXTRA_NODE_CHANNELS + int(block_degree)
        self.last_stats: dict = {}
        self.reset_stats()

    # ---- configuration ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"name": self.name, "T": self.T, "transition": self.transition, "lambda_edge": self.lambda_edge,
                "lambda_size": self.lambda_size, "max_block": self.max_block, "max_blocks": self.max_blocks,
                "cond_drop": self.cond_drop, "block_degree": self.block_degree, "max_degree": self.max_degree}

    def denoiser_kwargs(self) -> dict:
        """Sizes of the block-causal denoiser: the doubled node set (``2 max_nodes + 1`` slots), two extra node
        channels (time, start flag) and the size head's ``max_block``."""
        kw = super().denoiser_kwargs()
        kw.update(node_dim=self.node_states + self.extra_channels, max_nodes=2 * self.schema.max_nodes + 1,
                  max_block=self.max_block)
        if self.block_degree:
            kw["max_degree"] = self.max_degree
        return kw

    @staticmethod
    def resolve(spec: dict, schema: Schema, dataset=None) -> dict:
        """Fill ``max_block`` / ``max_blocks`` / ``max_degree: auto`` (absent = auto; the degree only with
        ``block_degree``) from the training graphs' structural blocks."""
        spec = dict(spec)
        keys = ("max_block", "max_blocks") + (("max_degree",) if spec.get("block_degree") is True else ())
        want = [k for k in keys if isinstance(spec.get(k, "auto"), str) and spec.get(k, "auto") == "auto"]
        if not want:
            return spec
        if dataset is None:
            raise ConfigError(f"process.{want[0]}: 'auto' needs the training data")
        biggest, most, degree = block_statistics(dataset, schema.max_nodes)
        found = {"max_block": biggest, "max_blocks": most, "max_degree": degree}
        spec.update({k: found[k] for k in want})
        return spec

    def reset_stats(self) -> None:
        """Zero the running sampler totals in ``total_stats`` (graphs, network calls, bounds hit, cut blocks, nodes,
        nodes whose block degree came out as drawn)."""
        self.total_stats = {"graphs": 0, "network_calls": 0, "hit_max_blocks": 0, "truncated": 0, "nodes": 0,
                            "degree_matched": 0}

    def block_bound(self, max_blocks=None) -> int:
        """The sampler's bound on blocks: ``max_blocks``, or ``self.max_blocks`` plus a margin, at most max_nodes."""
        if max_blocks is None:
            return min(self.schema.max_nodes, self.max_blocks + max(2, self.max_blocks // 4))
        if isinstance(max_blocks, bool) or not isinstance(max_blocks, (int, np.integer)) or max_blocks < 1:
            raise ConfigError(f"max_blocks must be a positive integer, got {max_blocks!r}")
        return int(max_blocks)

    # ---- states -----------------------------------------------------------------------------------------
    def prior(self, n_nodes: Tensor, schema: Schema | None = None, *, generator) -> GraphState:
        """The empty graph: ``schema.max_nodes`` slots and no real node (``n_nodes`` only sets the batch size)."""
        device = getattr(generator, "device", None) or n_nodes.device
        b, n = len(n_nodes), self.schema.max_nodes
        x = torch.zeros(b, n, self.node_states, device=device)
        e = F.one_hot(torch.zeros(b, n, n, dtype=torch.long, device=device), self.ke).float()
        return GraphState(x=x, e=e, mask=torch.zeros(b, n, dtype=torch.bool, device=device), schema=self.schema)

    def decode(self, state: GraphState) -> GraphState:
        """One-hot data state compacted to its real nodes (trimmed to the largest graph), keeping the block of each
        node that the sampler generated it in (``blocks``, -1 at padding)."""
        return replace(super().decode(state), blocks=state.blocks).compact()

    # ---- forward noise per block ------------------------------------------------------------------------
    def noise_probs_at(self, x0: Tensor, e0: Tensor, t_nodes: Tensor, t_pairs: Tensor) -> tuple[Tensor, Tensor]:
        """``q(x_t | x0)`` with a step per node and per pair (each block at its own time).

        Shapes:
            x0: ``[B, N]`` long; e0: ``[B, N, N]`` long; t_nodes: ``[B, N]`` long; t_pairs: ``[B, N, N]`` long;
            returns ``[B, N, node_states]``, ``[B, N, N, Ke]`` (float64).
        """
        ab = self.alpha_bar.to(x0.device)
        ax, ae = ab[t_nodes].unsqueeze(-1), ab[t_pairs].unsqueeze(-1)
        # DiGress Sec. 3.1 per element: q(x_t | x) = alpha_bar_t x + (1 - alpha_bar_t) m, t = the block's step
        px = ax * F.one_hot(x0, self.node_states) + (1 - ax) * self.m_x.to(x0.device)
        pe = ae * F.one_hot(e0, self.ke) + (1 - ae) * self.m_e.to(x0.device)
        return px, pe

    # ---- the doubled node set ---------------------------------------------------------------------------
    def assemble(self, clean_x: Tensor, clean_e: Tensor, noisy_x: Tensor, noisy_e: Tensor, node_time: Tensor,
                 blocks: Tensor, clean_mask: Tensor, noisy_mask: Tensor,
                 node_degree: Tensor | None = None) -> tuple[GraphState, Tensor]:
        """The denoiser's input: start node, clean copies, noisy copies, and their levels (module docstring).

        Args:
            clean_x, clean_e: clean one-hot categories (process channels).
            noisy_x, noisy_e: noisy one-hot categories; the pair ``(i, j)`` holds block ``max(b_i, b_j)``'s state.
            node_time: noise step of each node's noisy copy (its block's step).
            blocks: block index per node (-1 at unused slots).
            clean_mask, noisy_mask: which clean / noisy copies are present.
            node_degree: with ``block_degree``, the block degree of each node's block (both copies carry it,
                scaled by ``max_degree``); required then, ignored otherwise.

        Shapes:
            clean_x, noisy_x: ``[B, N, node_states]``; clean_e, noisy_e: ``[B, N, N, Ke]``; node_time, blocks,
            clean_mask, noisy_mask, node_degree: ``[B, N]``; returns a state with ``2N + 1`` slots and levels
            ``[B, 2N + 1]``.
        """
        b, n = blocks.shape
        dt = clean_x.dtype if clean_x.is_floating_point() else torch.float32
        cm, nm = clean_mask.bool(), noisy_mask.bool()
        zero = clean_x.new_zeros(b, n, 1, dtype=dt)
        start = clean_x.new_zeros(b, 1, self.node_states + self.extra_channels, dtype=dt)
        start[..., self.node_states + 1] = 1.0  # channels: states, time, start flag (, block degree)
        deg = []
        if self.block_degree:
            if node_degree is None:
                raise ConfigError("process 'pard' with block_degree needs node_degree in assemble()")
            deg = [(node_degree.to(dt) / self.max_degree).unsqueeze(-1)]
        xc = torch.cat([clean_x.to(dt), zero, zero, *deg], -1) * cm.unsqueeze(-1).to(dt)
        tfrac = (node_time.to(dt) / self.T).unsqueeze(-1)
        xn = torch.cat([noisy_x.to(dt), tfrac, zero, *deg], -1) * nm.unsqueeze(-1).to(dt)
        x = torch.cat([start, xc, xn], 1)
        bi, bj = blocks.unsqueeze(2), blocks.unsqueeze(1)
        # PARD Sec. 4 (parallel training): clean-clean pairs clean, the pairs of block k on its noisy copy
        rr = clean_e.to(dt) * pair_mask(cm).unsqueeze(-1).to(dt)
        vv = noisy_e.to(dt) * (pair_mask(nm) & (bi == bj)).unsqueeze(-1).to(dt)
        vr = noisy_e.to(dt) * (nm.unsqueeze(2) & cm.unsqueeze(1) & (bi > bj)).unsqueeze(-1).to(dt)
        side = clean_e.new_zeros(b, n, 1, self.ke, dtype=dt)
        rows_r = torch.cat([side, rr, vr.transpose(1, 2)], 2)
        rows_v = torch.cat([side, vr, vv], 2)
        e = torch.cat([clean_e.new_zeros(b, 1, 2 * n + 1, self.ke, dtype=dt), rows_r, rows_v], 1)
        mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=cm.device), cm, nm], 1)
        levels = torch.cat([torch.zeros(b, 1, dtype=torch.long, device=cm.device),
                            torch.where(cm, 2 * blocks + 2, -1), torch.where(nm, 2 * blocks + 1, -1)], 1)
        return GraphState(x=x, e=e, mask=mask), levels

    def _head_logits(self, out: GraphState) -> tuple[Tensor, Tensor | None]:
        """Size logits ``[B, L, max_block + 1]`` and, with ``block_degree``, degree logits per candidate size
        ``[B, L, max_block + 1, max_degree + 1]`` (else ``None``)."""
        y, k = out.y, self.max_block + 1
        d = self.max_degree + 1 if self.block_degree else 0
        width = k * (1 + d)
        if y is None:
            raise SchemaError("process 'pard': the denoiser returned no size logits (it needs size_head=True and "
                              "a block= argument)")
        if y.dim() == 2 and y.shape[1] % width == 0:
            y = y.reshape(y.shape[0], -1, width)
        if y.dim() != 3 or y.shape[-1] != width:
            what = f"max_block + 1 = {k} size classes" + (f" and {k} x {d} degree logits" if d else "")
            raise SchemaError(f"process 'pard': head logits of shape {tuple(y.shape)} do not have {what} per level")
        degree = y[..., k:].reshape(*y.shape[:2], k, d) if d else None
        return y[..., :k], degree

    def split_logits(self, out: GraphState, blocks: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Read the denoiser's output on the doubled set back in the original slots.

        Node logits come from the noisy copies; the logits of pair ``(i, j)`` from where block ``max(b_i, b_j)``
        holds it (noisy-noisy within a block, noisy-clean across blocks); size (and degree) logits per level.

        Shapes:
            blocks: ``[B, N]``; returns ``[B, N, Kx]``, ``[B, N, N, Ke]`` (symmetric), ``[B, L, max_block + 1]``,
            ``[B, L, max_block + 1, max_degree + 1]`` or ``None``.
        """
        n = blocks.shape[1]
        ox = out.x[:, 1 + n:, : self.kx].float()
        oe = out.e[..., : self.ke].float()
        vv, vr, rv = oe[:, 1 + n:, 1 + n:], oe[:, 1 + n:, 1:1 + n], oe[:, 1:1 + n, 1 + n:]
        bi, bj = blocks.unsqueeze(2).unsqueeze(-1), blocks.unsqueeze(1).unsqueeze(-1)
        le = torch.where(bi == bj, vv, torch.where(bi > bj, vr, rv))
        size, degree = self._head_logits(out)
        return ox, 0.5 * (le + le.transpose(1, 2)), size.float(), None if degree is None else degree.float()

    @staticmethod
    def check_denoiser(denoiser) -> None:
        """Refuse a denoiser whose ``forward`` takes no ``block`` argument (PARD needs the causal block mask)."""
        fwd = getattr(denoiser, "forward", denoiser)
        try:
            params = inspect.signature(fwd).parameters
        except (TypeError, ValueError):
            return
        if "block" not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            raise ConfigError(f"process 'pard' needs a block-causal denoiser (forward(..., block=...)), got "
                              f"{type(denoiser).__name__}")

    def _cond_inputs(self, cond, b: int, device, guidance: float) -> list:
        """The condition inputs of one prediction: ``[main]`` or ``[conditional, unconditional]`` with guidance."""
        if self.fy == 0:
            if cond is not None:
                check_condition(cond, self.schema, b)  # raises: the schema names no graph features
            if guidance:
                raise ConfigError(f"guidance: {guidance} needs graph features, the schema has none")
            return [None]
        y = check_condition(cond, self.schema, b)
        uncond = condition_input(torch.zeros(b, self.fy, device=device), torch.zeros(b, device=device))
        if y is None:
            if guidance:
                raise ConfigError(f"guidance: {guidance} needs a condition (cond), got None")
            return [uncond]
        main = condition_input(y.to(device, torch.float32), torch.ones(b, device=device))
        return [main, uncond] if guidance else [main]

    def predict_blocks(self, denoiser, clean_x: Tensor, clean_e: Tensor, noisy_x: Tensor, noisy_e: Tensor,
                       node_time: Tensor, blocks: Tensor, clean_mask: Tensor, noisy_mask: Tensor, *,
                       cond: Tensor | None = None, guidance: float = 0.0, node_degree: Tensor | None = None,
                       caches: list | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor | None, int]:
        """Clean-category, block-size and block-degree log-probabilities for the doubled set (:meth:`assemble`),
        guided.

        ``caches``: one :class:`~graphdiff.nn.ppgn_cache.PrefixCache` per condition input (two with guidance),
        passed to the denoiser as ``cache=``; ``None`` calls it without one.

        Returns:
            ``(log p_X, log p_E, log p_size, log p_degree, calls)``; ``log p_degree`` is ``None`` without
            ``block_degree``; ``calls`` is the number of network evaluations (2 with guidance).

        Shapes:
            inputs as in :meth:`assemble`; returns ``[B, N, Kx]``, ``[B, N, N, Ke]``, ``[B, L, max_block + 1]``,
            ``[B, L, max_block + 1, max_degree + 1]`` (the degree given each candidate size).
        """
        inp, levels = self.assemble(clean_x, clean_e, noisy_x, noisy_e, node_time, blocks, clean_mask, noisy_mask,
                                    node_degree)
        b = blocks.shape[0]
        t0 = torch.zeros(b, device=blocks.device, dtype=inp.x.dtype)
        outs = []
        for i, c in enumerate(self._cond_inputs(cond, b, blocks.device, guidance)):
            kw = {} if caches is None else {"cache": caches[i]}
            lx, le, ls, ld = self.split_logits(denoiser(inp, t0, c, block=levels, **kw), blocks)
            outs.append([torch.log_softmax(lx, -1), torch.log_softmax(le, -1), torch.log_softmax(ls, -1)]
                        + ([] if ld is None else [torch.log_softmax(ld, -1)]))
        if len(outs) == 1:
            out, calls = outs[0], 1
        else:  # Ho & Salimans 2022 eq. 6 on every categorical output (nodes, pairs, block sizes and degrees)
            out, calls = [guided_log_probs(c, u, guidance) for c, u in zip(outs[0], outs[1])], 2
        return out[0], out[1], out[2], out[3] if len(out) > 3 else None, calls

    # ---- training -----------------------------------------------------------------------------------------
    def prepare_dataset(self, dataset) -> None:
        """Before training: read (or compute once and store) the structural order of a prepared dataset's graphs
        and attach it to its store, so that training batches carry their blocks (``GraphState.blocks``) instead
        of being peeled at every step (:func:`~graphdiff.processes.order.dataset_blocks`). Other datasets are left
        as they are (their batches are peeled per step)."""
        if hasattr(dataset, "processed_dir") and hasattr(getattr(dataset, "store", None), "node_ptr"):
            dataset_blocks(dataset)

    @staticmethod
    def batch_blocks(batch: GraphState) -> Tensor:
        """The blocks of a batch: the ones it carries (``batch.blocks``, from a prepared dataset) or peeled now.

        Raises:
            DataError: carried blocks that do not mark exactly the real nodes.
        """
        if batch.blocks is None:
            return blocks_from_state(batch)
        blocks = batch.blocks.long()
        if not torch.equal(blocks >= 0, batch.mask.bool()):
            raise DataError("batch.blocks must be >= 0 exactly at real nodes (-1 at padding); recompute them with "
                            "graphdiff.processes.order.blocks_from_state")
        return blocks

    def block_losses(self, denoiser, batch: GraphState, *, generator: torch.Generator | None = None) -> dict:
        """The loss terms of every block of every graph, from ONE forward pass over the doubled node set.

        Returns:
            ``{"block": [B, K], "block_mask": [B, K], "size": [B, K + 1], "size_mask": [B, K + 1], "blocks": [B, N]}``:
            ``block[g, k]`` = node CE (mean over block ``k``'s nodes) + ``lambda_edge`` x pair CE (mean over the
            pairs of block ``k``); ``size[g, r]`` = CE of the size of block ``r`` (0 = stop after the last block),
            predicted from blocks ``< r``; masks select the terms that exist (sizes above ``max_block`` are left out).
            With ``block_degree`` also ``"degree": [B, K]`` (CE of block ``k``'s degree given its true size) and
            ``"degree_mask"``.
        """
        self.check_denoiser(denoiser)
        x0, e0 = self.categories(batch)
        mask, dev = batch.mask.bool(), batch.device
        dtype = batch.x.dtype if batch.x.is_floating_point() else torch.float32
        b, n = mask.shape
        blocks = self.batch_blocks(batch).to(dev)
        n_blocks = blocks.amax(1) + 1 if n else torch.zeros(b, dtype=torch.long, device=dev)
        k = max(int(n_blocks.max()) if b else 0, 1)
        gdev = generator.device if generator is not None else dev
        # PARD: every block k at its own uniformly drawn step t_k in {1..T}
        t_block = torch.randint(1, self.T + 1, (b, k), generator=generator, device=gdev).to(dev)
        bl = blocks.clamp(min=0)
        pair_block = torch.maximum(bl.unsqueeze(2), bl.unsqueeze(1))
        t_nodes = t_block.gather(1, bl) * mask
        t_pairs = t_block.gather(1, pair_block.reshape(b, -1)).reshape(b, n, n)
        px, pe = self.noise_probs_at(x0, e0, t_nodes, t_pairs)
        noisy = self.sample_state(px, pe, mask, generator, dtype)
        clean = self.onehot(x0, e0, mask, dtype)
        cond = self._train_cond(batch, generator)
        node_degree = block_deg = None
        if self.block_degree:  # PARD: every block's degree, a condition of its diffusion and a target of the head
            block_deg = block_degrees((e0 > 0).long(), blocks)
            node_degree = block_deg.gather(1, bl).clamp(max=self.max_degree) * mask
        inp, levels = self.assemble(clean.x, clean.e, noisy.x, noisy.e, t_nodes, blocks, mask, mask, node_degree)
        out = denoiser(inp, torch.zeros(b, device=dev, dtype=dtype), cond, block=levels)
        lx, le, ls, ld = self.split_logits(out, blocks)
        # DiGress eq. 2 per block: node CE + lambda CE over the block's pairs
        nll_x = -torch.log_softmax(lx, -1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
        nll_e = -torch.log_softmax(le, -1).gather(-1, e0.unsqueeze(-1)).squeeze(-1)
        oh_x = F.one_hot(bl, k).float() * mask.unsqueeze(-1).float()
        oh_e = F.one_hot(pair_block, k).float() * upper_pair_mask(mask).unsqueeze(-1).float()
        cnt_x, cnt_e = oh_x.sum(1), oh_e.sum((1, 2))
        ce_x = torch.einsum("bn,bnk->bk", nll_x, oh_x) / cnt_x.clamp(min=1)
        ce_e = torch.einsum("bij,bijk->bk", nll_e, oh_e) / cnt_e.clamp(min=1)
        block_mask = cnt_x > 0
        per_block = (ce_x + self.lambda_edge * ce_e) * block_mask
        # PARD Sec. 3.2: sizes of blocks 0..K-1, then 0 (stop); the size of block r is read at level 2r
        target = torch.cat([cnt_x.round().long(), torch.zeros(b, 1, dtype=torch.long, device=dev)], 1)
        rows = ls[:, 0::2][:, : k + 1]
        if rows.shape[1] < k + 1:
            rows = F.pad(rows, (0, 0, 0, k + 1 - rows.shape[1]))
        r = torch.arange(k + 1, device=dev).unsqueeze(0)
        size_mask = (r <= n_blocks.unsqueeze(1)) & (target <= self.max_block)
        nll_s = -torch.log_softmax(rows, -1).gather(-1, target.clamp(max=self.max_block).unsqueeze(-1)).squeeze(-1)
        parts = {"block": per_block, "block_mask": block_mask, "size": nll_s * size_mask, "size_mask": size_mask,
                 "blocks": blocks}
        if self.block_degree:
            # PARD: the degree of block r given its (true) size, read at the same level as the size
            drows = ld[:, 0::2][:, :k]
            if drows.shape[1] < k:
                drows = F.pad(drows, (0, 0, 0, 0, 0, k - drows.shape[1]))
            size_idx = target[:, :k].clamp(max=self.max_block).view(b, k, 1, 1).expand(-1, -1, 1, drows.shape[-1])
            dlog = torch.log_softmax(drows.gather(2, size_idx).squeeze(2), -1)  # [B, K, max_degree + 1]
            deg_target = block_deg[:, :k].clamp(max=self.max_degree)
            if deg_target.shape[1] < k:
                deg_target = F.pad(deg_target, (0, k - deg_target.shape[1]))
            degree_mask = block_mask & size_mask[:, :k]
            parts["degree"] = -dlog.gather(-1, deg_target.unsqueeze(-1)).squeeze(-1) * degree_mask
            parts["degree_mask"] = degree_mask
        return parts

    def loss(self, denoiser, batch: GraphState, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-graph loss: mean over blocks of the block's CE + ``lambda_size`` x (mean block-size CE + mean
        block-degree CE, with ``block_degree``).

        Shapes:
            returns ``[B]``.
        """
        parts = self.block_losses(denoiser, batch, generator=generator)
        blocks = parts["block"].sum(1) / parts["block_mask"].sum(1).clamp(min=1)
        sizes = parts["size"].sum(1) / parts["size_mask"].sum(1).clamp(min=1)
        if "degree" in parts:
            sizes = sizes + parts["degree"].sum(1) / parts["degree_mask"].sum(1).clamp(min=1)
        return blocks + self.lambda_size * sizes


__all__ = ["BlockAutoregressive", "block_statistics", "block_degrees", "EXTRA_NODE_CHANNELS"]
