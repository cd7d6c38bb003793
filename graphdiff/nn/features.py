"""Extra structural features of dense, padded graph batches: cycle counts, spectral features, random-walk features.

Discrete graph denoisers (DiGress, DeFoG) feed the transformer structural features of the *noisy* graph, because a
message-passing or attention network cannot count cycles or see connectivity on its own. Everything here works on a
dense 0/1 adjacency ``adj [B, N, N]`` and a bool node mask ``mask [B, N]``, batched, without Python loops over the
graphs. Pairs touching padded slots and the diagonal of ``adj`` are ignored (zeroed first), so padded slots never
influence real ones, and every output is zero at padded slots.

Features are computed without gradients (they are functions of a discrete graph). Cycle counts and spectra are
computed in float64 internally (exact integer arithmetic for the counts, stable eigenvalues) and returned in the
dtype of ``adj`` (float32 for a bool ``adj``). Autocast (``train.amp``) is switched off inside them: bf16
products would round the counts (the 5- and 6-cycle counts of K_40 come out wrong) and the walk probabilities.
"""

from __future__ import annotations


import functools
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from ..checks import suggest
from ..errors import ConfigError, SchemaError
from ..state import pair_mask

__all__ = ["cycle_counts", "cycle_features", "spectral_features", "rrwp_features", "ExtraFeatures", "FEATURE_KINDS"]

FEATURE_KINDS = ("cycles", "spectral", "rrwp")
CYCLE_LENGTHS = (3, 4, 5, 6)
CYCLE_SCALE = 10.0  # DiGress divides cycle counts by 10 and clamps at 1


def _out_dtype(adj: Tensor) -> torch.dtype:
    return adj.dtype if torch.is_floating_point(adj) else torch.float32


def _check(adj: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    if adj.dim() != 3 or mask.dim() != 2 or adj.shape != (*mask.shape, mask.shape[-1]):
        raise SchemaError(
            f"extra features want adj [B,N,N] and mask [B,N]; got adj {tuple(adj.shape)}, mask {tuple(mask.shape)}"
        )
    return adj, mask.bool()


def _clean(adj: Tensor, mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``adj`` as 0/1 in ``dtype``, zero on the diagonal and on pairs touching padded slots."""
    a = (adj != 0) if adj.dtype == torch.bool else (adj > 0.5)
    return (a & pair_mask(mask)).to(dtype)


def _full_precision(fn: Callable) -> Callable:
    """Run ``fn(adj, mask, ...)`` with autocast off on ``adj``'s device (bf16 matrix products are not exact)."""

    @functools.wraps(fn)
    def wrapper(adj: Tensor, *args, **kwargs):
        with torch.autocast(adj.device.type, enabled=False):
            return fn(adj, *args, **kwargs)

    return wrapper


def _mv(m: Tensor, v: Tensor) -> Tensor:
    """Batched matrix-vector product ``[B, N, N] x [B, N] -> [B, N]``."""
    return (m @ v.unsqueeze(-1)).squeeze(-1)


# ---- cycles -----------------------------------------------------------------------------------------------------


# Paper: Vignac et al. 2023, DiGress, Sec. 4 (structural features); cycle counting after Alon, Yuster & Zwick 1997.
@torch.no_grad()
@_full_precision
def cycle_counts(adj: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Exact numbers of simple cycles of length 3, 4, 5 and 6, per node and per graph.

    ``(A^k)_ii`` counts closed walks of length ``k`` at node ``i``; each ``k``-cycle through ``i`` gives two of
    them (one per direction) and the rest are degenerate walks that revisit a node. The degenerate ones are removed
    by Moebius inversion over the ways positions of the walk can coincide: every coincidence pattern is a small
    rooted graph (a quotient of ``C_k``) whose rooted homomorphism count is a matrix expression, e.g. for ``k = 4``
    ``2 c4(i) = (A^4)_ii - d_i^2 - (A d)_i + d_i``, for ``k = 5``
    ``2 c5(i) = (A^5)_ii + 5 t_i - 2 ((A o A^2) d)_i - (A t)_i - 2 d_i t_i`` with ``t = diag(A^3)``, and 18 terms
    for ``k = 6`` (see the source). All quotients of ``C_k``, ``k <= 6``, have treewidth 2, so three batched
    matrix products (``A^2``, ``A^3``, ``A (A o A^2)``) suffice; node counts are exact for every ``k`` here,
    and graph counts are ``sum_i c_k(i) / k``. The matrix products run in float32 when that is exact (maximum degree
    below 4096 and ``torch.get_float32_matmul_precision() == "highest"``), the rest in float64.

    Args:
        adj: ``[B, N, N]`` adjacency; entries ``> 0.5`` (or ``True``) are edges, the diagonal and pairs touching
            padded slots are ignored. Symmetric (undirected) graphs are assumed.
        mask: ``[B, N]`` bool, real nodes.

    Returns:
        ``(node [B, N, 4], graph [B, 4])``: the number of 3-, 4-, 5- and 6-cycles through each node (zero at
        padded slots) and in each graph, as integers stored in the dtype of ``adj`` (exact below ``2**24`` in
        float32).
    """
    adj, mask = _check(adj, mask)
    a = _clean(adj, mask, torch.float64)
    d = a.sum(-1)
    # Products of nonnegative integer matrices are exact in float32 while every partial sum stays below 2**24;
    # the entries of A^2, A^3 and A (A o A^2) are at most max_degree^2, so float32 (no TF32/bf16) is exact below
    # a maximum degree of 4096. Everything else runs in float64.
    dmax = float(d.amax()) if d.numel() else 0.0
    mm = torch.float32 if dmax < 4096 and torch.get_float32_matmul_precision() == "highest" else torch.float64
    a_mm = a.to(mm)
    a2_mm = a_mm @ a_mm
    a2 = a2_mm.double()
    a3 = (a2_mm @ a_mm).double()
    aa2 = a * a2  # (A o A^2)_ij = A_ij * (number of common neighbours)
    t = aa2.sum(-1)  # diag(A^3): twice the triangles at each node
    a4d = (a2 * a2).sum(-1)  # diag(A^4), A symmetric
    a5d = (a2 * a3).sum(-1)  # diag(A^5)
    a6d = (a3 * a3).sum(-1)  # diag(A^6)
    ad = _mv(a, d)
    c3 = t / 2
    c4 = (a4d - d * d - ad + d) / 2
    c5 = (a5d + 5 * t - 2 * _mv(aa2, d) - _mv(a, t) - 2 * d * t) / 2
    # k = 6: rooted homomorphism counts of the 17 coincidence patterns with nonzero Moebius weight, plus A^6
    c6 = (
        a6d
        + 4 * d  # single edge (walk i-a-i-a-i-a-i)
        - 6 * ad  # path of 2 edges, root at an end
        - 6 * d * d  # path of 2 edges, root in the middle
        + 6 * a4d  # 4-cycle
        - 4 * t  # triangle
        + 3 * ((a_mm @ aa2.to(mm)).double() * a).sum(-1)  # diamond, root on a degree-2 vertex
        + 2 * _mv(a, d * d)  # 3-star, root at a leaf
        + 2 * d * ad  # path of 3 edges, root inside
        - 2 * _mv(a * a3, d)  # 4-cycle with a pendant at a neighbour of the root
        + _mv(a, ad)  # path of 3 edges, root at an end
        + 6 * (aa2 * a2).sum(-1)  # diamond, root on a degree-3 vertex
        + 2 * d**3  # 3-star, root at the centre
        - _mv(a2 * a2, d)  # 4-cycle with a pendant opposite the root
        - 2 * _mv(aa2, t)  # two triangles sharing a vertex, root elsewhere
        - _mv(a, a4d)  # root pendant on a 4-cycle
        - 2 * d * a4d  # 4-cycle with a pendant at the root
        - t * t  # two triangles sharing the root
    ) / 2
    node = torch.stack([c3, c4, c5, c6], -1).round()
    node = node * mask.unsqueeze(-1).to(node.dtype)
    lengths = torch.tensor(CYCLE_LENGTHS, dtype=node.dtype, device=node.device)
    graph = (node.sum(1) / lengths).round()
    dt = _out_dtype(adj)
    return node.to(dt), graph.to(dt)


# Paper: Vignac et al. 2023, DiGress, Sec. 4 (structural features: cycle counts).
@torch.no_grad()
def cycle_features(adj: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Scaled cycle counts as network inputs: :func:`cycle_counts` divided by 10 and clamped at 1, as DiGress does.

    Args:
        adj: ``[B, N, N]`` adjacency (see :func:`cycle_counts`).
        mask: ``[B, N]`` bool.

    Returns:
        ``(node [B, N, 4], graph [B, 4])`` for cycle lengths 3, 4, 5, 6, in ``[0, 1]`` (ten or more cycles read
        as 1), zero at padded slots.
    """
    node, graph = cycle_counts(adj, mask)
    return (node / CYCLE_SCALE).clamp(max=1.0), (graph / CYCLE_SCALE).clamp(max=1.0)


# ---- spectrum ---------------------------------------------------------------------------------------------------

_ZERO_TOL = 1e-7  # below the algebraic connectivity of any connected graph with < 6000 nodes (>= 4 / n^2)


# Paper: Vignac et al. 2023, DiGress, Sec. 4 (structural features: Laplacian spectrum).
@torch.no_grad()
@_full_precision
def spectral_features(adj: Tensor, mask: Tensor, k: int = 5) -> tuple[Tensor, Tensor]:
    """Connectivity and spectrum of the combinatorial Laplacian ``L = D - A`` of each graph's real nodes.

    The Laplacian is unnormalised. Padded slots get ``L_jj = 2 N`` and no edges, so their eigenvalues (``2 N``,
    above every real one, which is at most ``N``) sort after the real ones and their eigenvectors are unit vectors
    on padded slots: they create no spurious components. ``torch.linalg.eigh`` runs batched in float64; an
    eigenvalue below ``1e-7`` counts as zero.

    * Number of connected components = multiplicity of the eigenvalue 0.
    * Largest connected component: ``P = V_0 V_0^T`` (projector onto the null space) has ``P_ii = 1 / |C(i)|``
      whatever basis ``eigh`` picks, so the component size of every node is read off the diagonal; nodes of
      every component of the largest size are marked (ties mark all of them, which keeps the indicator
      permutation equivariant).
    * The first ``k`` nonzero eigenvalues, padded with zeros when a graph has fewer, and their eigenvectors.

    Sign and basis ambiguity: an eigenvector is defined up to its sign, and up to a rotation inside a repeated
    eigenvalue. Signs are canonicalised so that ``sum_i v_i^3 >= 0``; eigenvectors are therefore permutation
    equivariant when the eigenvalues involved are simple and their third moment is not zero (generic graphs), and
    arbitrary otherwise (e.g. an antisymmetric Fiedler vector of a path, or eigenvalues of two identical
    components).

    Args:
        adj: ``[B, N, N]`` adjacency (entries ``> 0.5`` are edges; diagonal and padded pairs ignored).
        mask: ``[B, N]`` bool.
        k: number of eigenvalues/eigenvectors.

    Returns:
        ``(node [B, N, 1 + k], graph [B, 1 + k])``: node = ``[largest-component indicator, k eigenvectors]``,
        graph = ``[number of components, k eigenvalues]``; zero at padded slots.
    """
    adj, mask = _check(adj, mask)
    if int(k) < 1:
        raise ConfigError(f"spectral_k must be >= 1, got {k}")
    b, n = mask.shape
    dt = _out_dtype(adj)
    if n == 0:
        return adj.new_zeros(b, 0, 1 + k, dtype=dt), adj.new_zeros(b, 1 + k, dtype=dt)
    a = _clean(adj, mask, torch.float64)
    lap = torch.diag_embed(a.sum(-1) + (~mask).to(a.dtype) * (2.0 * n)) - a
    evals, evecs = torch.linalg.eigh(lap)
    n_real = mask.sum(1)
    pos = torch.arange(n, device=mask.device)
    zero = (evals < _ZERO_TOL) & (pos < n_real.unsqueeze(1))  # [B, N]
    n_comp = zero.sum(1)
    # component sizes from the null-space projector's diagonal
    p_diag = (evecs.pow(2) * zero.unsqueeze(1).to(evecs.dtype)).sum(-1)  # [B, N]
    size = torch.where(mask, 1.0 / p_diag.clamp(min=1e-12), torch.zeros_like(p_diag)).round()
    lcc = (size >= size.amax(1, keepdim=True) - 0.5) & mask
    # first k eigenpairs after the zero eigenvalues
    idx = n_comp.unsqueeze(1) + torch.arange(k, device=mask.device)  # [B, k]
    valid = idx < n_real.unsqueeze(1)
    idx = idx.clamp(max=n - 1)
    vals = evals.gather(1, idx) * valid.to(evals.dtype)
    vecs = evecs.gather(2, idx.unsqueeze(1).expand(b, n, k))
    vecs = vecs * (valid.unsqueeze(1) & mask.unsqueeze(2)).to(vecs.dtype)
    sign = torch.where(vecs.pow(3).sum(1, keepdim=True) < 0, -1.0, 1.0).to(vecs.dtype)
    vecs = vecs * sign
    node = torch.cat([lcc.unsqueeze(-1).to(vecs.dtype), vecs], -1)
    graph = torch.cat([n_comp.unsqueeze(-1).to(vals.dtype), vals], -1)
    return node.to(dt), graph.to(dt)


# ---- random walks -----------------------------------------------------------------------------------------------


# Paper: Ma et al. 2023, GRIT, "Graph Inductive Biases in Transformers without Message Passing", Sec. 3.1 (RRWP).
@torch.no_grad()
@_full_precision
def rrwp_features(adj: Tensor, mask: Tensor, steps: int = 8) -> tuple[Tensor, Tensor]:
    """Relative random-walk probabilities: powers of the random-walk matrix ``M = D^-1 A``.

    Rows of isolated nodes of ``M`` are zero (``D^-1`` is taken as 0 there), so
    ``sum_j (M^k)_ij`` is 1 for a node with an edge and 0 for an isolated one. ``M`` is not symmetric:
    ``(M^k)_ij = (d_j / d_i) (M^k)_ji``.

    Args:
        adj: ``[B, N, N]`` adjacency (entries ``> 0.5`` are edges; diagonal and padded pairs ignored).
        mask: ``[B, N]`` bool.
        steps: largest walk length ``K``.

    Returns:
        ``(node [B, N, K], edge [B, N, N, K])``: node = ``(M^k)_ii`` (return probabilities), edge =
        ``(M^k)_ij``, for ``k = 1..K``; zero at padded slots and on pairs touching them.
    """
    adj, mask = _check(adj, mask)
    if int(steps) < 1:
        raise ConfigError(f"rrwp_steps must be >= 1, got {steps}")
    a = _clean(adj, mask, _out_dtype(adj))
    m = a / a.sum(-1, keepdim=True).clamp(min=1.0)
    powers = [m]
    for _ in range(steps - 1):
        powers.append(powers[-1] @ m)
    edge = torch.stack(powers, -1)
    node = torch.diagonal(edge, dim1=1, dim2=2).transpose(1, 2)
    return node, edge


# ---- everything together ----------------------------------------------------------------------------------------


# Paper: Vignac et al. 2023, DiGress, Sec. 4 (structural features), plus Ma et al. 2023, GRIT (RRWP).
class ExtraFeatures:
    """The selected structural features of a dense batch, concatenated into node, edge and graph tensors.

    A plain callable (no parameters, no ``nn.Module``). Sizes per kind: ``"cycles"`` gives 4 node and 4 graph
    features (:func:`cycle_features`), ``"spectral"`` ``1 + spectral_k`` node and ``1 + spectral_k`` graph features
    (:func:`spectral_features`), ``"rrwp"`` ``rrwp_steps`` node and ``rrwp_steps`` edge features
    (:func:`rrwp_features`). Features are concatenated in the order of ``kinds``.

    Args:
        kinds: any of ``"cycles"``, ``"spectral"``, ``"rrwp"`` (each at most once; empty gives empty tensors).
        spectral_k: eigenpairs of the spectral features.
        rrwp_steps: walk lengths of the RRWP features.

    Raises:
        ConfigError: an unknown or repeated kind, or a size below 1.

    Shapes:
        adj: ``[B, N, N]`` 0/1 adjacency (diagonal and padded pairs ignored).
        mask: ``[B, N]`` bool.
        output: ``(node [B, N, Fn], edge [B, N, N, Fe], graph [B, Fg])`` with ``(Fn, Fe, Fg) = self.dims``, zero
        at padded slots, in the dtype of ``adj``.
    """

    def __init__(self, kinds: Iterable[str] = FEATURE_KINDS, spectral_k: int = 5, rrwp_steps: int = 8):
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds or ())
        for kind in kinds:
            if kind not in FEATURE_KINDS:
                hint = suggest(kind, FEATURE_KINDS)
                raise ConfigError(f"extra_features: unknown kind {kind!r}, known: {', '.join(FEATURE_KINDS)}{hint}")
        if len(set(kinds)) != len(kinds):
            raise ConfigError(f"extra_features: a kind is repeated in {list(kinds)}")
        if int(spectral_k) < 1:
            raise ConfigError(f"spectral_k must be >= 1, got {spectral_k}")
        if int(rrwp_steps) < 1:
            raise ConfigError(f"rrwp_steps must be >= 1, got {rrwp_steps}")
        self.kinds, self.spectral_k, self.rrwp_steps = kinds, int(spectral_k), int(rrwp_steps)

    @property
    def dims(self) -> tuple[int, int, int]:
        """``(node, edge, graph)`` feature sizes."""
        per = {"cycles": (4, 0, 4), "spectral": (1 + self.spectral_k, 0, 1 + self.spectral_k),
               "rrwp": (self.rrwp_steps, self.rrwp_steps, 0)}
        sizes = [per[k] for k in self.kinds]
        return tuple(sum(s[i] for s in sizes) for i in range(3))  # type: ignore[return-value]

    def __call__(self, adj: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        adj, mask = _check(adj, mask)
        b, n = mask.shape
        dt = _out_dtype(adj)
        nodes, edges, graphs = [], [], []
        for kind in self.kinds:
            if kind == "cycles":
                x, y = cycle_features(adj, mask)
                nodes.append(x)
                graphs.append(y)
            elif kind == "spectral":
                x, y = spectral_features(adj, mask, self.spectral_k)
                nodes.append(x)
                graphs.append(y)
            else:
                x, e = rrwp_features(adj, mask, self.rrwp_steps)
                nodes.append(x)
                edges.append(e)
        zeros = lambda *shape: torch.zeros(*shape, dtype=dt, device=adj.device)  # noqa: E731
        node = torch.cat(nodes, -1) if nodes else zeros(b, n, 0)
        edge = torch.cat(edges, -1) if edges else zeros(b, n, n, 0)
        graph = torch.cat(graphs, -1) if graphs else zeros(b, 0)
        return node, edge, graph

    def __repr__(self) -> str:
        return f"ExtraFeatures(kinds={self.kinds!r}, spectral_k={self.spectral_k}, rrwp_steps={self.rrwp_steps})"
