"""A tensor-product E(3)-equivariant denoiser for 3D molecules built on e3nn.

Papers: Geiger & Smidt 2022, "e3nn: Euclidean Neural Networks" (irreps, spherical harmonics, tensor products, gated
nonlinearity); Batzner et al. 2022, NequIP (per-edge tensor-product weights from a radial MLP, "uvu" depthwise
paths, self-connection); Le et al. 2024, EQGAT-diff (joint atom, bond and coordinate prediction on the fully
connected graph of a molecule).

Node features carry ``S`` scalars (``0e``) and ``V`` vectors (``1o``). Each layer sends, along every edge ``i <- j``
of the fully connected graph, the tensor product of ``h_j`` with the spherical harmonics ``Y(x_i - x_j)`` up to
``lmax``, weighted per edge and path by an MLP of (distance basis, invariant edge features, time); messages are
averaged, mixed linearly, added to a self-connection and passed through an e3nn ``Gate``. Invariant edge features are
updated from the node scalars after each layer. e3nn is imported when a network is built, not when
:mod:`graphdiff.nn` is imported.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..kernels import check_mode
from ..state import GraphState
from .eqgat import FullyConnectedBatch, _scatter, embed_inputs, gaussian_rbf
from .layers import MLP, TimeEmbedding, check_sizes

__all__ = ["E3nnTPDenoiser", "TensorProductConv"]

_DIST_EPS = 1e-8


def _uvu_paths(irreps_in, irreps_sh, targets):
    """Depthwise (``uvu``) tensor-product paths from ``irreps_in x irreps_sh`` to the irreps in ``targets``: one
    output block of ``mul`` copies per (input block, harmonic, allowed output irrep)."""
    from e3nn import o3

    mid, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                if ir_out in targets:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    return o3.Irreps(mid), instructions


# Paper: Batzner et al. 2022 (NequIP interaction block); Geiger & Smidt 2022 (e3nn Gate).
class TensorProductConv(nn.Module):
    """One e3nn interaction layer on the fully connected graph.

    ``m_ij = TP(W_pre h_j, Y(x_i - x_j); w_ij)`` with per-edge weights ``w_ij = MLP(radial_ij)``, only paths that end
    in ``0e`` or ``1o``; ``h_i' = Gate(W_msg mean_j m_ij + W_self h_i)`` (SiLU on scalars, sigmoid gates on vectors),
    plus ``h_i`` when input and output irreps agree.

    Args:
        irreps_in: node irreps entering the layer.
        irreps_sh: spherical-harmonic irreps of the edge vectors.
        scalars: ``0e`` channels out.
        vectors: ``1o`` channels out.
        radial_in: width of the per-edge invariant input of the weight MLP.
        radial_hidden: hidden width of the weight MLP.
    """

    def __init__(self, irreps_in, irreps_sh, *, scalars: int, vectors: int, radial_in: int, radial_hidden: int):
        super().__init__()
        from e3nn import o3
        from e3nn.nn import Gate

        self.irreps_in, self.irreps_sh = o3.Irreps(irreps_in), o3.Irreps(irreps_sh)
        self.gate = Gate(f"{scalars}x0e", [nn.functional.silu], f"{vectors}x0e", [torch.sigmoid], f"{vectors}x1o")
        self.irreps_out = self.gate.irreps_out
        irreps_mid, instructions = _uvu_paths(self.irreps_in, self.irreps_sh, {o3.Irrep("0e"), o3.Irrep("1o")})
        self.lin_pre = o3.Linear(self.irreps_in, self.irreps_in)
        self.tp = o3.TensorProduct(self.irreps_in, self.irreps_sh, irreps_mid, instructions, shared_weights=False,
                                   internal_weights=False)
        self.radial = MLP(radial_in, radial_hidden, self.tp.weight_numel, num_layers=2, act="silu")
        self.lin_msg = o3.Linear(irreps_mid, self.gate.irreps_in)
        self.lin_self = o3.Linear(self.irreps_in, self.gate.irreps_in)
        self.residual = self.irreps_in == self.irreps_out

    def forward(self, h: Tensor, sh: Tensor, radial: Tensor, g: FullyConnectedBatch) -> Tensor:
        msg = self.tp(self.lin_pre(h)[g.src], sh, self.radial(radial))
        out = self.gate(self.lin_msg(_scatter(msg, g.dst, g.num_nodes, "mean", g.kernels)) + self.lin_self(h))
        return h + out if self.residual else out


# Paper: Le et al. 2024 (joint denoising of atoms, bonds and coordinates); Geiger & Smidt 2022 (e3nn).
class E3nnTPDenoiser(nn.Module):
    """e3nn tensor-product 3D denoiser: noisy atoms, bonds and coordinates, time and condition in; node logits, edge
    logits and predicted clean coordinates out.

    Node inputs are embedded to ``scalars`` channels, plus the time embedding and a linear embedding of ``cond``.
    Edge inputs are embedded from ``[e_ij, rbf(r_ij)]``. ``n_layers`` :class:`TensorProductConv` layers (hidden irreps
    ``scalars x 0e + vectors x 1o``, harmonics up to ``lmax``; per-edge weights from ``[rbf(r_ij), e_ij, W t]``) run
    on the fully connected graph of each molecule, each followed by an edge update
    ``e_ij = LayerNorm(e_ij + MLP([e_ij, s_i + s_j, s_i * s_j]))`` from the node scalars ``s``. Node logits are an MLP
    of the final scalars; one ``1o`` output per node (a linear map of the vector channels) is the coordinate update
    added to the input coordinates, and the result is moved to the input's centre of mass. Edge logits are an MLP of
    ``[e_ij + e_ji, s_i + s_j, s_i * s_j, rbf(r_ij)]`` with ``r_ij`` from the predicted coordinates (symmetric).

    Args:
        node_dim: node input channels.
        edge_dim: edge input channels (channel 0 = no bond).
        node_out: node logit channels (default ``node_dim``).
        edge_out: edge logit channels (default ``edge_dim``).
        cond_dim: width of the graph-level condition (0 for none).
        max_nodes: largest number of node slots a batch may have.
        n_layers: interaction layers.
        scalars: ``0e`` channels per node.
        vectors: ``1o`` channels per node.
        edge_hidden: invariant edge feature width.
        lmax: largest degree of the spherical harmonics of edge vectors (1 or more).
        num_rbf: radial basis functions of distances.
        max_radius: last radial basis centre (Å).
        radial_hidden: hidden width of the per-edge weight MLPs.
        kernels: ``auto``, ``reference`` or ``triton``: the implementation of the scatter reductions (see
            :mod:`graphdiff.kernels`; ``GRAPHDIFF_KERNELS`` overrides it).

    Raises:
        ConfigError: a size below 1 or ``lmax < 1``.
        SchemaError: in ``forward``, inputs whose widths differ from the model's, no or non-finite ``pos``, or more
            node slots than ``max_nodes``.

    Shapes:
        as :class:`~graphdiff.nn.eqgat.EQGATDenoiser`.
    """

    def __init__(
        self, *, node_dim: int, edge_dim: int, node_out: int | None = None, edge_out: int | None = None,
        cond_dim: int = 0, max_nodes: int, n_layers: int = 3, scalars: int = 64, vectors: int = 16,
        edge_hidden: int = 32, lmax: int = 2, num_rbf: int = 16, max_radius: float = 10.0, radial_hidden: int = 64,
        kernels: str = "auto",
    ):
        super().__init__()
        from e3nn import o3

        node_out = node_dim if node_out is None else node_out
        edge_out = edge_dim if edge_out is None else edge_out
        check_sizes(dict(node_dim=node_dim, edge_dim=edge_dim, node_out=node_out, edge_out=edge_out,
                         max_nodes=max_nodes, n_layers=n_layers, scalars=scalars, vectors=vectors,
                         edge_hidden=edge_hidden, lmax=lmax, num_rbf=num_rbf, radial_hidden=radial_hidden),
                    cond_dim=cond_dim, dropout=0.0)
        if not max_radius > 0:
            raise ConfigError(f"max_radius must be > 0, got {max_radius}")
        self.node_dim, self.edge_dim, self.node_out, self.edge_out = node_dim, edge_dim, node_out, edge_out
        self.cond_dim, self.max_nodes, self.kernels = int(cond_dim), int(max_nodes), check_mode(kernels)
        self.scalars, self.num_rbf, self.max_radius = scalars, num_rbf, float(max_radius)
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.irreps_hidden = o3.Irreps(f"{scalars}x0e + {vectors}x1o")

        self.embed_x = nn.Linear(node_dim, scalars)
        self.embed_t = TimeEmbedding(scalars)
        self.embed_cond = nn.Linear(self.cond_dim, scalars) if self.cond_dim else None
        self.embed_e = MLP(edge_dim + num_rbf, edge_hidden, edge_hidden, num_layers=2, act="silu")
        self.edge_time = nn.Linear(scalars, edge_hidden)
        irreps = [o3.Irreps(f"{scalars}x0e")] + [self.irreps_hidden] * (n_layers - 1)
        self.layers = nn.ModuleList(
            TensorProductConv(ir, self.irreps_sh, scalars=scalars, vectors=vectors,
                              radial_in=num_rbf + 2 * edge_hidden, radial_hidden=radial_hidden) for ir in irreps
        )
        self.edge_updates = nn.ModuleList(
            MLP(edge_hidden + 2 * scalars, edge_hidden, edge_hidden, num_layers=2, act="silu") for _ in irreps
        )
        self.edge_norms = nn.ModuleList(nn.LayerNorm(edge_hidden) for _ in irreps)
        self.out_x = MLP(scalars, scalars, node_out, num_layers=2, act="silu")
        self.out_e = MLP(edge_hidden + 2 * scalars + num_rbf, scalars, edge_out, num_layers=2, act="silu")
        self.out_pos = o3.Linear(self.irreps_hidden, "1x1o")
        with torch.no_grad():  # small first coordinate updates and near-uniform logits at initialisation
            self.out_pos.weight.mul_(1e-2)
            for head in (self.out_x, self.out_e):
                head.linears[-1].weight.mul_(0.1)
        # v_cartesian = c_1o @ cartesian_from_1o: e3nn's basis of 1o against x, y, z (the identity in recent e3nn, a
        # permutation (y, z, x) in older releases)
        basis = o3.spherical_harmonics(1, torch.eye(3), normalize=False, normalization="norm")
        self.register_buffer("cartesian_from_1o", basis.T.contiguous(), persistent=False)

    def forward(self, state: GraphState, t: Tensor, cond: Tensor | None = None) -> GraphState:
        from e3nn import o3

        t, g, x, com, h = embed_inputs(self, state, t, cond)
        d = x[g.dst] - x[g.src]
        r = (d.pow(2).sum(-1) + _DIST_EPS).sqrt()
        sh = o3.spherical_harmonics(self.irreps_sh, d / r.unsqueeze(-1), normalize=False, normalization="component")
        rbf = gaussian_rbf(r, self.num_rbf, self.max_radius)
        e = self.embed_e(torch.cat([g.edges(state.e), rbf], -1))
        t_edge = self.edge_time(self.embed_t(t))[g.edge_graph]

        for conv, update, norm in zip(self.layers, self.edge_updates, self.edge_norms):
            h = conv(h, sh, torch.cat([rbf, e, t_edge], -1), g)
            s = h[:, : self.scalars]
            e = norm(e + update(torch.cat([e, s[g.dst] + s[g.src], s[g.dst] * s[g.src]], -1)))

        s = h[:, : self.scalars]
        dx = self.out_pos(h) @ self.cartesian_from_1o.to(h.dtype)
        x = x + dx
        x = x - g.centre(x)[g.node_graph] + com[g.node_graph]
        r_out = (x[g.dst] - x[g.src]).pow(2).sum(-1).add(_DIST_EPS).sqrt()
        si, sj = s[g.dst], s[g.src]
        pair = torch.cat([e + e[g.reverse], si + sj, si * sj, gaussian_rbf(r_out, self.num_rbf, self.max_radius)], -1)
        return GraphState(x=g.dense_nodes(self.out_x(s)), e=g.dense_edges(self.out_e(pair)), pos=g.dense_nodes(x),
                          mask=state.mask)

    def extra_repr(self) -> str:
        return (f"node_dim={self.node_dim}, edge_dim={self.edge_dim}, node_out={self.node_out}, "
                f"edge_out={self.edge_out}, cond_dim={self.cond_dim}, max_nodes={self.max_nodes}, "
                f"irreps_hidden={self.irreps_hidden}, irreps_sh={self.irreps_sh}")
