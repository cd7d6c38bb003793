"""SBM validity: fit a stochastic block model by minimum description length, then the SPECTRE/DiGress Wald
test on the fitted intra/inter edge probabilities.

graph-tool (whose ``minimize_blockmodel_dl`` the published test calls) cannot be installed here; this module
implements the same description-length objective and searches partitions itself (see :data:`SBM_FIT_METHOD`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import networkx as nx
import numpy as np
from scipy.special import gammaln
from scipy.stats import chi2

# ---- stochastic block model fit (stand-in for graph-tool minimize_blockmodel_dl) -------------------
SBM_FIT_METHOD = (
    "minimum description length of the microcanonical degree-corrected SBM (Peixoto 2017, the objective of "
    "graph-tool minimize_blockmodel_dl; uniform edge-count prior, 'distributed' degree prior, exact integer-"
    "partition counts), evaluated on the graph as a directed graph with both edge directions like DiGress's "
    "gt.Graph(); partitions proposed by spectral clustering of the normalised adjacency (k = 1..8, k-means, "
    "seed 0) and Louvain (networkx, seed 0), each refined by greedy single-node moves and block merges that "
    "lower the description length; the partition of least description length is kept"
)

_LOGQ_CACHE: dict[str, np.ndarray] = {}
_LOGQ_MAX_ENTRIES = 20_000_000


def _log_q_table(n_max: int, m_max: int) -> np.ndarray:
    """``log q(m, n)``, the number of partitions of the integer ``m`` into at most ``n`` parts, for
    ``0 <= n <= n_max`` and ``0 <= m <= m_max`` (exact, in log space: ``q(m, n) = sum_j q(m - j n, n - 1)``)."""
    table = _LOGQ_CACHE.get("q")
    if table is not None and table.shape[0] > n_max and table.shape[1] > m_max:
        return table
    if table is not None:
        grown = (max(n_max, table.shape[0] - 1), max(m_max, table.shape[1] - 1))
        if (grown[0] + 1) * (grown[1] + 1) <= _LOGQ_MAX_ENTRIES:
            n_max, m_max = grown
    cols = m_max + 1
    table = np.full((n_max + 1, cols), -np.inf)
    table[0, 0] = 0.0
    for n in range(1, n_max + 1):
        rows = -(-cols // n)
        prev = np.full(rows * n, -np.inf)
        prev[:cols] = table[n - 1]
        table[n] = np.logaddexp.accumulate(prev.reshape(rows, n), axis=0).reshape(-1)[:cols]
    _LOGQ_CACHE["q"] = table
    return table


def _log_q_approx(m: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Asymptotic ``log q(m, n)`` (graph-tool ``log_q_approx``), used only when the exact table would be huge."""
    m = np.asarray(m, dtype=float)
    n = np.asarray(n, dtype=float)
    out = np.zeros(np.broadcast(m, n).shape)
    m, n = np.broadcast_to(m, out.shape), np.broadcast_to(n, out.shape)
    pos = (m > 0) & (n > 0)
    c = math.pi * math.sqrt(2.0 / 3.0)
    with np.errstate(all="ignore"):
        small = gammaln(m) - gammaln(n) - gammaln(m - n + 1) - gammaln(n + 1)
        big = c * np.sqrt(m) - np.log(4 * math.sqrt(3) * m)
        x = n / np.sqrt(m) - np.log(m) / c
        big = np.where(n < m, big - (2 / c) * np.exp(-c * x / 2), big)
    use_small = n < m ** 0.25
    out[pos] = np.where(use_small, small, big)[pos]
    out[(m > 0) & (n <= 0)] = -np.inf
    return out


class _SBMState:
    """Block counts of one partition and the description length of the microcanonical degree-corrected SBM.

    ``directed=True`` (default) scores the graph the way DiGress hands it to graph-tool: a directed graph holding
    both directions of every edge (``gt.Graph()`` is directed). ``directed=False`` is the undirected model.
    """

    def __init__(self, adj: np.ndarray, directed: bool = True):
        self.adj = adj
        self.n_nodes = adj.shape[0]
        self.deg = adj.sum(1).astype(np.int64)
        self.n_edges = int(self.deg.sum()) // 2
        self.directed = directed
        self.kmax = int(self.deg.max()) if self.n_nodes else 0
        self.deg_onehot = np.zeros((self.n_nodes, self.kmax + 1))
        self.deg_onehot[np.arange(self.n_nodes), self.deg] = 1.0
        m_max = 2 * self.n_edges
        if (self.n_nodes + 1) * (m_max + 1) <= _LOGQ_MAX_ENTRIES:
            table = _log_q_table(self.n_nodes, m_max)
            self.log_q = lambda m, n: table[np.asarray(n, dtype=np.int64), np.asarray(m, dtype=np.int64)]
        else:
            self.log_q = _log_q_approx  # only for large graphs (never under strict SBM limits: n <= 200)
        self.neighbours = [np.flatnonzero(adj[i]) for i in range(self.n_nodes)]
        with np.errstate(divide="ignore"):
            self.b_table = self._b_terms(np.arange(self.n_nodes + 1))  # indexed by B, the non-empty blocks
        w = 2.0 if directed else 1.0
        self.const = -w * float(gammaln(self.deg + 1.0).sum()) + float(gammaln(self.n_nodes + 1.0)) \
            + math.log(max(self.n_nodes, 1))

    # -- counts
    def counts(self, labels: np.ndarray, k: int):
        z = np.zeros((self.n_nodes, k))
        z[np.arange(self.n_nodes), labels] = 1.0
        mat = z.T @ self.adj @ z  # M[r, s] = edges between r and s; M[r, r] = 2 x edges inside r
        return z.sum(0), mat, z.T @ self.deg_onehot

    # -- description length pieces that depend on B, the number of non-empty blocks
    def _b_terms(self, b):
        b = np.asarray(b, dtype=float)
        e = float(self.n_edges)
        if self.directed:
            edges = gammaln(b * b + 2 * e) - gammaln(2 * e + 1) - gammaln(b * b)
        else:
            pairs = b * (b + 1) / 2
            edges = gammaln(pairs + e) - gammaln(e + 1) - gammaln(pairs)
        n = float(self.n_nodes)
        part = gammaln(n) - gammaln(b) - gammaln(n - b + 1)  # log C(N-1, B-1)
        return edges + part

    def _pair_term(self, mat: np.ndarray) -> np.ndarray:
        """``-log`` of the block-pair factors of ``P(A | k, e, b)``, summed over the last two axes."""
        if self.directed:
            return -gammaln(mat + 1.0).sum((-2, -1))
        diag = np.diagonal(mat, axis1=-2, axis2=-1) / 2.0
        off = gammaln(mat + 1.0).sum((-2, -1)) - gammaln(2 * diag + 1.0).sum(-1)
        return -(off / 2.0 + (diag * math.log(2.0) + gammaln(diag + 1.0)).sum(-1))

    def dl(self, labels: np.ndarray) -> float:
        """Description length (nats) of the partition ``labels``."""
        labels = np.asarray(labels)
        k = int(labels.max()) + 1
        n, mat, eta = self.counts(labels, k)
        d = mat.sum(1)
        w = 2.0 if self.directed else 1.0
        b = int((n > 0).sum())
        s = w * gammaln(d + 1.0).sum() + self._pair_term(mat)
        s += -gammaln(eta + 1.0).sum() + w * self.log_q(d, n).sum()
        return float(s + self.b_table[b] + self.const)

    # -- greedy refinement
    def refine(self, labels: np.ndarray, max_sweeps: int, rng: np.random.Generator) -> np.ndarray:
        """Greedy single-node moves (best block for each node in turn) and block merges while they lower the
        description length; at most ``max_sweeps`` sweeps over the nodes per round."""
        labels = np.unique(labels, return_inverse=True)[1].astype(np.int64)
        while True:
            labels = self._sweeps(labels, max_sweeps, rng)
            merged = False
            while (better := self._best_merge(labels)) is not None:  # merge greedily, then sweep again
                labels, merged = better, True
            if not merged:
                return labels

    def _sweeps(self, labels, max_sweeps, rng):
        k = int(labels.max()) + 1
        if k < 2:
            return labels
        n, mat, eta = self.counts(labels, k)
        d = mat.sum(1)
        w = 2.0 if self.directed else 1.0
        eye = np.eye(k)
        for _ in range(max_sweeps):
            moved = 0
            for i in rng.permutation(self.n_nodes):
                r, ki = labels[i], self.deg[i]
                c = np.bincount(labels[self.neighbours[i]], minlength=k).astype(float)
                # remove i from r
                m0 = mat.copy()
                m0[r] -= c
                m0[:, r] -= c
                n0, d0 = n.copy(), d.copy()
                n0[r] -= 1
                d0[r] -= ki
                eta0 = eta[:, ki].copy()
                eta0[r] -= 1
                # candidate s: put i into block s (batched over s)
                mb = m0[None] + eye[:, :, None] * c[None, None, :] + c[None, :, None] * eye[:, None, :]
                nb = n0[None] + eye
                db = d0[None] + ki * eye
                etab = eta0[None] + eye
                s = w * gammaln(db + 1.0).sum(1) + self._pair_term(mb)
                s += -gammaln(etab + 1.0).sum(1) + w * self.log_q(db, nb).sum(1)
                s += self.b_table[(nb > 0).sum(1)]
                best = int(np.argmin(s))
                if best != r and s[best] < s[r] - 1e-9:
                    mat, n, d = mb[best], nb[best], db[best]
                    eta[:, ki] = etab[best]
                    labels[i] = best
                    moved += 1
            if not moved:
                break
        return np.unique(labels, return_inverse=True)[1].astype(np.int64)

    def _best_merge(self, labels):
        k = int(labels.max()) + 1
        best, best_dl = None, self.dl(labels) - 1e-9
        for r in range(k):
            for s in range(r + 1, k):
                cand = np.where(labels == s, r, labels)
                cand = np.unique(cand, return_inverse=True)[1]
                dl = self.dl(cand)
                if dl < best_dl:
                    best, best_dl = cand.astype(np.int64), dl
        return best


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, restarts: int = 4, iters: int = 50) -> np.ndarray:
    """Plain k-means with k-means++ seeding; best of ``restarts`` by inertia."""
    best, best_cost = None, np.inf
    for _restart in range(restarts):
        centres = [x[rng.integers(len(x))]]
        for _ in range(1, k):
            d2 = np.min(((x[:, None] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
            total = d2.sum()
            centres.append(x[rng.choice(len(x), p=d2 / total if total > 0 else None)])
        centres = np.array(centres)
        labels = None
        for _ in range(iters):
            new = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
            if labels is not None and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                if (labels == j).any():
                    centres[j] = x[labels == j].mean(0)
        cost = ((x - centres[labels]) ** 2).sum()
        if cost < best_cost:
            best, best_cost = labels.copy(), cost
    return best


def _spectral_partitions(adj: np.ndarray, k_max: int, rng: np.random.Generator) -> list[np.ndarray]:
    deg = adj.sum(1)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    norm = inv[:, None] * adj * inv[None, :]
    _, vecs = np.linalg.eigh(norm)
    out = []
    for k in range(2, min(k_max, adj.shape[0]) + 1):
        x = vecs[:, -k:]
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        out.append(_kmeans(x, k, rng))
    return out


def fit_sbm_partition(g: nx.Graph, *, refinement_steps: int = 100, k_max: int = 8, seed: int = 0,
                      directed: bool = True) -> tuple[np.ndarray, float]:
    """Fit a stochastic block model by minimum description length (see :data:`SBM_FIT_METHOD`).

    Args:
        g: an undirected graph (self-loops ignored).
        refinement_steps: at most this many greedy sweeps over the nodes per refinement round.
        k_max: largest number of blocks proposed by spectral clustering (refinement may merge blocks further).
        seed: seed of k-means, Louvain and the node order of the sweeps; the result is deterministic.
        directed: score the description length on the both-directions directed graph (DiGress/graph-tool's
            input) rather than the undirected model.

    Returns:
        ``(labels, dl)``: block label ``0..B-1`` of every node in ``g.nodes`` order, and the description length.
    """
    nodes = list(g.nodes)
    if not nodes:
        return np.zeros(0, dtype=np.int64), 0.0
    adj = nx.to_numpy_array(g, nodelist=nodes, weight=None)
    np.fill_diagonal(adj, 0.0)
    adj = (adj > 0).astype(float)
    state = _SBMState(adj, directed=directed)
    rng = np.random.default_rng(seed)
    starts = [np.zeros(len(nodes), dtype=np.int64)]
    if state.n_edges:
        starts += _spectral_partitions(adj, k_max, rng)
        index = {v: i for i, v in enumerate(nodes)}
        louvain = np.zeros(len(nodes), dtype=np.int64)
        for j, comm in enumerate(nx.community.louvain_communities(nx.Graph(g), weight=None, seed=seed)):
            louvain[[index[v] for v in comm]] = j
        starts.append(louvain)
    best, best_dl = None, np.inf
    seen = set()
    for start in starts:
        labels = state.refine(start, refinement_steps, rng)
        key = tuple(_canonical(labels))
        if key in seen:
            continue
        seen.add(key)
        dl = state.dl(labels)
        if dl < best_dl - 1e-9:
            best, best_dl = labels, dl
    return best, float(best_dl)


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel blocks by first appearance (so equal partitions compare equal)."""
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))
    return order[np.unique(labels, return_inverse=True)[1]]


def sbm_dl(g: nx.Graph, labels: Sequence[int], *, directed: bool = True) -> float:
    """Description length (nats) of the partition ``labels`` (``g.nodes`` order) under the model of
    :func:`fit_sbm_partition`."""
    adj = nx.to_numpy_array(g, weight=None)
    np.fill_diagonal(adj, 0.0)
    labels = np.unique(np.asarray(labels), return_inverse=True)[1]
    return _SBMState((adj > 0).astype(float), directed=directed).dl(labels)


def _wald_mean_p(adj: np.ndarray, labels: np.ndarray, p_intra: float, p_inter: float):
    """DiGress ``is_sbm_graph`` after the fit: block counts, per-block-pair Wald p-values, their mean."""
    k = int(labels.max()) + 1
    z = np.zeros((len(labels), k))
    z[np.arange(len(labels)), labels] = 1.0
    node_counts = z.sum(0)
    edge_counts = z.T @ adj @ z  # directed counts, as graph-tool's get_matrix() on the both-directions graph
    est_p_intra = np.diagonal(edge_counts) / (node_counts * (node_counts - 1) + 1e-6)
    est_p_inter = edge_counts / (np.outer(node_counts, node_counts) + 1e-6)
    np.fill_diagonal(est_p_inter, 0.0)
    # DiGress/SPECTRE divide by p_hat (1 - p_hat) + 1e-6 (no number-of-pairs factor): kept as published
    w_intra = (est_p_intra - p_intra) ** 2 / (est_p_intra * (1 - est_p_intra) + 1e-6)
    w = (est_p_inter - p_inter) ** 2 / (est_p_inter * (1 - est_p_inter) + 1e-6)
    np.fill_diagonal(w, w_intra)
    p = 1.0 - chi2.cdf(np.abs(w), 1)
    return node_counts, float(p.mean())


def sbm_p_value(g: nx.Graph, *, p_intra: float = 0.3, p_inter: float = 0.005, strict: bool = True,
                refinement_steps: int = 100, seed: int = 0) -> float:
    """Mean Wald p-value of the fitted block probabilities (0.0 when ``strict`` block constraints fail)."""
    return float(is_sbm_graph(g, p_intra=p_intra, p_inter=p_inter, strict=strict, refinement_steps=refinement_steps,
                              seed=seed, return_p=True))


def is_sbm_graph(g: nx.Graph, *, p_intra: float = 0.3, p_inter: float = 0.005, strict: bool = True,
                 refinement_steps: int = 100, seed: int = 0, return_p: bool = False):
    """SPECTRE/DiGress SBM validity: fit an SBM, then test its block probabilities against ``p_intra``/``p_inter``.

    Follows DiGress ``src/analysis/spectre_utils.py`` ``is_sbm_graph`` step by step, except the fit:

    1. Fit a block partition. The reference uses graph-tool ``minimize_blockmodel_dl`` then
       ``multiflip_mcmc_sweep(beta=inf)`` refinement (graph-tool is not installable here); this uses
       :func:`fit_sbm_partition`, which minimises the same description length (:data:`SBM_FIT_METHOD`).
    2. ``strict``: invalid unless there are 2..5 blocks, each of 20..40 nodes.
    3. ``p_hat`` of each block pair (intra: directed edge count / ``n_r (n_r - 1)``; inter: edge count /
       ``n_r n_s``); Wald statistic ``W = (p_hat - p)^2 / (p_hat (1 - p_hat) + 1e-6)`` against ``p_intra`` on the
       diagonal and ``p_inter`` off it (as published: no number-of-pairs factor in the variance); p-value
       ``1 - chi2.cdf(|W|, 1)``; mean over the ``B x B`` matrix (off-diagonal pairs counted twice).
    4. Valid when the mean p-value exceeds 0.9.

    ``refinement_steps`` bounds the greedy sweeps (DiGress passes 100 when it evaluates samples). Returns a bool
    (``strict=True``) or the mean p-value (``strict=False``; 0.0 for a graph that cannot be fitted);
    ``return_p=True`` always returns the mean p-value (0.0 when a strict constraint fails).
    """
    fail = 0.0 if (return_p or not strict) else False
    n = g.number_of_nodes()
    if n == 0 or g.number_of_edges() == 0:
        return fail
    if strict and not 40 <= n <= 200:  # 2..5 blocks of 20..40 nodes cannot cover the graph
        return fail
    labels, _ = fit_sbm_partition(g, refinement_steps=refinement_steps, seed=seed)
    adj = nx.to_numpy_array(g, weight=None)
    np.fill_diagonal(adj, 0.0)
    node_counts, p = _wald_mean_p((adj > 0).astype(float), labels, p_intra, p_inter)
    if strict and (len(node_counts) < 2 or len(node_counts) > 5 or node_counts.min() < 20
                   or node_counts.max() > 40):
        return fail
    if return_p or not strict:
        return p
    return bool(p > 0.9)
