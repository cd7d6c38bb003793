"""An EQGAT-diff / EGNN-class E(3)-equivariant denoiser for 3D molecules, in pure torch with PyG scatter operations.

Papers: Satorras, Hoogeboom & Welling 2021, "E(n) Equivariant Graph Neural Networks" (coordinate updates along
``x_i - x_j`` weighted by invariant functions); Le, Cremer, Noe, Clevert & Schuett 2024, "Navigating the design space
of equivariant diffusion-based generative models for de novo 3D molecule generation" (EQGAT-diff: attention-gated
messages over the fully connected graph, scalar, vector and edge streams, bonds predicted jointly).

The dense padded batch of :class:`~graphdiff.state.GraphState` is flattened to PyG-style node lists: real nodes only,
with every ordered pair of distinct real nodes of the same graph as an edge. Messages, attention (softmax over the
incoming edges of a node) and aggregation run on these lists and the outputs are scattered back to the dense layout.
Padded slots never enter the lists, so they cannot influence real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import SchemaError
from ..kernels import check_mode, message_scatter
from ..state import GraphState, pair_mask
from .layers import MLP, TimeEmbedding, check_inputs, check_sizes

__all__ = ["EQGATDenoiser", "EQGATLayer", "FullyConnectedBatch", "gaussian_rbf", "check_pos"]

_DIST_EPS = 1e-8  # under the square root of squared distances and vector norms: finite gradients at zero


def _scatter(src: Tensor, index: Tensor, dim_size: int, reduce: str, kernels: str = "auto") -> Tensor:
    """PyG's ``scatter(src, index, dim=0, dim_size=dim_size, reduce=reduce)`` through the kernel dispatch."""
    return message_scatter(src, index, dim_size, reduce, mode=kernels)


def _softmax(src: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    from torch_geometric.utils import softmax

    return softmax(src, index, num_nodes=num_nodes, dim=0)


def gaussian_rbf(r: Tensor, num: int, max_radius: float) -> Tensor:
    """Gaussian radial basis of distances: ``exp(-((r - mu_k) / delta)^2)`` for ``num`` centres ``mu_k`` evenly
    spaced on ``[0, max_radius]`` with spacing ``delta``.

    Args:
        r: ``[...]`` distances (Å).
        num: number of basis functions.
        max_radius: the last centre.

    Returns:
        ``[..., num]``.
    """
    mu = torch.linspace(0.0, max_radius, num, device=r.device, dtype=r.dtype)
    delta = max_radius / max(num - 1, 1)
    return torch.exp(-(((r.unsqueeze(-1) - mu) / delta) ** 2))


def check_pos(state: GraphState) -> Tensor:
    """``state.pos`` after checking it exists and is finite at real nodes (one-line SchemaError otherwise)."""
    if state.pos is None:
        raise SchemaError("a 3D denoiser needs state.pos [B, N, 3]; the state has no coordinates")
    if not bool(torch.isfinite(state.pos[state.mask]).all()):
        raise SchemaError("state.pos has NaN or infinite coordinates at real nodes")
    return state.pos


def embed_inputs(net: nn.Module, state: GraphState, t: Tensor, cond: Tensor | None):
    """What both 3D denoisers do first: check the inputs, flatten the batch to its fully connected graphs, centre
    the coordinates per molecule, and embed node features plus time (and ``cond``) with the network's
    ``embed_x`` / ``embed_t`` / ``embed_cond``. Returns ``(t, g, x, com, h)``: checked times, the
    :class:`FullyConnectedBatch`, centred coordinates ``[M, 3]``, the centres ``[B, 3]`` and node features."""
    t, cond = check_inputs(net, state, t, cond)
    pos = check_pos(state)
    g = FullyConnectedBatch.from_mask(state.mask, kernels=getattr(net, "kernels", "auto"))
    x_in = g.nodes(pos).to(state.x.dtype)
    com = g.centre(x_in)
    graph_emb = net.embed_t(t)
    if net.embed_cond is not None:
        graph_emb = graph_emb + net.embed_cond(cond)
    h = net.embed_x(g.nodes(state.x)) + graph_emb[g.node_graph]
    return t, g, x_in - com[g.node_graph], com, h


@dataclass
class FullyConnectedBatch:
    """A dense padded batch flattened to node and edge lists: every ordered pair of distinct real nodes of the same
    graph is an edge ``src = j -> dst = i``.

    Attributes:
        node_graph: ``[M]`` graph of each real node.
        node_slot: ``[M]`` slot of each real node in its graph.
        edge_graph, edge_i, edge_j: ``[E]`` graph and slots ``(i, j)`` of each edge (``i`` receives).
        dst, src: ``[E]`` node-list indices of ``i`` and ``j``.
        reverse: ``[E]`` index of the edge ``j -> i`` for each edge ``i <- j``.
        num_graphs, num_slots: the dense sizes ``B`` and ``N``.
        kernels: the kernel mode of the scatter reductions on these lists (see :mod:`graphdiff.kernels`).
    """

    node_graph: Tensor
    node_slot: Tensor
    edge_graph: Tensor
    edge_i: Tensor
    edge_j: Tensor
    dst: Tensor
    src: Tensor
    reverse: Tensor
    num_graphs: int
    num_slots: int
    kernels: str = "auto"

    @classmethod
    def from_mask(cls, mask: Tensor, kernels: str = "auto") -> "FullyConnectedBatch":
        """Build the lists from a ``[B, N]`` bool mask (real nodes in row-major order, graph by graph)."""
        b, n = mask.shape
        node_graph, node_slot = mask.nonzero(as_tuple=True)
        flat = torch.full((b, n), -1, dtype=torch.long, device=mask.device)
        flat[node_graph, node_slot] = torch.arange(node_graph.numel(), device=mask.device)
        eg, ei, ej = pair_mask(mask).nonzero(as_tuple=True)
        edge_id = torch.full((b, n, n), -1, dtype=torch.long, device=mask.device)
        edge_id[eg, ei, ej] = torch.arange(eg.numel(), device=mask.device)
        return cls(node_graph=node_graph, node_slot=node_slot, edge_graph=eg, edge_i=ei, edge_j=ej,
                   dst=flat[eg, ei], src=flat[eg, ej], reverse=edge_id[eg, ej, ei], num_graphs=b, num_slots=n,
                   kernels=kernels)

    @property
    def num_nodes(self) -> int:
        return self.node_graph.numel()

    def nodes(self, dense: Tensor) -> Tensor:
        """``[B, N, ...]`` -> ``[M, ...]`` at real nodes."""
        return dense[self.node_graph, self.node_slot]

    def edges(self, dense: Tensor) -> Tensor:
        """``[B, N, N, ...]`` -> ``[E, ...]`` at the edges."""
        return dense[self.edge_graph, self.edge_i, self.edge_j]

    def dense_nodes(self, flat: Tensor) -> Tensor:
        """``[M, F]`` -> ``[B, N, F]``, zeros at padded slots."""
        out = flat.new_zeros(self.num_graphs, self.num_slots, flat.shape[-1])
        out[self.node_graph, self.node_slot] = flat
        return out

    def dense_edges(self, flat: Tensor) -> Tensor:
        """``[E, F]`` -> ``[B, N, N, F]``, zeros on the diagonal and at pairs touching padded slots."""
        out = flat.new_zeros(self.num_graphs, self.num_slots, self.num_slots, flat.shape[-1])
        out[self.edge_graph, self.edge_i, self.edge_j] = flat
        return out

    def centre(self, pos: Tensor) -> Tensor:
        """``[B, 3]`` centre of mass (unweighted mean) of each graph's real nodes, from node-list ``pos [M, 3]``."""
        return _scatter(pos, self.node_graph, self.num_graphs, "mean", self.kernels)


def _vector_norm(v: Tensor) -> Tensor:
    """``[M, 3, C]`` -> ``[M, C]`` norms, smoothed at zero so the gradient stays finite."""
    return (v.pow(2).sum(1) + _DIST_EPS).sqrt()


def _small_init(lin: nn.Linear, gain: float = 1e-2) -> nn.Linear:
    nn.init.xavier_uniform_(lin.weight, gain=gain)
    if lin.bias is not None:
        nn.init.zeros_(lin.bias)
    return lin


# Paper: Le et al. 2024 (EQGAT-diff, the EQGAT layer with edge features); Satorras et al. 2021 (EGNN coordinates).
class EQGATLayer(nn.Module):
    """One attention-gated equivariant layer on scalar ``h``, vector ``v``, coordinate ``x`` and edge ``e`` streams.

    For each edge ``i <- j`` with ``d_ij = x_i - x_j``, ``r_ij = |d_ij|`` and ``u_ij = d_ij / (1 + r_ij)`` an MLP of
    the invariants ``[h_i, h_j, e_ij, rbf(r_ij)]`` gives attention logits (per head), values, two vector gates, a
    coordinate weight and an edge update. Then:

    - ``h_i += W sum_j softmax_j(a_ij) v_ij`` (multi-head attention over the incoming edges), LayerNorm;
    - ``v_i += mean_j (g_ij u_ij + g'_ij v_j)`` per vector channel, then a gated, channel-mixing update
      ``v_i += (W_v v_i) * sigmoid(s_i)`` with gates ``s_i`` from ``[h_i, |v_i|]``, which also update ``h_i``;
      vectors are softly normalised by ``sqrt(1 + mean_c |v_c|^2)``;
    - ``x_i += mean_j w_ij u_ij + W_x v_i`` (EGNN update plus a learned mix of vector channels, no bias);
    - ``e_ij`` takes a residual update and a LayerNorm.

    Every update of ``v`` and ``x`` is a sum of vectors times invariants, so ``h``, ``e`` stay E(3)-invariant and
    ``v``, ``x`` equivariant (reflections included). Linear maps on vector channels have no bias.

    Args:
        hidden: scalar width (a multiple of ``heads``).
        vectors: vector channels.
        edge_hidden: edge feature width.
        heads: attention heads.
        num_rbf: radial basis size.
        max_radius: last radial basis centre (Å).
    """

    def __init__(self, *, hidden: int, vectors: int, edge_hidden: int, heads: int, num_rbf: int, max_radius: float):
        super().__init__()
        if hidden % heads:
            from ..errors import ConfigError

            raise ConfigError(f"hidden={hidden} must be a multiple of heads={heads}")
        self.hidden, self.vectors, self.edge_hidden, self.heads = hidden, vectors, edge_hidden, heads
        self.num_rbf, self.max_radius = num_rbf, float(max_radius)
        self.split = (heads, hidden, vectors, vectors, 1, edge_hidden)
        self.message = MLP(2 * hidden + edge_hidden + num_rbf, hidden, sum(self.split), num_layers=2, act="silu")
        with torch.no_grad():  # coordinate weights start small: the first predictions stay near the input (EGNN)
            self.message.linears[-1].weight[sum(self.split[:4])].mul_(1e-2)
        self.h_out = nn.Linear(hidden, hidden)
        self.norm_h1, self.norm_h2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.node_update = MLP(hidden + vectors, hidden, hidden + vectors, num_layers=2, act="silu")
        self.v_mix = nn.Linear(vectors, vectors, bias=False)
        self.x_mix = _small_init(nn.Linear(vectors, 1, bias=False))
        self.norm_e = nn.LayerNorm(edge_hidden)

    def forward(self, h: Tensor, v: Tensor, x: Tensor, e: Tensor, g: FullyConnectedBatch):
        m_nodes = g.num_nodes
        d = x[g.dst] - x[g.src]
        r = (d.pow(2).sum(-1, keepdim=True) + _DIST_EPS).sqrt()
        u = d / (1.0 + r)
        feats = torch.cat([h[g.dst], h[g.src], e, gaussian_rbf(r.squeeze(-1), self.num_rbf, self.max_radius)], -1)
        att, val, gate_u, gate_v, w_x, de = self.message(feats).split(self.split, dim=-1)

        alpha = _softmax(att, g.dst, m_nodes)  # [E, heads]
        val = (val.view(-1, self.heads, self.hidden // self.heads) * alpha.unsqueeze(-1)).reshape(-1, self.hidden)
        h = self.norm_h1(h + self.h_out(_scatter(val, g.dst, m_nodes, "sum", g.kernels)))

        vec_msg = gate_u.unsqueeze(1) * u.unsqueeze(-1) + gate_v.unsqueeze(1) * v[g.src]  # [E, 3, V]
        v = v + _scatter(vec_msg, g.dst, m_nodes, "mean", g.kernels)
        dh, s = self.node_update(torch.cat([h, _vector_norm(v)], -1)).split((self.hidden, self.vectors), dim=-1)
        h = self.norm_h2(h + dh)
        v = v + self.v_mix(v) * torch.sigmoid(s).unsqueeze(1)
        v = v / (1.0 + v.pow(2).sum(1).mean(-1)).sqrt().view(-1, 1, 1)

        x = x + _scatter(w_x * u, g.dst, m_nodes, "mean", g.kernels) + self.x_mix(v).squeeze(-1)
        e = self.norm_e(e + de)
        return h, v, x, e


# Paper: Le et al. 2024 (EQGAT-diff denoiser: joint atom types, charges, bonds and coordinates).
class EQGATDenoiser(nn.Module):
    """EQGAT-diff-class 3D denoiser: noisy atoms, bonds and coordinates, time and condition in; node logits, edge
    logits and predicted clean coordinates out.

    Node inputs are embedded linearly and the time embedding (:class:`~graphdiff.nn.layers.TimeEmbedding`) and a
    linear embedding of ``cond`` are added to every node. Edge inputs are embedded from ``[e_ij, rbf(r_ij)]`` of the
    input coordinates. Coordinates are centred per graph over real nodes, ``n_layers`` :class:`EQGATLayer` run on the
    fully connected graph of each molecule, and the final coordinates are moved back to the input's centre of mass
    (so translation equivariance holds exactly). Node logits are an MLP of the final ``h``; edge logits an MLP of
    ``[e_ij + e_ji, h_i + h_j, h_i * h_j, rbf(r_ij)]`` (symmetric in ``i, j``) with ``r_ij`` from the predicted
    coordinates.

    Args:
        node_dim: node input channels (element one-hot | charge one-hot in the 3D process).
        edge_dim: edge input channels (bond one-hot, channel 0 = no bond).
        node_out: node logit channels (default ``node_dim``).
        edge_out: edge logit channels (default ``edge_dim``).
        cond_dim: width of the graph-level condition (0 for none).
        max_nodes: largest number of node slots a batch may have.
        n_layers: equivariant layers.
        hidden: scalar width (a multiple of ``heads``).
        vectors: vector channels per node.
        edge_hidden: edge feature width.
        heads: attention heads.
        num_rbf: radial basis functions of distances.
        max_radius: last radial basis centre (Å).
        kernels: ``auto``, ``reference`` or ``triton``: the implementation of the scatter reductions (see
            :mod:`graphdiff.kernels`; ``GRAPHDIFF_KERNELS`` overrides it).

    Raises:
        ConfigError: a size below 1 or ``hidden`` not a multiple of ``heads``.
        SchemaError: in ``forward``, inputs whose widths differ from the model's, no or non-finite ``pos``, or more
            node slots than ``max_nodes``.

    Shapes:
        state.x: ``[B, N, node_dim]``; state.e: ``[B, N, N, edge_dim]``; state.pos: ``[B, N, 3]``; state.mask:
        ``[B, N]`` bool; t: ``[B]`` in ``[0, 1]`` (or a scalar); cond: ``[B, cond_dim]`` or ``None`` (zeros).
        output: ``GraphState(x=[B, N, node_out], e=[B, N, N, edge_out] symmetric, pos=[B, N, 3], mask=state.mask)``,
        zeros at padded slots, on the diagonal and at pairs touching padded slots.
    """

    def __init__(
        self, *, node_dim: int, edge_dim: int, node_out: int | None = None, edge_out: int | None = None,
        cond_dim: int = 0, max_nodes: int, n_layers: int = 4, hidden: int = 96, vectors: int = 16,
        edge_hidden: int = 32, heads: int = 4, num_rbf: int = 16, max_radius: float = 10.0, kernels: str = "auto",
    ):
        super().__init__()
        node_out = node_dim if node_out is None else node_out
        edge_out = edge_dim if edge_out is None else edge_out
        check_sizes(dict(node_dim=node_dim, edge_dim=edge_dim, node_out=node_out, edge_out=edge_out,
                         max_nodes=max_nodes, n_layers=n_layers, hidden=hidden, vectors=vectors,
                         edge_hidden=edge_hidden, heads=heads, num_rbf=num_rbf), cond_dim=cond_dim, dropout=0.0)
        if not max_radius > 0:
            from ..errors import ConfigError

            raise ConfigError(f"max_radius must be > 0, got {max_radius}")
        self.node_dim, self.edge_dim, self.node_out, self.edge_out = node_dim, edge_dim, node_out, edge_out
        self.cond_dim, self.max_nodes, self.kernels = int(cond_dim), int(max_nodes), check_mode(kernels)
        self.hidden, self.vectors, self.num_rbf, self.max_radius = hidden, vectors, num_rbf, float(max_radius)
        self.embed_x = nn.Linear(node_dim, hidden)
        self.embed_t = TimeEmbedding(hidden)
        self.embed_cond = nn.Linear(self.cond_dim, hidden) if self.cond_dim else None
        self.embed_e = MLP(edge_dim + num_rbf, edge_hidden, edge_hidden, num_layers=2, act="silu")
        self.layers = nn.ModuleList(
            EQGATLayer(hidden=hidden, vectors=vectors, edge_hidden=edge_hidden, heads=heads, num_rbf=num_rbf,
                       max_radius=max_radius) for _ in range(n_layers)
        )
        self.out_x = MLP(hidden, hidden, node_out, num_layers=2, act="silu")
        self.out_e = MLP(edge_hidden + 2 * hidden + num_rbf, hidden, edge_out, num_layers=2, act="silu")
        for head in (self.out_x, self.out_e):  # near-uniform logits at initialisation
            _small_init(head.linears[-1], gain=0.1)

    def forward(self, state: GraphState, t: Tensor, cond: Tensor | None = None) -> GraphState:
        t, g, x, com, h = embed_inputs(self, state, t, cond)
        v = h.new_zeros(g.num_nodes, 3, self.vectors)
        r0 = (x[g.dst] - x[g.src]).pow(2).sum(-1).add(_DIST_EPS).sqrt()
        e = self.embed_e(torch.cat([g.edges(state.e), gaussian_rbf(r0, self.num_rbf, self.max_radius)], -1))

        for layer in self.layers:
            h, v, x, e = layer(h, v, x, e, g)

        r = (x[g.dst] - x[g.src]).pow(2).sum(-1).add(_DIST_EPS).sqrt()
        hi, hj = h[g.dst], h[g.src]
        pair = torch.cat([e + e[g.reverse], hi + hj, hi * hj, gaussian_rbf(r, self.num_rbf, self.max_radius)], -1)
        x = x - g.centre(x)[g.node_graph] + com[g.node_graph]
        return GraphState(x=g.dense_nodes(self.out_x(h)), e=g.dense_edges(self.out_e(pair)),
                          pos=g.dense_nodes(x), mask=state.mask)

    def extra_repr(self) -> str:
        return (f"node_dim={self.node_dim}, edge_dim={self.edge_dim}, node_out={self.node_out}, "
                f"edge_out={self.edge_out}, cond_dim={self.cond_dim}, max_nodes={self.max_nodes}")

