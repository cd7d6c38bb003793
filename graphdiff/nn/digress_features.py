"""The input features of the DiGress / DeFoG authors' networks, as their released checkpoints were trained with.

Their graph transformers read the noisy one-hot graph concatenated with structural features of that graph
("extra features") and, for molecules, chemical ones ("domain features"). A checkpoint's weights only make sense
with the same inputs in the same order, so this module computes them as the authors' code defines them, which
is *not* what :mod:`graphdiff.nn.features` computes (that module is graphdiff's own choice for its own networks):

* cycles: ``x`` = closed-walk formulas for 3-, 4- and 5-cycles through each node (3 columns; graphdiff has 4),
  ``y`` = graph counts of 3- to 6-cycles; all divided by 10 and clamped at 1. The authors' 5-cycle node formula
  ``(diag A^5 - 2 t o d - A t + t) / 2`` (``t = diag A^3``) is not the exact count (it is on graphs without
  triangles; on K4 it gives 6 per node where there is no 5-cycle, graphdiff's
  :func:`~graphdiff.nn.features.cycle_counts` gives 0; the 5-cycle graph count inherits it), and it is kept
  here because the weights were trained on it; the 3- and 4-cycle node counts and the 3-, 4- and 6-cycle graph
  counts agree with graphdiff's exact ones (``tests/convert/test_import_digress.py`` checks both statements).
* eigen (``"eigenvalues"``, ``"all"``): the combinatorial Laplacian of the real nodes, padded slots given
  ``L_jj = 2 N``; eigenvalues divided by the node count (graphdiff: not divided); the number of components
  (eigenvalues below 1e-5), the first 5 nonzero eigenvalues (padded with 2 when a graph has fewer); for ``"all"``
  also a node indicator of *not* being in the largest component (graphdiff: of being in it) read as the nodes
  whose first eigenvector entry, rounded to 3 decimals, differs from its most common value, and the first 2
  eigenvectors after the zero eigenvalues (graphdiff: 5, sign-canonicalised; here the sign ``eigh`` returns, as
  the authors had it, so these two columns are defined up to sign only).
* RRWP (DeFoG): ``[I, M, ..., M^(K-1)]`` with ``M = D^-1 A`` (graphdiff's :func:`~graphdiff.nn.features.rrwp_features`
  starts at ``M``), on the edges and their diagonal on the nodes.
* molecules: per node ``charge = argmax(x o valencies) - valence`` and ``valence = sum_j argmax(e_ij o orders)``
  with bond orders ``[0, 1, 2, 3, 1.5]``: both are category *indices*, not chemical valences (an aromatic bond
  counts 4, the expected valence is the atom's index), exactly as the authors' code computes them; per graph the
  summed atom weights over every node slot (padding counted as atom type 0) over the maximal weight.

Known departure: for the largest-component indicator the authors break a tie for the most common value with
torch.mode over random values placed at padded slots; here the most common value is taken over real nodes only,
ties going to the smallest value. The two agree whenever one value is the most common (every connected graph).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from ..state import pair_mask

__all__ = ["DiGressFeatures", "digress_cycles", "digress_eigen", "defog_rrwp", "molecular_features", "MODES"]

MODES = ("cycles", "eigenvalues", "all", "rrwp")
_EIG_ZERO = 1e-5
_ORDERS = (0.0, 1.0, 2.0, 3.0, 1.5)


@torch.no_grad()
def digress_cycles(adj: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The authors' cycle features: ``(x [B, N, 3], y [B, 4])``, divided by 10 and clamped at 1.

    Args:
        adj: ``[B, N, N]`` 0/1 float adjacency, zero on the diagonal and on padded pairs.
        mask: ``[B, N]`` bool.
    """
    a = adj.to(torch.float64)
    d = a.sum(-1)
    a2 = a @ a
    a3 = a2 @ a
    a4 = a3 @ a
    a5 = a4 @ a
    a6 = a5 @ a

    def diag(m: Tensor) -> Tensor:
        return torch.diagonal(m, dim1=-2, dim2=-1)

    t = diag(a3)
    c3 = t / 2
    c4 = (diag(a4) - d * (d - 1) - (a @ d.unsqueeze(-1)).squeeze(-1)) / 2
    c5 = (diag(a5) - 2 * t * d - (a @ t.unsqueeze(-1)).squeeze(-1) + t) / 2
    d2 = diag(a2)
    c6 = (diag(a6).sum(-1) - 3 * t.pow(2).sum(-1) + 9 * (a * a2.pow(2)).sum((-2, -1))
          - 6 * (d2 * diag(a4)).sum(-1) + 6 * diag(a4).sum(-1) - 4 * t.sum(-1) + 4 * d2.pow(3).sum(-1)
          + 3 * a3.sum((-2, -1)) - 12 * d2.pow(2).sum(-1) + 4 * d2.sum(-1)) / 12
    x = torch.stack([c3, c4, c5], -1) * mask.unsqueeze(-1).to(a.dtype)
    y = torch.stack([2 * c3.sum(-1) / 6, 2 * c4.sum(-1) / 8, 2 * c5.sum(-1) / 10, c6], -1)
    return (x / 10).clamp(max=1.0).to(adj.dtype), (y / 10).clamp(max=1.0).to(adj.dtype)


def _most_common(v: Tensor, mask: Tensor) -> Tensor:
    """Per row, the most frequent value of ``v`` over the entries selected by ``mask`` (ties: the smallest)."""
    same = (v.unsqueeze(-1) == v.unsqueeze(-2)) & mask.unsqueeze(-1) & mask.unsqueeze(-2)
    count = same.sum(-1).masked_fill(~mask, -1)
    best = count.amax(-1, keepdim=True)
    big = torch.finfo(v.dtype).max
    return torch.where((count == best) & mask, v, torch.full_like(v, big)).amin(-1)


@torch.no_grad()
def digress_eigen(adj: Tensor, mask: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """The authors' Laplacian features.

    Returns:
        ``mode="eigenvalues"``: ``(x [B, N, 0], y [B, 6])``; ``mode="all"``: ``(x [B, N, 3], y [B, 6])`` with
        ``x = [not-in-largest-component, 2 eigenvectors]`` and ``y = [components, 5 eigenvalues / n]``.
    """
    b, n = mask.shape
    a = adj.to(torch.float64)
    lap = torch.diag_embed(a.sum(-1)) - a
    pad = (~mask).to(a.dtype)
    lap = lap + torch.diag_embed(pad * 2.0 * n)
    evals, evecs = torch.linalg.eigh(lap)
    evals = evals / mask.sum(1, keepdim=True).clamp(min=1).to(a.dtype)
    n_comp = (evals < _EIG_ZERO).sum(-1)
    k = 5
    extend = max(int(n_comp.max()) + k - n, 0) if n else k
    ext = torch.cat([evals, torch.full((b, extend), 2.0, dtype=a.dtype, device=a.device)], 1)
    vals = ext.gather(1, n_comp.unsqueeze(1) + torch.arange(k, device=a.device))
    y = torch.cat([n_comp.unsqueeze(-1).to(a.dtype), vals], -1).to(adj.dtype)
    if mode == "eigenvalues":
        return adj.new_zeros(b, n, 0), y
    m = mask.to(a.dtype)
    evecs = evecs * m.unsqueeze(2) * m.unsqueeze(1)
    first = torch.round(evecs[:, :, 0], decimals=3) * m if n else evecs.new_zeros(b, 0)
    common = _most_common(first, mask) if n else first.new_zeros(b)
    not_lcc = ((first != common.unsqueeze(1)) & mask).to(a.dtype).unsqueeze(-1)
    kv = 2
    extend = max(int(n_comp.max()) + kv - n, 0) if n else kv
    vecs = torch.cat([evecs, evecs.new_zeros(b, n, extend)], 2)
    idx = (n_comp.view(b, 1, 1) + torch.arange(kv, device=a.device).view(1, 1, kv)).expand(b, n, kv)
    vecs = vecs.gather(2, idx) * m.unsqueeze(2)
    return torch.cat([not_lcc, vecs], -1).to(adj.dtype), y


@torch.no_grad()
def defog_rrwp(adj: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """DeFoG's random-walk features ``[I, M, ..., M^(steps-1)]``, ``M = D^-1 A`` (isolated rows zero).

    Returns:
        ``(x [B, N, steps], e [B, N, N, steps])``, ``x`` the diagonal of ``e``.
    """
    deg = adj.sum(-1, keepdim=True)
    m = torch.where(deg > 0, adj / deg.clamp(min=1e-30), torch.zeros_like(adj))
    powers = [torch.eye(adj.shape[-1], dtype=adj.dtype, device=adj.device).expand_as(adj)]
    for _ in range(int(steps) - 1):
        powers.append(powers[-1] @ m)
    e = torch.stack(powers, -1)
    return torch.diagonal(e, dim1=1, dim2=2).transpose(1, 2), e


def molecular_features(x: Tensor, e: Tensor, valencies, atom_weights, max_weight: float) -> tuple[Tensor, Tensor]:
    """The authors' domain features of a noisy molecule: ``(x [B, N, 2] = [charge, valence], y [B, 1])``.

    Args:
        x: ``[B, N, Kx]`` one-hot atoms (zero at padded slots).
        e: ``[B, N, N, Ke]`` one-hot bonds, ``Ke`` 4 or 5 (``none, single, double, triple[, aromatic]``).
        valencies: ``Kx`` numbers; atom_weights: ``Kx`` numbers; max_weight: the normaliser of the weight.
    """
    orders = torch.tensor(_ORDERS[: e.shape[-1]], dtype=e.dtype, device=e.device)
    valence = (e * orders).argmax(-1).sum(-1).to(x.dtype)
    val = torch.tensor([float(v) for v in valencies], dtype=x.dtype, device=x.device)
    charge = (x * val).argmax(-1).to(x.dtype) - valence
    w = torch.tensor([float(v) for v in atom_weights], dtype=x.dtype, device=x.device)
    weight = w[x.argmax(-1)].sum(-1, keepdim=True) / float(max_weight)
    return torch.stack([charge, valence], -1), weight


class DiGressFeatures:
    """The authors' extra (and domain) features of a noisy graph, in the order their network reads them.

    Args:
        mode: ``None`` (none), ``"cycles"``, ``"eigenvalues"``, ``"all"`` or ``"rrwp"`` (DeFoG).
        variant: ``"digress"`` or ``"defog"`` (DeFoG's ``"eigenvalues"`` mode reads no eigenvalues).
        max_nodes: the ``n / max_nodes`` normaliser (the authors' ``max_n_nodes``).
        rrwp_steps: walk lengths of ``"rrwp"``.
        molecular: ``None``, or ``{"valencies", "atom_weights", "max_weight"}`` for the domain features.

    Shapes:
        x: ``[B, N, Kx]``, e: ``[B, N, N, Ke]`` one-hot (channel 0 of ``e`` = no edge), mask ``[B, N]`` bool.
        output: ``(x [B, N, Fn], e [B, N, N, Fe], y [B, Fg])`` with ``(Fn, Fe, Fg) = self.dims``.
    """

    def __init__(self, mode: str | None, *, variant: str = "digress", max_nodes: int, rrwp_steps: int = 12,
                 molecular: dict | None = None):
        if mode is not None and mode not in MODES:
            raise ConfigError(f"digress extra_features must be null or one of {', '.join(MODES)}, got {mode!r}")
        if variant not in ("digress", "defog"):
            raise ConfigError(f"digress features variant must be 'digress' or 'defog', got {variant!r}")
        if mode == "rrwp" and int(rrwp_steps) < 1:
            raise ConfigError(f"rrwp_steps must be >= 1, got {rrwp_steps}")
        if molecular is not None:
            missing = [k for k in ("valencies", "atom_weights", "max_weight") if k not in molecular]
            if missing:
                raise ConfigError(f"digress molecular features need {', '.join(missing)}")
            if len(molecular["valencies"]) != len(molecular["atom_weights"]):
                raise ConfigError("digress molecular features: valencies and atom_weights differ in length")
        self.mode, self.variant, self.max_nodes = mode, variant, int(max_nodes)
        self.rrwp_steps, self.molecular = int(rrwp_steps), molecular

    @property
    def dims(self) -> tuple[int, int, int]:
        """``(node, edge, graph)`` widths."""
        eig_y = 6 if self.variant == "digress" else 0
        per = {None: (0, 0, 0), "cycles": (3, 0, 5), "eigenvalues": (3, 0, 5 + eig_y), "all": (6, 0, 11),
               "rrwp": (self.rrwp_steps, self.rrwp_steps, 5)}[self.mode]
        if self.molecular is not None:
            per = (per[0] + 2, per[1], per[2] + 1)
        return per

    def __call__(self, x: Tensor, e: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n = mask.shape
        dt = x.dtype
        adj = e[..., 1:].sum(-1) * pair_mask(mask).to(e.dtype)
        nodes, edges, graphs = [], [], []
        if self.mode is not None:
            graphs.append(mask.sum(1, keepdim=True).to(dt) / self.max_nodes)
            cx, cy = digress_cycles(adj, mask)
            graphs.append(cy.to(dt))
            if self.mode == "rrwp":
                rx, re_ = defog_rrwp(adj.to(dt), self.rrwp_steps)
                nodes.append(rx)
                edges.append(re_)
            else:
                nodes.append(cx.to(dt))
            if self.mode == "all" or (self.mode == "eigenvalues" and self.variant == "digress"):
                ex, ey = digress_eigen(adj, mask, self.mode)
                nodes.append(ex.to(dt))
                graphs.append(ey.to(dt))
        if self.molecular is not None:
            mx, my = molecular_features(x, e, self.molecular["valencies"], self.molecular["atom_weights"],
                                        self.molecular["max_weight"])
            nodes.append(mx)
            graphs.append(my)
        node = torch.cat(nodes, -1) if nodes else x.new_zeros(b, n, 0)
        edge = torch.cat(edges, -1) if edges else x.new_zeros(b, n, n, 0)
        graph = torch.cat(graphs, -1) if graphs else x.new_zeros(b, 0)
        return node, edge, graph

    def __repr__(self) -> str:
        return (f"DiGressFeatures(mode={self.mode!r}, variant={self.variant!r}, max_nodes={self.max_nodes}, "
                f"rrwp_steps={self.rrwp_steps}, molecular={self.molecular is not None})")
