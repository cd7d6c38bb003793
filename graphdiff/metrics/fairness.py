"""Fairness of generated graphs whose nodes carry a sensitive attribute: how much edges depend on it.

Definitions (every node of a graph belongs to one group, the value of its sensitive attribute; the unordered
pairs of distinct nodes of a set of graphs are pooled, pairs never cross graphs):

- *edge rate of a group pair* ``(a, b)``: the share of the node pairs with one node in ``a`` and the other in ``b``
  that are joined by an edge (:func:`group_pair_rates`).
- *dyadic demographic-parity gap* (Li et al., "On Dyadic Fairness", ICLR 2021, on a set of generated graphs):
  ``|P(edge | same group) - P(edge | different groups)|``, the edge rate of intra-group pairs against that of
  inter-group pairs (:func:`parity_gap`). 0 when edges ignore the attribute; 1 for graphs that are cliques within
  each group and have no edge across. FAROS (Badaoui et al., 2025) asks for this edge independence.
- *group-pair gap*: the largest minus the smallest edge rate over all group pairs (:func:`group_pair_gap`); with
  two groups it also separates "group a is denser than group b", which the parity gap does not.
- *group shares* and *group balance*: the share of nodes in each group, and the smallest share over the largest
  (:func:`group_balance`; 1 for equal groups, 0 when a group is absent).

Graphs are networkx graphs whose nodes hold the attribute ``attr`` (``"label"``, where
:func:`graphdiff.convert.networkx.to_networkx` writes a node's category), or a decoded
:class:`~graphdiff.state.GraphState` with its schema. ``groups`` names the sensitive values; nodes with another
value (and the pairs they are in) are left out. A rate over no pairs is ``nan``.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations_with_replacement

import numpy as np

from ..errors import DataError


def as_graphs(graphs, schema=None) -> list:
    """networkx graphs from a list of them or a decoded GraphState (with ``schema``, or its own)."""
    from ..state import GraphState

    if isinstance(graphs, GraphState):
        from ..convert.networkx import to_networkx

        return to_networkx(graphs.to("cpu"), schema)
    return list(graphs)


def _node_groups(g, attr: str, where: str) -> dict:
    out = {}
    for v, d in g.nodes(data=True):
        if attr not in d:
            raise DataError(f"{where}: node {v!r} has no attribute {attr!r} (the sensitive attribute)")
        out[v] = d[attr]
    return out


def _counts(graphs, attr: str, groups):
    """Per graph: node counts per group and edge counts per group pair (pairs as sorted tuples)."""
    keep = None if groups is None else set(groups)
    rows = []
    for i, g in enumerate(graphs):
        of = _node_groups(g, attr, f"graph {i}")
        nodes = Counter(a for a in of.values() if keep is None or a in keep)
        edges = Counter()
        for u, v in g.edges():
            if u == v:
                continue
            a, b = of[u], of[v]
            if keep is None or (a in keep and b in keep):
                edges[tuple(sorted((a, b), key=repr))] += 1
        rows.append((nodes, edges))
    return rows


def _pairs(nodes: Counter, a, b) -> int:
    return nodes[a] * (nodes[a] - 1) // 2 if a == b else nodes[a] * nodes[b]


def _known(rows, groups) -> list:
    if groups is not None:
        return list(groups)
    seen = set()
    for nodes, _ in rows:
        seen.update(nodes)
    return sorted(seen, key=repr)


def group_pair_rates(graphs, attr: str = "label", groups=None, *, schema=None) -> dict:
    """Edge rate of each group pair ``(a, b)`` (``a <= b`` by ``repr``), pooled over the graphs."""
    rows = _counts(as_graphs(graphs, schema), attr, groups)
    known = sorted(_known(rows, groups), key=repr)
    out = {}
    for a, b in combinations_with_replacement(known, 2):
        pairs = sum(_pairs(nodes, a, b) for nodes, _ in rows)
        edges = sum(e[(a, b)] for _, e in rows)
        out[(a, b)] = edges / pairs if pairs else float("nan")
    return out


def _intra_inter(rows) -> tuple[int, int, int, int]:
    same = diff = e_same = e_diff = 0
    for nodes, edges in rows:
        total = sum(nodes.values())
        s = sum(c * (c - 1) // 2 for c in nodes.values())
        same += s
        diff += total * (total - 1) // 2 - s
        for (a, b), c in edges.items():
            if a == b:
                e_same += c
            else:
                e_diff += c
    return same, diff, e_same, e_diff


def edge_rates(graphs, attr: str = "label", groups=None, *, schema=None) -> tuple[float, float]:
    """``(P(edge | same group), P(edge | different groups))``, pooled over the graphs."""
    same, diff, e_same, e_diff = _intra_inter(_counts(as_graphs(graphs, schema), attr, groups))
    return (e_same / same if same else float("nan")), (e_diff / diff if diff else float("nan"))


def parity_gap(graphs, attr: str = "label", groups=None, *, schema=None) -> float:
    """Dyadic demographic-parity gap ``|P(edge | same group) - P(edge | different groups)|`` (module docstring)."""
    intra, inter = edge_rates(graphs, attr, groups, schema=schema)
    return abs(intra - inter)


def parity_gaps(graphs, attr: str = "label", groups=None, *, schema=None) -> np.ndarray:
    """The parity gap of each graph on its own (``nan`` for a graph with a single group or under two nodes)."""
    graphs = as_graphs(graphs, schema)
    return np.array([parity_gap([g], attr, groups) for g in graphs], dtype=np.float64)


def group_pair_gap(graphs, attr: str = "label", groups=None, *, schema=None) -> float:
    """The largest minus the smallest edge rate over the group pairs (pairs without node pairs left out)."""
    rates = [r for r in group_pair_rates(graphs, attr, groups, schema=schema).values() if not np.isnan(r)]
    return max(rates) - min(rates) if rates else float("nan")


def group_shares(graphs, attr: str = "label", groups=None, *, schema=None) -> dict:
    """The share of nodes in each group (of the nodes in ``groups``), pooled over the graphs."""
    rows = _counts(as_graphs(graphs, schema), attr, groups)
    total = Counter()
    for nodes, _ in rows:
        total.update(nodes)
    n = sum(total.values())
    return {a: (total[a] / n if n else float("nan")) for a in _known(rows, groups)}


def group_balance(graphs, attr: str = "label", groups=None, *, schema=None) -> float:
    """The smallest group share over the largest (1: equal groups; 0: a group of ``groups`` is absent)."""
    shares = list(group_shares(graphs, attr, groups, schema=schema).values())
    if len(shares) < 2 or not max(shares) > 0:
        return float("nan")
    return min(shares) / max(shares)


def fairness_report(graphs, attr: str = "label", groups=None, *, schema=None) -> dict:
    """All of the above in one dict (rates keyed ``"a|b"``), for tables and JSON."""
    graphs = as_graphs(graphs, schema)
    intra, inter = edge_rates(graphs, attr, groups)
    return {"parity_gap": abs(intra - inter), "intra_edge_rate": intra, "inter_edge_rate": inter,
            "group_pair_gap": group_pair_gap(graphs, attr, groups),
            "group_balance": group_balance(graphs, attr, groups),
            "group_shares": {str(k): v for k, v in group_shares(graphs, attr, groups).items()},
            "pair_rates": {f"{a}|{b}": v for (a, b), v in group_pair_rates(graphs, attr, groups).items()}}


__all__ = ["as_graphs", "group_pair_rates", "edge_rates", "parity_gap", "parity_gaps", "group_pair_gap",
           "group_shares", "group_balance", "fairness_report"]
