"""Per-node graphlet orbit counts for connected graphlets on 2 to 4 nodes, in ORCA's numbering.

Graph generative model papers (GraphRNN, GRAN, GDSS, SPECTRE, DiGress) compare the distribution of these counts
between generated and reference graphs. This module computes them itself, with sparse matrix algebra, instead of
calling the ORCA binary.

For every node ``x`` the count of orbit ``k`` is the number of *induced* subgraphs isomorphic to the orbit's graphlet
in which ``x`` plays the orbit's role:

====== ========================== ===========================================
orbit  graphlet                   role of the node
====== ========================== ===========================================
0      edge (2 nodes)             either end (the count is the degree)
1      path on 3 nodes            an end (degree 1 in the graphlet)
2      path on 3 nodes            the middle (degree 2)
3      triangle                   any node
4      path on 4 nodes            an end (degree 1)
5      path on 4 nodes            an inner node (degree 2)
6      star (claw) on 4 nodes     a leaf (degree 1)
7      star (claw) on 4 nodes     the centre (degree 3)
8      cycle on 4 nodes           any node
9      paw (tailed triangle)      the tail's end (degree 1)
10     paw (tailed triangle)      a triangle node without the tail (degree 2)
11     paw (tailed triangle)      the triangle node holding the tail (degree 3)
12     diamond (K4 minus an edge) an end of the missing edge (degree 2)
13     diamond (K4 minus an edge) an end of the diagonal (degree 3)
14     complete graph K4          any node
====== ========================== ===========================================

Reference: T. Hočevar and J. Demšar, "A combinatorial approach to graphlet counting", Bioinformatics 30(4), 2014.
"""

from __future__ import annotations

from itertools import combinations

import networkx as nx
import numpy as np
import scipy.sparse as sp

__all__ = ["NUM_ORBITS", "orbit_counts", "orbit_counts_bruteforce"]

NUM_ORBITS = 15


def _adjacency(g: nx.Graph) -> sp.csr_matrix:
    """The symmetric 0/1 adjacency matrix of ``g`` (rows in ``g.nodes`` order, self-loops dropped), int64 CSR."""
    if g.is_directed():
        raise TypeError("orbit counts are defined for undirected graphs; pass g.to_undirected()")
    n = g.number_of_nodes()
    index = {v: i for i, v in enumerate(g.nodes)}
    pairs = np.array([(index[u], index[v]) for u, v in g.edges() if u != v], dtype=np.int64).reshape(-1, 2)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    a = sp.csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(n, n))
    a.sum_duplicates()
    a.data[:] = 1  # multigraph edges collapse to one
    return a


def _rowsum(m) -> np.ndarray:
    """Row sums of a sparse matrix as a flat int64 array."""
    return np.asarray(m.sum(axis=1), dtype=np.int64).ravel()


def _diag_xmx(a: sp.csr_matrix, m: sp.csr_matrix) -> np.ndarray:
    """``diag(A M A)`` for symmetric 0/1 ``A``: for each ``x``, the sum of ``M[y, z]`` over ``y, z`` both adjacent
    to ``x``."""
    return _rowsum((a @ m).multiply(a))


def orbit_counts(g: nx.Graph) -> np.ndarray:
    """Count, for every node, its appearances in each of the 15 orbits of connected graphlets on 2 to 4 nodes.

    The counts are of induced subgraphs and use ORCA's orbit numbering (see the module docstring). The computation
    is vectorised: sparse adjacency products give, per node and per edge, counts of non-induced patterns, such as
    walks, common neighbours, triangles on an edge and edges among an edge's common neighbours; a fixed linear
    system, the one ORCA solves, turns them into induced orbit counts. Self-loops are ignored and parallel edges
    of a multigraph count once.

    Args:
        g: An undirected networkx graph. It may be empty, have isolated nodes or be disconnected.

    Returns:
        An int64 array of shape ``[g.number_of_nodes(), 15]`` whose row ``i`` holds the orbit counts of the ``i``-th
        node of ``g.nodes``.

    Raises:
        TypeError: If ``g`` is directed.
    """
    a = _adjacency(g)
    n = a.shape[0]
    out = np.zeros((n, NUM_ORBITS), dtype=np.int64)
    if n == 0 or a.nnz == 0:
        return out

    deg = _rowsum(a)
    a2 = (a @ a).tocsr()  # a2[x, z] = number of common neighbours of x and z
    tri = a2.multiply(a).tocsr()  # tri[x, y] = triangles on edge xy (0 off the edges), same pattern as ``a``
    tri.sort_indices()
    a_sorted = a.copy()
    a_sorted.sort_indices()

    # Edge-level quantities on the ordered edges (x, y), aligned with the CSR layout of ``a``.
    ex = np.repeat(np.arange(n), np.diff(a_sorted.indptr))  # x of each ordered edge
    ey = a_sorted.indices  # y of each ordered edge
    t = np.asarray(tri[ex, ey], dtype=np.int64).ravel()  # triangles on the edge
    dx = deg[ex]
    dy = deg[ey]
    px = dx - 1 - t  # neighbours of x (other than y) not adjacent to y
    py = dy - 1 - t  # neighbours of y (other than x) not adjacent to x

    def edge_sum(values: np.ndarray) -> np.ndarray:
        """Sum a per-ordered-edge value over the edges leaving each node."""
        return np.bincount(ex, weights=values, minlength=n).round().astype(np.int64)

    def edge_matrix(values: np.ndarray) -> sp.csr_matrix:
        """A sparse matrix holding ``values[e]`` at ordered edge ``e``."""
        return sp.csr_matrix((values.astype(np.int64), (ex, ey)), shape=(n, n))

    # 2- and 3-node orbits.
    o3 = edge_sum(t) // 2
    out[:, 0] = deg
    out[:, 1] = edge_sum(dy - 1) - 2 * o3
    out[:, 2] = deg * (deg - 1) // 2 - o3
    out[:, 3] = o3

    # K4s through each node: for an edge xy, count the edges among its common neighbours; each K4 on x shows up on
    # its three edges at x.
    upper = ex < ey
    ux, uy = ex[upper], ey[upper]
    common = a_sorted[ux].multiply(a_sorted[uy]).tocsr()  # row e: common neighbours of edge e
    edges_in_common = _rowsum((common @ a).multiply(common)) // 2
    k4 = (np.bincount(ux, weights=edges_in_common, minlength=n)
          + np.bincount(uy, weights=edges_in_common, minlength=n)).round().astype(np.int64) // 3

    # Non-induced counts, each the sum of two or three induced orbit counts (names list the orbits they mix).
    f_14 = k4
    # triangle xyz (x fixed) with a fourth node adjacent to y and z
    f_12_14 = _diag_xmx(a, edge_matrix(t - 1)) // 2
    # triangle xyz with a fourth node adjacent to y (or z) but not to the other of the two;
    # edge_matrix(px)[y, z] = neighbours of y, other than z, not adjacent to z
    f_10_13 = _diag_xmx(a, edge_matrix(px))
    # triangle xyz with a fourth node adjacent to x and to y (or z)
    f_13_14 = edge_sum(t * (t - 1))
    # triangle xyz with a fourth node adjacent to x but not to y (or z)
    f_11_13 = edge_sum(t * px)
    # induced path y-x-z with a third neighbour of x not adjacent to y (or z)
    f_7_11 = edge_sum(px * (px - 1))
    # induced path y-x-z with a neighbour of y (or z) not adjacent to x
    f_5_8 = edge_sum(px * py)
    # induced path x-y-z with another neighbour of y adjacent to neither x nor z
    f_6_9 = edge_sum(py * (py - 1))
    # induced path x-y-z with a triangle on yz: sum of t[y, z] over z adjacent to y, z != x, z not adjacent to x
    f_9_12 = a @ edge_sum(t) - edge_sum(t) - _diag_xmx(a, tri)
    # induced path x-y-z with a neighbour of z that is not adjacent to y
    p_mat = edge_matrix(dy - 1 - t)  # p_mat[y, z] = neighbours of z, other than y, not adjacent to y
    f_4_8 = _rowsum(a @ p_mat) - edge_sum(px) - _diag_xmx(a, p_mat)
    # induced path x-y-z with another path x-w-z: pairs of common neighbours of non-adjacent x, z
    pairs = a2.multiply(a2) - a2
    f_8_12 = _rowsum(pairs) - _rowsum(pairs.multiply(a)) - np.asarray(pairs.diagonal(), dtype=np.int64)

    # Solve the triangular system for the induced counts.
    out[:, 14] = f_14
    out[:, 13] = (f_13_14 - 6 * f_14) // 2
    out[:, 12] = f_12_14 - 3 * f_14
    out[:, 11] = (f_11_13 - f_13_14 + 6 * f_14) // 2
    out[:, 10] = f_10_13 - f_13_14 + 6 * f_14
    out[:, 9] = (f_9_12 - 2 * f_12_14 + 6 * f_14) // 2
    out[:, 8] = (f_8_12 - 2 * f_12_14 + 6 * f_14) // 2
    out[:, 7] = (f_13_14 + f_7_11 - f_11_13 - 6 * f_14) // 6
    out[:, 6] = (2 * f_12_14 + f_6_9 - f_9_12 - 6 * f_14) // 2
    out[:, 5] = 2 * f_12_14 + f_5_8 - f_8_12 - 6 * f_14
    out[:, 4] = 2 * f_12_14 + f_4_8 - f_8_12 - 6 * f_14
    return out


# sorted degree sequence of a connected graphlet -> {degree within the graphlet: orbit}
_ROLES: dict[tuple[int, ...], dict[int, int]] = {
    (1, 1): {1: 0},
    (1, 1, 2): {1: 1, 2: 2},
    (2, 2, 2): {2: 3},
    (1, 1, 2, 2): {1: 4, 2: 5},
    (1, 1, 1, 3): {1: 6, 3: 7},
    (2, 2, 2, 2): {2: 8},
    (1, 2, 2, 3): {1: 9, 2: 10, 3: 11},
    (2, 2, 3, 3): {2: 12, 3: 13},
    (3, 3, 3, 3): {3: 14},
}


def orbit_counts_bruteforce(g: nx.Graph) -> np.ndarray:
    """Reference orbit counts by enumerating every node subset of size 2, 3 and 4.

    Each subset's induced subgraph is identified by its degree sequence (on at most 4 nodes this determines the
    graphlet and whether it is connected) and each of its nodes gets the orbit of its degree in that graphlet. The
    cost is ``O(n^4)``; use it to check :func:`orbit_counts` on small graphs.

    Args:
        g: An undirected networkx graph.

    Returns:
        An int64 array of shape ``[g.number_of_nodes(), 15]``, rows in ``g.nodes`` order, equal to
        ``orbit_counts(g)``.

    Raises:
        TypeError: If ``g`` is directed.
    """
    if g.is_directed():
        raise TypeError("orbit counts are defined for undirected graphs; pass g.to_undirected()")
    nodes = list(g.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    adj = [set() for _ in nodes]
    for u, v in g.edges():
        if u != v:
            adj[index[u]].add(index[v])
            adj[index[v]].add(index[u])
    out = np.zeros((len(nodes), NUM_ORBITS), dtype=np.int64)
    for k in (2, 3, 4):
        for subset in combinations(range(len(nodes)), k):
            degrees = [sum(1 for w in subset if w in adj[v]) for v in subset]
            roles = _ROLES.get(tuple(sorted(degrees)))
            if roles is None:  # disconnected
                continue
            for v, d in zip(subset, degrees):
                out[v, roles[d]] += 1
    return out
