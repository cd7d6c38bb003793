"""Fairness metrics on hand-built attributed graphs: only intra-group edges give the largest gap, edges drawn
independently of the groups a gap near 0; rates by group pair; balance; GraphState input; one-line errors."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from graphdiff.errors import DataError
from graphdiff.metrics.fairness import (edge_rates, fairness_report, group_balance, group_pair_gap,
                                        group_pair_rates, group_shares, parity_gap, parity_gaps)


def labelled(g: nx.Graph, groups) -> nx.Graph:
    nx.set_node_attributes(g, dict(enumerate(groups)), "label")
    return g


def two_cliques(k: int) -> nx.Graph:
    """Two disjoint k-cliques, one per group: every intra-group pair joined, no inter-group pair."""
    return labelled(nx.disjoint_union(nx.complete_graph(k), nx.complete_graph(k)), ["a"] * k + ["b"] * k)


def test_only_intra_group_edges_give_the_largest_gap():
    g = two_cliques(5)
    assert edge_rates([g]) == (1.0, 0.0)
    assert parity_gap([g]) == 1.0 and group_pair_gap([g]) == 1.0
    # the complement (a complete bipartite graph across the groups) is as unfair the other way
    h = labelled(nx.complement(g), ["a"] * 5 + ["b"] * 5)
    assert edge_rates([h]) == (0.0, 1.0) and parity_gap([h]) == 1.0


def test_edges_independent_of_balanced_groups_give_a_gap_near_zero():
    rng = np.random.default_rng(0)
    g = labelled(nx.gnp_random_graph(400, 0.1, seed=1), rng.permutation(["a", "b"] * 200).tolist())
    assert parity_gap([g]) < 0.01 and group_pair_gap([g]) < 0.01
    assert group_balance([g]) == 1.0
    # the gap sits between the two: some homophily gives some gap
    mixed = nx.disjoint_union(two_cliques(10), g)
    assert 0.0 < parity_gap([mixed]) < 1.0


def test_rates_by_group_pair_and_shares_by_hand():
    # a: 0, 1, 2; b: 3, 4 -- edges a-a (0,1), a-b (2,3) and (1,4), b-b (3,4)
    g = labelled(nx.Graph([(0, 1), (2, 3), (1, 4), (3, 4)]), ["a", "a", "a", "b", "b"])
    rates = group_pair_rates([g])
    assert rates == {("a", "a"): 1 / 3, ("a", "b"): 2 / 6, ("b", "b"): 1.0}
    intra, inter = edge_rates([g])
    assert math.isclose(intra, 2 / 4) and math.isclose(inter, 2 / 6)
    assert math.isclose(group_pair_gap([g]), 1.0 - 1 / 3)
    assert group_shares([g]) == {"a": 0.6, "b": 0.4} and math.isclose(group_balance([g]), 0.4 / 0.6)
    # pooled over graphs, pairs never cross graphs: two copies give the same rates
    assert group_pair_rates([g, g.copy()]) == rates
    # a group asked for and absent: balance 0; nodes outside the groups are left out
    assert group_balance([g], groups=["a", "b", "c"]) == 0.0
    assert group_shares([g], groups=["a"]) == {"a": 1.0}


def test_per_graph_gaps_and_undefined_cases():
    one_group = labelled(nx.path_graph(4), ["a"] * 4)
    gaps = parity_gaps([two_cliques(3), one_group])
    assert gaps[0] == 1.0 and np.isnan(gaps[1])
    assert np.isnan(parity_gap([one_group]))
    report = fairness_report([two_cliques(4)])
    assert report["parity_gap"] == 1.0 and report["pair_rates"] == {"a|a": 1.0, "a|b": 0.0, "b|b": 1.0}
    assert report["group_shares"] == {"a": 0.5, "b": 0.5}


def test_a_decoded_state_and_a_missing_attribute():
    from graphdiff.convert.networkx import from_networkx, schema_from_networkx

    graphs = [two_cliques(3), two_cliques(4)]
    schema = schema_from_networkx(graphs)
    state = from_networkx(graphs, schema)
    assert parity_gap(state, schema=schema) == 1.0
    g = two_cliques(3)
    del g.nodes[2]["label"]
    with pytest.raises(DataError, match="graph 0: node 2 has no attribute 'label'") as err:
        parity_gap([g])
    assert "\n" not in str(err.value)
