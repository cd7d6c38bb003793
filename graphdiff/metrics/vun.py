"""Validity, uniqueness, novelty and V.U.N. for generic (unattributed or labelled) graphs.

Conventions (SPECTRE, Martinkus et al. 2022, as implemented in DiGress ``src/analysis/spectre_utils.py``
``eval_fraction_unique_non_isomorphic_valid``; reused by GruM, Cometh, DeFoG):

* **unique**: a generated graph is unique when it is not isomorphic to an *earlier* generated graph; the first
  member of every isomorphism class counts as unique, later copies do not. ``unique`` = number of isomorphism
  classes / number of generated graphs.
* **novel**: a generated graph is novel when it is isomorphic to no training graph (over all generated graphs,
  duplicates included).
* **V.U.N.**: fraction of *all* generated graphs that are valid, unique (first of its class) and novel.

Isomorphism is exact: graphs are bucketed by ``networkx.weisfeiler_lehman_graph_hash`` (3 iterations; a
necessary condition only) and ``networkx.is_isomorphic`` (after the ``faster_could_be_isomorphic`` degree
prefilter) decides inside a bucket, so a WL collision between non-isomorphic graphs never merges them.

Validity functions follow the SPECTRE/DiGress (planar, SBM, tree, grid) and GRAN (lobster) definitions. Every
validity function returns ``False`` for a graph without nodes.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence

import networkx as nx

from .sbm import SBM_FIT_METHOD, fit_sbm_partition, is_sbm_graph, sbm_dl, sbm_p_value

__all__ = [
    "DEFINITIONS", "SBM_FIT_METHOD", "VALIDITY", "fit_sbm_partition", "is_grid_graph", "is_lobster_graph",
    "is_planar_graph", "is_sbm_graph", "is_tree_graph", "isomorphism_classes", "novel_fraction", "sbm_dl",
    "sbm_p_value", "unique_fraction", "validity_for_dataset", "vun",
]

DEFINITIONS = {
    "valid": "fraction of generated graphs accepted by the validity function",
    "unique": "fraction of generated graphs not isomorphic to an earlier generated graph (the first member of each "
              "isomorphism class counts as unique) = number of isomorphism classes / number of generated graphs",
    "novel": "fraction of generated graphs isomorphic to no training graph",
    "unique_novel": "fraction of generated graphs that are unique and novel",
    "vun": "fraction of all generated graphs that are valid, unique among the generated graphs and novel w.r.t. "
           "the training graphs (SPECTRE/DiGress V.U.N.)",
    "isomorphism": "exact: Weisfeiler-Lehman hash buckets (3 iterations), networkx.is_isomorphic inside a bucket",
}


# ---- validity ----------------------------------------------------------------------------------------
def is_planar_graph(g: nx.Graph) -> bool:
    """Connected and planar (SPECTRE/DiGress ``is_planar_graph``)."""
    if g.number_of_nodes() == 0:
        return False
    return bool(nx.is_connected(g) and nx.check_planarity(g)[0])


def is_tree_graph(g: nx.Graph) -> bool:
    """A tree: connected with ``n - 1`` edges (``networkx.is_tree``; DiGress ``eval_acc_tree_graph``)."""
    if g.number_of_nodes() == 0:
        return False
    return bool(nx.is_tree(g))


def is_lobster_graph(g: nx.Graph) -> bool:
    """A lobster (GRAN/SPECTRE ``is_lobster_graph``): a tree that becomes a path (or at most one node) after its
    leaves are removed twice (lobster -> caterpillar -> path)."""
    if g.number_of_nodes() == 0 or not nx.is_tree(g):
        return False
    h = nx.Graph(g)
    for _ in range(2):
        h.remove_nodes_from([v for v, d in h.degree() if d == 1])
    n = h.number_of_nodes()
    degrees = [d for _, d in h.degree()]
    ones, twos = degrees.count(1), degrees.count(2)
    # the remaining tree is a path (2 ends, the rest of degree 2), a single node, or nothing
    return (ones == 2 and twos == n - 2) or (ones == 0 and twos == 0 and n <= 1)


def _grid_degree_counts(a: int, b: int) -> tuple[int, int, int, int]:
    """(#deg-1, #deg-2, #deg-3, #deg-4) nodes of ``grid_2d_graph(a, b)`` with ``a <= b``."""
    if a == 1:
        if b == 1:
            return 0, 0, 0, 0
        return 2, b - 2, 0, 0
    return 0, 4, 2 * (a - 2) + 2 * (b - 2), (a - 2) * (b - 2)


def is_grid_graph(g: nx.Graph, *, min_side: int = 2) -> bool:
    """Isomorphic to ``networkx.grid_2d_graph(a, b)`` for some ``a * b = n`` with ``min_side <= a <= b``.

    The degree counts of every candidate ``(a, b)`` are checked first, then exact isomorphism. DiGress
    ``is_grid_graph`` compares against all grids with sides 2..19; this version has no upper bound on the side
    (``min_side=1`` also accepts paths, which are ``1 x n`` grids).
    """
    n = g.number_of_nodes()
    if n == 0 or g.is_directed():
        return False
    degs = [d for _, d in g.degree()]
    counts = tuple(degs.count(k) for k in (1, 2, 3, 4))
    if sum(counts) != n:
        return False
    for a in range(max(1, min_side), math.isqrt(n) + 1):
        if n % a:
            continue
        b = n // a
        if g.number_of_edges() != a * (b - 1) + b * (a - 1) or counts != _grid_degree_counts(a, b):
            continue
        if nx.is_isomorphic(nx.Graph(g), nx.grid_2d_graph(a, b)):
            return True
    return False




# ---- uniqueness and novelty ----------------------------------------------------------------------------
def _matchers(node_attr, edge_attr):
    nm = nx.algorithms.isomorphism.categorical_node_match(node_attr, None) if node_attr else None
    em = nx.algorithms.isomorphism.categorical_edge_match(edge_attr, None) if edge_attr else None
    return nm, em


def _wl_hash(g, node_attr, edge_attr) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # networkx >= 3.5 notes that unlabelled hashes changed
        return nx.weisfeiler_lehman_graph_hash(g, node_attr=node_attr, edge_attr=edge_attr, iterations=3)


def _isomorphic(a, b, nm, em) -> bool:
    return nx.faster_could_be_isomorphic(a, b) and nx.is_isomorphic(a, b, node_match=nm, edge_match=em)


def isomorphism_classes(graphs: Sequence[nx.Graph], *, node_attr: str | None = None,
                        edge_attr: str | None = None) -> list[int]:
    """Isomorphism class of every graph, numbered by first appearance (``0, 1, ...``)."""
    nm, em = _matchers(node_attr, edge_attr)
    buckets: dict[str, list[int]] = {}
    cls: list[int] = []
    reps: list[nx.Graph] = []
    for g in graphs:
        bucket = buckets.setdefault(_wl_hash(g, node_attr, edge_attr), [])
        found = next((c for c in bucket if _isomorphic(g, reps[c], nm, em)), None)
        if found is None:
            found = len(reps)
            reps.append(g)
            bucket.append(found)
        cls.append(found)
    return cls


def _unique_flags(classes: list[int]) -> list[bool]:
    seen: set[int] = set()
    flags = []
    for c in classes:
        flags.append(c not in seen)
        seen.add(c)
    return flags


def _novel_flags(graphs, classes, train_graphs, node_attr, edge_attr) -> list[bool]:
    nm, em = _matchers(node_attr, edge_attr)
    train: dict[str, list[nx.Graph]] = {}
    for t in train_graphs:
        train.setdefault(_wl_hash(t, node_attr, edge_attr), []).append(t)
    by_class: dict[int, bool] = {}
    flags = []
    for g, c in zip(graphs, classes):
        if c not in by_class:
            by_class[c] = not any(_isomorphic(g, t, nm, em) for t in train.get(_wl_hash(g, node_attr, edge_attr), ()))
        flags.append(by_class[c])
    return flags


def unique_fraction(graphs: Sequence[nx.Graph], *, node_attr: str | None = None,
                    edge_attr: str | None = None) -> float:
    """Fraction of graphs not isomorphic to an earlier graph in the list (first occurrences count as unique);
    0.0 for an empty list. ``node_attr``/``edge_attr`` make isomorphism respect those (categorical) labels."""
    graphs = list(graphs)
    if not graphs:
        return 0.0
    return sum(_unique_flags(isomorphism_classes(graphs, node_attr=node_attr, edge_attr=edge_attr))) / len(graphs)


def novel_fraction(graphs: Sequence[nx.Graph], train_graphs: Sequence[nx.Graph], *, node_attr: str | None = None,
                   edge_attr: str | None = None) -> float:
    """Fraction of graphs isomorphic to no graph of ``train_graphs``; 0.0 for an empty list."""
    graphs = list(graphs)
    if not graphs:
        return 0.0
    classes = isomorphism_classes(graphs, node_attr=node_attr, edge_attr=edge_attr)
    return sum(_novel_flags(graphs, classes, list(train_graphs), node_attr, edge_attr)) / len(graphs)


# ---- V.U.N. ------------------------------------------------------------------------------------------------
def _fn_name(fn) -> str | None:
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        return _fn_name(fn.func)
    return getattr(fn, "__name__", type(fn).__name__)


def vun(graphs: Sequence[nx.Graph], train_graphs: Sequence[nx.Graph],
        validity_fn: Callable[[nx.Graph], bool] | None, *, node_attr: str | None = None,
        edge_attr: str | None = None) -> dict:
    """Validity, uniqueness, novelty and V.U.N. of generated ``graphs`` against ``train_graphs``.

    Returns a dict with the fractions ``valid``, ``unique``, ``novel``, ``unique_novel``, ``vun`` (each over all
    generated graphs; 0.0 for an empty list), the counts ``num_graphs``, ``num_train``, ``num_valid``,
    ``num_unique``, ``num_novel``, ``num_unique_novel``, ``num_vun``, the name of the validity function, the SBM fit
    method when the validity is the SBM test, and :data:`DEFINITIONS`. With ``validity_fn=None`` the validity
    fields and ``vun`` are ``None``.
    """
    graphs, train_graphs = list(graphs), list(train_graphs)
    n = len(graphs)
    classes = isomorphism_classes(graphs, node_attr=node_attr, edge_attr=edge_attr)
    unique = _unique_flags(classes)
    novel = _novel_flags(graphs, classes, train_graphs, node_attr, edge_attr)
    valid = [bool(validity_fn(g)) for g in graphs] if validity_fn is not None else None
    un = [u and v for u, v in zip(unique, novel)]
    frac = (lambda k: k / n if n else 0.0)
    out = {
        "num_graphs": n,
        "num_train": len(train_graphs),
        "num_unique": sum(unique),
        "num_novel": sum(novel),
        "num_unique_novel": sum(un),
        "unique": frac(sum(unique)),
        "novel": frac(sum(novel)),
        "unique_novel": frac(sum(un)),
        "num_valid": None, "num_vun": None, "valid": None, "vun": None,
        "validity": _fn_name(validity_fn),
        "definitions": dict(DEFINITIONS),
    }
    if valid is not None:
        vun_flags = [a and b for a, b in zip(valid, un)]
        out.update(num_valid=sum(valid), num_vun=sum(vun_flags), valid=frac(sum(valid)), vun=frac(sum(vun_flags)))
    if out["validity"] == "is_sbm_graph":
        out["sbm_fit_method"] = SBM_FIT_METHOD
    return out


VALIDITY: dict[str, Callable[[nx.Graph], bool]] = {
    "planar": is_planar_graph,
    "tree": is_tree_graph,
    "sbm": is_sbm_graph,
    "grid": is_grid_graph,
    "lobster": is_lobster_graph,
}

_DATASET_FAMILY = {
    "planar": "planar", "synth_planar": "planar",
    "sbm": "sbm", "synth_sbm": "sbm",
    "tree": "tree",
    "lobster": "lobster",
    "grid": "grid", "synth_grid": "grid",
}


def validity_for_dataset(name: str) -> Callable[[nx.Graph], bool] | None:
    """The validity function of a dataset family (``planar``, ``synth_planar``, ``sbm``, ``synth_sbm``, ``tree``,
    ``lobster``, ``grid``, ``synth_grid``); ``None`` for datasets without one."""
    family = _DATASET_FAMILY.get(str(name).lower().replace("-", "_"))
    return VALIDITY[family] if family else None
