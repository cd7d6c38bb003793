"""NSPDK MMD as GDSS computes it for molecules (own implementation of EDeN's ``vectorize``).

The Neighbourhood Subgraph Pairwise Distance Kernel (Costa & De Grave, ICML 2010) counts pairs of rooted
neighbourhood subgraphs of radius ``r`` whose roots are ``d`` apart. GDSS (``evaluation/mmd.py``) vectorises each
graph with EDeN ``vectorize(graphs, complexity=4, discrete=True)`` — i.e. ``r = d = 4`` (EDeN sets both to
``complexity``), ``nbits = 16`` — takes the linear kernel between the sparse feature vectors and reports
``MMD^2 = mean K(X,X) + mean K(Y,Y) - 2 mean K(X,Y)``. For a linear kernel that equals
``||mean(phi(X)) - mean(phi(Y))||^2``, which is what :func:`nspdk_mmd` computes (no n x m kernel matrix).

The feature map follows EDeN's algorithm step by step:

1. every edge becomes a vertex carrying the edge label (so bond orders enter the hashes); radii and distances are
   doubled on this expanded graph;
2. each vertex gets ``hlabel = hash(label) & bitmask + 1``; the neighbourhood of radius ``R`` of a root is hashed
   as the running hash of the sorted ``(hlabel, degree)`` hashes of the vertices at distance 0, 1, ..., R;
3. for every ordered pair of original nodes ``(v, u)`` at distance ``D <= 2d`` and every radius ``R <= 2r`` that
   both neighbourhoods reach, two features are counted in block ``(R/2, D/2)``: the pair
   ``hash(sorted(h_v[R], h_u[R]), R, D)`` and the "half" (context) feature ``hash(h_u[R], R, D)``;
4. each ``(R, D)`` block is scaled to unit norm, then the whole vector (feature indices ``1 .. 2^nbits``).

Labels: node attribute ``label`` (atom symbol) and edge attribute ``label`` (bond order as ``int``, aromatic
-> 1, as GDSS's ``mols_to_nx``). EDeN hashes string labels with Python's per-process randomised ``hash``; here a
string label is first mapped to a fixed integer code (blake2b), so results are reproducible across runs. Integer
labels are used as they are, which makes the vectors bit-identical to EDeN's for integer-labelled graphs (the test
suite checks this against the ``eden-kernel`` package when it is installed). A missing label counts as ``None``.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import DataError
from . import _parallel

NBITS = 16
RADIUS = 4
DISTANCE = 4
_M32 = 4294967295  # EDeN's _bitmask_ for the intermediate hashes
PARALLEL_MIN_GRAPHS = 2000  # graph_features uses a process pool from this many graphs on (when n_jobs > 1)


def label_code(label) -> int:
    """A run-independent integer stand-in for a node/edge label (ints are kept as they are)."""
    if isinstance(label, bool):
        return int(label)
    if isinstance(label, int):
        return label
    if isinstance(label, float) and label.is_integer():
        return int(label)
    if label is None:
        label = "\x00None"
    if isinstance(label, tuple):
        return hash(tuple(label_code(x) for x in label))
    if not isinstance(label, (str, bytes)):
        label = repr(label)
    data = label.encode("utf-8") if isinstance(label, str) else label
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 4


def nx_to_arrays(g, key_label: str = "label") -> tuple[list[int], list[tuple[int, int, int]]]:
    """``(node label codes, [(u, v, edge label code)])`` in networkx's node / edge iteration order (nodes renumbered
    0..n-1 in ``g.nodes`` order, which is what EDeN sees for graphs whose nodes are already 0..n-1)."""
    pos = {u: i for i, u in enumerate(g.nodes)}
    labels = [label_code(d.get(key_label)) for _, d in g.nodes(data=True)]
    edges = [(pos[u], pos[v], label_code(d.get(key_label))) for u, v, d in g.edges(data=True)]
    return labels, edges


def mol_to_arrays(mol) -> tuple[list[int], list[tuple[int, int, int]]]:
    """The arrays of GDSS's ``mols_to_nx(mol)`` (atom symbol, ``int(bond.GetBondTypeAsDouble())``) without building
    the networkx graph; the edge order is the one networkx would iterate."""
    n = mol.GetNumAtoms()
    labels = [label_code(a.GetSymbol()) for a in mol.GetAtoms()]
    nbrs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for b in mol.GetBonds():
        u, v = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        c = int(b.GetBondTypeAsDouble())
        nbrs[u].append((v, c))
        if v != u:
            nbrs[v].append((u, c))
    edges = [(u, v, c) for u in range(n) for v, c in nbrs[u] if v >= u]
    return labels, edges


def mol_to_nx(mol):
    """GDSS ``mols_to_nx`` for one molecule: node ``label`` = atom symbol, edge ``label`` = int bond order."""
    import networkx as nx

    g = nx.Graph()
    for a in mol.GetAtoms():
        g.add_node(a.GetIdx(), label=a.GetSymbol())
    for b in mol.GetBonds():
        g.add_edge(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), label=int(b.GetBondTypeAsDouble()))
    return g


def nspdk_features(labels: Sequence[int], edges: Iterable[tuple[int, int, int]], *, r: int = RADIUS,
                   d: int = DISTANCE, nbits: int = NBITS) -> dict[int, float]:
    """Normalised NSPDK feature vector ``{index: value}`` (indices in ``1 .. 2^nbits``) of one labelled graph given
    as label codes (see :func:`nx_to_arrays` / :func:`mol_to_arrays`). Raises :class:`DataError` for an empty graph."""
    n = len(labels)
    if n == 0:
        raise DataError("NSPDK: empty graph (no nodes)")
    bitmask = (1 << nbits) - 1
    # 1. edge -> vertex expansion (EDeN _edge_to_vertex_transform; self-loops are dropped)
    adj: list[list[int]] = [[] for _ in range(n)]
    hl = [(hash(c) & bitmask) + 1 for c in labels]
    for u, v, c in edges:
        if u == v:
            continue
        w = len(adj)
        adj.append([u, v])
        hl.append((hash(c) & bitmask) + 1)
        adj[u].append(w)
        adj[v].append(w)
    vh = [(hash((hl[x], len(adj[x]))) & _M32) + 1 for x in range(len(adj))]
    max_depth = 2 * max(r, d)
    # 2. breadth-first levels and neighbourhood hashes of every original node
    levels: list[dict[int, set[int]]] = []
    nh: list[list[int]] = []
    for root in range(n):
        dist = {root: 0}
        lev = {0: {root}}
        q = deque((root,))
        while q:
            x = q.popleft()
            dd = dist[x] + 1
            if dd <= max_depth:
                for y in adj[x]:
                    if y not in dist:
                        dist[y] = dd
                        q.append(y)
                        if dd in lev:
                            lev[dd].add(y)
                        else:
                            lev[dd] = {y}
        levels.append(lev)
        running = 0xAAAAAAAA
        hv = []
        for i, nodes in enumerate(lev.values()):
            item = (hash(tuple(sorted(vh[y] for y in nodes))) & _M32) + 1
            running ^= hash((running, item, i))
            hv.append((running & _M32) + 1)
        nh.append(hv)
    # 3. pair and half features per (radius, distance) block
    blocks: dict[tuple[int, int], dict[int, float]] = {}
    radii = range(0, 2 * r + 2, 2)
    for v in range(n):
        lev, hv = levels[v], nh[v]
        lv = len(hv)
        for dist2 in range(0, 2 * d + 2, 2):
            nodes = lev.get(dist2)
            if nodes is None:
                continue
            for u in nodes:
                hu = nh[u]
                lmin = min(lv, len(hu))
                for rad in radii:
                    if rad >= lmin:
                        break
                    a, b = hv[rad], hu[rad]
                    first, second = (a, b) if a < b else (b, a)
                    feat = (hash((first, second, rad, dist2)) & bitmask) + 1
                    half = (hash((b, rad, dist2)) & bitmask) + 1
                    blk = blocks.get((rad, dist2))
                    if blk is None:
                        blk = blocks[(rad, dist2)] = {}
                    blk[feat] = blk.get(feat, 0.0) + 1
                    blk[half] = blk.get(half, 0.0) + 1
    # 4. inner (per block) then global normalisation; a later block overwrites a colliding index, as in EDeN
    vec: dict[int, float] = {}
    for blk in blocks.values():
        norm = 0
        for c in blk.values():
            norm += c * c
        s = math.sqrt(norm)
        for fid, c in blk.items():
            vec[fid] = float(c) / s
    total = 0.0
    for val in vec.values():
        total += val * val
    s = math.sqrt(total)
    return {fid: val / s for fid, val in vec.items()}


def _mean_vector(feats: Sequence[dict[int, float]], weights: Sequence[float] | None, nbits: int) -> np.ndarray:
    size = (1 << nbits) + 1
    if not feats:
        raise DataError("NSPDK: no graphs")
    w = np.ones(len(feats)) if weights is None else np.asarray(weights, dtype=np.float64)
    parts = [compact_features(f) if isinstance(f, dict) else f for f in feats]
    idx = np.concatenate([p[0] for p in parts]).astype(np.int64)
    val = np.concatenate([p[1] for p in parts])
    rep = np.repeat(w, [len(p[0]) for p in parts])
    return np.bincount(idx, weights=val * rep, minlength=size) / w.sum()


def compact_features(f: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """A feature dict as ``(int32 indices, float64 values)``: about 12 bytes a feature instead of about 100, so
    large sets fit in memory (accepted wherever a feature dict is)."""
    return (np.fromiter(f.keys(), dtype=np.int32, count=len(f)), np.fromiter(f.values(), dtype=np.float64,
                                                                              count=len(f)))


def nspdk_mean(feats: Sequence[dict[int, float]], weights: Sequence[float] | None = None, *,
               nbits: int = NBITS) -> np.ndarray:
    """Mean feature vector (dense, ``2^nbits + 1`` entries) of a set of graphs; ``weights`` are multiplicities."""
    return _mean_vector(feats, weights, nbits)


def mmd_from_means(mean_x: np.ndarray, mean_y: np.ndarray) -> float:
    """``||mean_x - mean_y||^2`` = the linear-kernel MMD^2 of GDSS's ``compute_nspdk_mmd``."""
    diff = np.asarray(mean_x, dtype=np.float64) - np.asarray(mean_y, dtype=np.float64)
    return float(diff @ diff)


def _features_chunk(args):
    arrays, r, d, nbits = args
    return [nspdk_features(lab, edg, r=r, d=d, nbits=nbits) for lab, edg in arrays]


def graph_features(graphs: Sequence, *, r: int = RADIUS, d: int = DISTANCE, nbits: int = NBITS,
                   key_label: str = "label", n_jobs: int = 1) -> list[dict[int, float]]:
    """NSPDK feature dicts of networkx graphs or RDKit molecules (empty graphs raise :class:`DataError`)."""
    arrays = []
    for i, g in enumerate(graphs):
        lab, edg = nx_to_arrays(g, key_label) if hasattr(g, "nodes") else mol_to_arrays(g)
        if not lab:
            raise DataError(f"NSPDK: graph {i} is empty (no nodes)")
        arrays.append((lab, edg))
    if n_jobs <= 1 or len(arrays) < PARALLEL_MIN_GRAPHS:
        return _features_chunk((arrays, r, d, nbits))
    size = max(1, -(-len(arrays) // (4 * n_jobs)))
    chunks = [(arrays[i:i + size], r, d, nbits) for i in range(0, len(arrays), size)]
    with _parallel._pool(n_jobs) as pool:
        parts = pool.map(_features_chunk, chunks)
    return [f for p in parts for f in p]


def nspdk_mmd(graphs_x: Sequence, graphs_y: Sequence, *, r: int = RADIUS, d: int = DISTANCE, nbits: int = NBITS,
              key_label: str = "label", n_jobs: int = 1) -> float:
    """NSPDK MMD^2 between two sets of labelled graphs (networkx graphs or RDKit molecules), GDSS protocol.

    Empty graphs (0 nodes) are dropped, as GDSS's ``nspdk_stats`` does for the generated set; a set with no
    non-empty graph raises :class:`DataError`.
    """
    out = []
    for name, gs in (("first", graphs_x), ("second", graphs_y)):
        gs = [g for g in gs if (g.number_of_nodes() if hasattr(g, "number_of_nodes") else g.GetNumAtoms()) > 0]
        if not gs:
            raise DataError(f"NSPDK: the {name} set has no non-empty graph")
        feats = graph_features(gs, r=r, d=d, nbits=nbits, key_label=key_label, n_jobs=n_jobs)
        out.append(nspdk_mean(feats, nbits=nbits))
    return mmd_from_means(*out)
