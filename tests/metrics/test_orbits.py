"""Graphlet orbit counts (ORCA numbering): vectorised counts against brute-force enumeration and closed forms."""

from __future__ import annotations

import random
from math import comb

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphdiff.metrics.orbits import NUM_ORBITS, orbit_counts, orbit_counts_bruteforce


@st.composite
def small_graphs(draw, max_nodes: int = 10) -> nx.Graph:
    """Random simple graphs on 0..max_nodes nodes with any density (so with isolated nodes too)."""
    n = draw(st.integers(0, max_nodes))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    present = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(p for p, keep in zip(pairs, present) if keep)
    return g


def _paw() -> nx.Graph:
    return nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)])


def _diamond() -> nx.Graph:
    return nx.Graph([(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)])


NAMED = {
    "path5": nx.path_graph(5),
    "star5": nx.star_graph(5),
    "cycle4": nx.cycle_graph(4),
    "cycle7": nx.cycle_graph(7),
    "K4": nx.complete_graph(4),
    "K5": nx.complete_graph(5),
    "paw": _paw(),
    "diamond": _diamond(),
    "petersen": nx.petersen_graph(),
    "triangles_and_isolated": nx.disjoint_union_all([nx.complete_graph(3), nx.complete_graph(3), nx.empty_graph(2)]),
}


@settings(max_examples=150, deadline=None)
@given(small_graphs())
def test_matches_bruteforce_on_random_graphs(g):
    np.testing.assert_array_equal(orbit_counts(g), orbit_counts_bruteforce(g))


@pytest.mark.parametrize("name", sorted(NAMED))
def test_matches_bruteforce_on_named_graphs(name):
    g = NAMED[name]
    got = orbit_counts(g)
    assert got.shape == (g.number_of_nodes(), NUM_ORBITS) and got.dtype == np.int64
    np.testing.assert_array_equal(got, orbit_counts_bruteforce(g))


def _row(**orbits: int) -> list[int]:
    row = [0] * NUM_ORBITS
    for key, value in orbits.items():
        row[int(key[1:])] = value
    return row


def test_each_four_node_graphlet_has_its_orbits():
    """Each 4-node graphlet on its own: its nodes sit in exactly the orbits of their roles."""
    path = orbit_counts(nx.path_graph(4))
    np.testing.assert_array_equal(path[[0, 3]], [_row(o0=1, o1=1, o4=1)] * 2)
    np.testing.assert_array_equal(path[[1, 2]], [_row(o0=2, o1=1, o2=1, o5=1)] * 2)
    star = orbit_counts(nx.star_graph(3))
    np.testing.assert_array_equal(star[0], _row(o0=3, o2=3, o7=1))
    np.testing.assert_array_equal(star[1], _row(o0=1, o1=2, o6=1))
    np.testing.assert_array_equal(orbit_counts(nx.cycle_graph(4)), [_row(o0=2, o1=2, o2=1, o8=1)] * 4)
    paw = orbit_counts(_paw())  # 3 is the tail end, 2 holds the tail
    np.testing.assert_array_equal(paw[3], _row(o0=1, o1=2, o9=1))
    np.testing.assert_array_equal(paw[0], _row(o0=2, o1=1, o3=1, o10=1))
    np.testing.assert_array_equal(paw[2], _row(o0=3, o2=2, o3=1, o11=1))
    diamond = orbit_counts(_diamond())  # 1-2 is the diagonal
    np.testing.assert_array_equal(diamond[0], _row(o0=2, o1=2, o3=1, o12=1))
    np.testing.assert_array_equal(diamond[1], _row(o0=3, o2=1, o3=2, o13=1))
    np.testing.assert_array_equal(orbit_counts(nx.complete_graph(4)), [_row(o0=3, o3=3, o14=1)] * 4)


@pytest.mark.parametrize("n", [4, 5, 6, 9])
def test_complete_graph_closed_form(n):
    counts = orbit_counts(nx.complete_graph(n))
    expected = _row(o0=n - 1, o3=comb(n - 1, 2), o14=comb(n - 1, 3))
    np.testing.assert_array_equal(counts, [expected] * n)


@pytest.mark.parametrize("n", [5, 6, 8, 11])
def test_cycle_closed_form(n):
    """On C_n with n > 4 every node ends two induced P4s and is inside two; no other 4-node graphlet occurs."""
    expected = _row(o0=2, o1=2, o2=1, o4=2, o5=2)
    np.testing.assert_array_equal(orbit_counts(nx.cycle_graph(n)), [expected] * n)


@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_star_closed_form(k):
    counts = orbit_counts(nx.star_graph(k))
    np.testing.assert_array_equal(counts[0], _row(o0=k, o2=comb(k, 2), o7=comb(k, 3)))
    np.testing.assert_array_equal(counts[1:], [_row(o0=1, o1=k - 1, o6=comb(k - 1, 2))] * k)


@settings(max_examples=30, deadline=None)
@given(small_graphs(max_nodes=12), st.randoms(use_true_random=False))
def test_invariant_under_relabelling(g, rnd):
    nodes = list(g.nodes)
    labels = [f"v{i}" for i in range(len(nodes))]
    rnd.shuffle(labels)
    mapping = dict(zip(nodes, labels))
    h = nx.Graph()
    order = nodes[:]
    rnd.shuffle(order)  # another node order as well as other names
    h.add_nodes_from(mapping[v] for v in order)
    h.add_edges_from((mapping[u], mapping[v]) for u, v in g.edges())
    by_name = dict(zip(h.nodes, orbit_counts(h)))
    relabelled = np.array([by_name[mapping[v]] for v in nodes]).reshape(-1, NUM_ORBITS)
    np.testing.assert_array_equal(relabelled, orbit_counts(g))


def test_orbit_zero_is_degree():
    g = nx.gnp_random_graph(60, 0.15, seed=3)
    g.add_nodes_from(range(60, 65))  # isolated nodes
    counts = orbit_counts(g)
    np.testing.assert_array_equal(counts[:, 0], [d for _, d in g.degree()])
    assert not counts[60:].any()


def test_rows_follow_node_order():
    g = nx.Graph()
    g.add_nodes_from(["z", "a", "m"])
    g.add_edge("a", "m")
    np.testing.assert_array_equal(orbit_counts(g)[:, 0], [0, 1, 1])


@pytest.mark.parametrize("n", [0, 1, 3])
def test_empty_and_edgeless_graphs(n):
    for f in (orbit_counts, orbit_counts_bruteforce):
        counts = f(nx.empty_graph(n))
        assert counts.shape == (n, NUM_ORBITS) and counts.dtype == np.int64 and not counts.any()


def test_self_loops_ignored_and_directed_rejected():
    g = nx.cycle_graph(5)
    with_loops = g.copy()
    with_loops.add_edge(0, 0)
    np.testing.assert_array_equal(orbit_counts(with_loops), orbit_counts(g))
    np.testing.assert_array_equal(orbit_counts_bruteforce(with_loops), orbit_counts(g))
    with pytest.raises(TypeError):
        orbit_counts(nx.DiGraph([(0, 1)]))


def test_larger_random_graph_against_bruteforce():
    rng = random.Random(0)
    g = nx.gnp_random_graph(22, 0.35, seed=rng.randrange(10**6))
    np.testing.assert_array_equal(orbit_counts(g), orbit_counts_bruteforce(g))
