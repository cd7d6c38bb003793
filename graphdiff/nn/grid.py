"""GridDenoiser: message passing over the fixed edges of an image grid or a series path (:mod:`graphdiff.adapters`).

A U-Net made of graph operations only, so it runs on any fixed graph with coordinates: residual blocks pass
messages along each edge kind of ``state.e`` (one linear map per kind, mean over neighbours), conditioned on the
noise level (sinusoidal embedding of ``t``) and an optional condition ``cond``; node inputs are the values and
Fourier features of ``state.pos``. Coarser levels pool nodes whose coordinates fall in the same cell of a grid
twice as coarse per level (2x2 pixels on an image, pairs of steps on a series) and join cells linked by a finer
edge; decoding copies cell features back and adds the skip connection. Permuting the nodes (values, positions and
edges together) permutes the output, and padded slots never reach real ones.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import SchemaError
from ..state import GraphState
from .layers import timestep_embedding


class Level:
    """One resolution of the fixed graph: edge list ``[M, 2]`` (directed both ways), kinds ``[M]``, and the map
    ``parent [N]`` of each node to its cell at the next coarser level (``None`` at the coarsest)."""

    def __init__(self, edges: Tensor, kinds: Tensor, n: int, cells: Tensor):
        self.edges, self.kinds, self.n, self.cells = edges, kinds, n, cells
        self.parent: Tensor | None = None
        self.n_parent = 0
        self._adj: dict = {}

    def adjacency(self, kinds: int, dtype) -> Tensor:
        """``[kinds, n, n]`` 0/1 adjacency per edge kind (cached)."""
        key = (kinds, dtype)
        if key not in self._adj:
            adj = torch.zeros(kinds, self.n, self.n, dtype=dtype, device=self.edges.device)
            if len(self.edges):
                adj[self.kinds.clamp(max=kinds - 1), self.edges[:, 0], self.edges[:, 1]] = 1
            self._adj[key] = adj
        return self._adj[key]

    def neighbours(self, kinds: int) -> Tensor | None:
        """``[kinds, n]`` the one neighbour of each node per kind (``n``, a zero slot, where it has none), or
        ``None`` when some node has several neighbours of one kind (then messages use the dense adjacency)."""
        key = ("nb", kinds)
        if key not in self._adj:
            adj = self.adjacency(kinds, torch.float32)
            nb = None
            if not len(self.edges) or float(adj.sum(-1).max()) <= 1:
                has, idx = adj.max(-1)
                nb = torch.where(has > 0, idx, torch.full_like(idx, self.n))
            self._adj[key] = nb
        return self._adj[key]


def _axis_cells(pos: Tensor, level: int) -> Tensor:
    """``[N, 3]`` integer cell of each node on a grid ``2^level`` times coarser than the distinct coordinates."""
    out = []
    for a in range(pos.shape[1]):
        vals, idx = torch.unique(pos[:, a], return_inverse=True)
        out.append(idx // (2**level))
    return torch.stack(out, 1)


MESSAGES = ("kinds", "directions")
# direction class of a neighbour's offset (sign on axes 0 and 1 of pos): the 4 axial ones first, then the diagonals
_DIRECTION = torch.tensor([4, 0, 5, 2, 0, 3, 6, 1, 7])  # index (sign0 + 1) * 3 + (sign1 + 1)


def _directions(pos: Tensor, edges: Tensor, tol: float = 1e-6) -> Tensor:
    """``[M]`` direction class of each edge's neighbour ``edges[:, 1]`` seen from ``edges[:, 0]``."""
    if not len(edges):
        return torch.zeros(0, dtype=torch.long, device=pos.device)
    d = pos[edges[:, 1], :2] - pos[edges[:, 0], :2]
    sign = torch.where(d.abs() > tol, torch.sign(d), torch.zeros_like(d)).long() + 1
    return _DIRECTION.to(pos.device)[sign[:, 0] * 3 + sign[:, 1]]


class GraphBlock(nn.Module):
    """Residual block: ``h + W_out SiLU(W_self a + sum_k mean_{j in N_k(i)} W_k a_j + emb)``, ``a = LN(h)``; the
    mean runs over real neighbours only (the fixed graph is small: dense ``[K, N, N]`` adjacency products)."""

    def __init__(self, hidden: int, kinds: int, emb: int):
        super().__init__()
        self.kinds, self.hidden = kinds, hidden
        self.norm = nn.LayerNorm(hidden)
        self.self_lin = nn.Linear(hidden, hidden)
        self.kind_lin = nn.Linear(hidden, hidden * kinds, bias=False)
        self.emb = nn.Linear(emb, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, h: Tensor, level: Level, node_mask: Tensor, emb: Tensor) -> Tensor:
        a = self.norm(h) * node_mask
        u = self.self_lin(a) + self.emb(emb).unsqueeze(1)
        b, n, _ = a.shape
        msg = self.kind_lin(a).reshape(b, n, self.kinds, self.hidden)  # zero at padded senders (no bias)
        nb = level.neighbours(self.kinds)
        if nb is not None:  # at most one neighbour per kind (grid directions): a gather instead of a product
            pad = torch.cat([msg, msg.new_zeros(b, 1, self.kinds, self.hidden)], 1)
            u = u + pad[:, nb.T, torch.arange(self.kinds, device=nb.device)].sum(2)
        else:
            adj = level.adjacency(self.kinds, a.dtype)  # [K, n, n]
            deg = torch.einsum("kij,bjo->bkio", adj, node_mask).clamp(min=1)  # real neighbours per kind
            u = u + (torch.einsum("kij,bjkh->bkih", adj, msg) / deg).sum(1)
        return (h + self.out(nn.functional.silu(u))) * node_mask


def _pool(h: Tensor, parent: Tensor, n_parent: int, node_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of real member nodes per cell, and the cell mask (a cell is real when it has a real member)."""
    b, _, f = h.shape
    s = torch.zeros(b, n_parent, f, device=h.device, dtype=h.dtype).index_add_(1, parent, h * node_mask)
    c = torch.zeros(b, n_parent, 1, device=h.device, dtype=h.dtype).index_add_(1, parent, node_mask)
    return s / c.clamp(min=1), (c > 0).to(h.dtype)


class GridDenoiser(nn.Module):
    """Multi-scale message-passing denoiser on a fixed graph (model name ``grid_mpnn``).

    Args:
        x_dim: value channels C (filled in by the process).
        max_nodes: N (filled in by the process; unused beyond checks).
        hidden: node feature width.
        levels: resolutions of the U-Net (1: no pooling).
        blocks: residual blocks per level on the way down (and up).
        pos_freqs: Fourier frequencies per coordinate axis.
        cond_dim: width of the graph-level condition (0: unconditional).
        emb: width of the noise-level embedding.
        edge_kinds: linear maps per block (messages ``"kinds"``: the edge kinds of ``state.e``, extra kinds merged
            into the last; ``"directions"``: direction classes, 4 on a 4-neighbour grid, 8 with diagonals, 2 on a
            path).
        messages: ``"kinds"`` (one map per edge kind of ``e``, isotropic within a kind) or ``"directions"`` (one
            map per direction of the neighbour's offset in ``pos``: the graph form of a 3x3 convolution; still
            equivariant to node permutations, since directions come from coordinates).

    Shapes:
        state.x ``[B, N, C]``, state.e ``[B, N, N, Fe]`` (fixed), state.pos ``[B, N, 3]``, t ``[B]`` -> x ``[B, N, C]``.
    """

    def __init__(self, *, x_dim: int, max_nodes: int, hidden: int = 64, levels: int = 2, blocks: int = 2,
                 pos_freqs: int = 4, cond_dim: int = 0, emb: int = 64, edge_kinds: int = 2,
                 messages: str = "kinds"):
        super().__init__()
        if levels < 1 or blocks < 1:
            raise SchemaError(f"grid_mpnn needs levels >= 1 and blocks >= 1, got {levels}, {blocks}")
        self.x_dim, self.max_nodes, self.levels, self.pos_freqs = x_dim, max_nodes, levels, pos_freqs
        self.cond_dim, self.emb_dim, self.edge_kinds = cond_dim, emb, edge_kinds
        self.inp = nn.Linear(x_dim + 3 * 2 * pos_freqs, hidden)
        self.t_mlp = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.cond = nn.Linear(cond_dim, emb) if cond_dim else None
        if messages not in MESSAGES:
            raise SchemaError(f"grid_mpnn messages must be one of {MESSAGES}, got {messages!r}")
        self.messages = messages
        kinds = [edge_kinds] * levels if messages == "directions" else [edge_kinds] + [1] * (levels - 1)
        self.down = nn.ModuleList(nn.ModuleList(GraphBlock(hidden, kinds[lv], emb) for _ in range(blocks))
                                  for lv in range(levels))
        self.up = nn.ModuleList(nn.ModuleList(GraphBlock(hidden, kinds[lv], emb) for _ in range(blocks))
                                for lv in range(levels - 1))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, x_dim)

    def pyramid(self, state: GraphState) -> list[Level]:
        """The levels of the batch's fixed graph (read from item 0: the same graph for every item)."""
        if state.pos is None:
            raise SchemaError("grid_mpnn needs state.pos (node coordinates of the fixed graph)")
        e0, pos0 = state.e[0], state.pos[0]
        kind = e0.argmax(-1)
        src, dst = torch.nonzero(kind > 0, as_tuple=True)
        edges = torch.stack([src, dst], 1)
        kinds = _directions(pos0, edges) if self.messages == "directions" else kind[src, dst] - 1
        out = [Level(edges, kinds.clamp(max=self.edge_kinds - 1), e0.shape[0],
                     torch.arange(e0.shape[0], device=e0.device))]
        base = out[0].edges
        to_cell = torch.arange(e0.shape[0], device=e0.device)  # level-0 node -> its cell at the current level
        for lv in range(1, self.levels):
            _, cell = torch.unique(_axis_cells(pos0, lv), dim=0, return_inverse=True)
            n_cells = int(cell.max()) + 1
            parent = torch.zeros(out[-1].n, dtype=torch.long, device=e0.device)
            parent[to_cell] = cell
            out[-1].parent, out[-1].n_parent = parent, n_cells
            ce = cell[base]
            ce = torch.unique(ce[ce[:, 0] != ce[:, 1]], dim=0) if len(ce) else ce
            if self.messages == "directions":  # cells sit at the mean position of their nodes
                cpos = torch.zeros(n_cells, 3, dtype=pos0.dtype, device=pos0.device).index_add_(0, cell, pos0)
                cpos = cpos / torch.bincount(cell, minlength=n_cells).unsqueeze(1).to(pos0.dtype)
                ck = _directions(cpos, ce).clamp(max=self.edge_kinds - 1)
            else:
                ck = torch.zeros(len(ce), dtype=torch.long, device=e0.device)
            out.append(Level(ce, ck, n_cells, torch.arange(n_cells, device=e0.device)))
            to_cell = cell
        return out

    def features(self, state: GraphState) -> Tensor:
        freqs = (2.0 ** torch.arange(self.pos_freqs, device=state.x.device, dtype=state.x.dtype)) * math.pi / 2
        ang = state.pos.unsqueeze(-1) * freqs
        pe = torch.cat([ang.sin(), ang.cos()], -1).flatten(2)
        return torch.cat([state.x, pe], -1)

    def forward(self, state: GraphState, t: Tensor, cond: Tensor | None = None) -> GraphState:
        if state.x.shape[-1] != self.x_dim:
            raise SchemaError(f"grid_mpnn wants x with {self.x_dim} channels, got {state.x.shape[-1]}")
        t = torch.as_tensor(t, dtype=state.x.dtype, device=state.x.device).reshape(-1).expand(state.batch_size)
        emb = self.t_mlp(timestep_embedding(t * 100.0, self.emb_dim))
        if cond is None:
            cond = state.y
        if self.cond is not None and cond is not None:
            emb = emb + self.cond(cond.to(emb.dtype))
        levels = self.pyramid(state)
        m = state.mask.unsqueeze(-1).to(state.x.dtype)
        h = self.inp(self.features(state)) * m
        skips, masks = [], []
        for lv, blocks in enumerate(self.down):
            for blk in blocks:
                h = blk(h, levels[lv], m, emb)
            if lv < self.levels - 1:
                skips.append(h)
                masks.append(m)
                h, m = _pool(h, levels[lv].parent, levels[lv].n_parent, m)
        for lv in range(self.levels - 2, -1, -1):
            m = masks[lv]
            h = (h[:, levels[lv].parent] + skips[lv]) * m
            for blk in self.up[lv]:
                h = blk(h, levels[lv], m, emb)
        out = self.head(self.norm(h)) * m
        return GraphState(x=out, e=state.e, mask=state.mask, pos=state.pos, y=state.y)


__all__ = ["GridDenoiser", "GraphBlock", "Level"]
