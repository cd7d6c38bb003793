"""Validity functions, uniqueness / novelty by exact isomorphism, V.U.N. arithmetic, the SBM test."""

from __future__ import annotations

import math
import random
import warnings

import networkx as nx
import numpy as np
import pytest

from graphdiff.data import load_dataset
from graphdiff.data.synthetic import sbm as sbm_generator
from graphdiff.metrics.vun import (
    DEFINITIONS,
    SBM_FIT_METHOD,
    VALIDITY,
    fit_sbm_partition,
    is_grid_graph,
    is_lobster_graph,
    is_planar_graph,
    is_sbm_graph,
    is_tree_graph,
    isomorphism_classes,
    novel_fraction,
    sbm_p_value,
    unique_fraction,
    validity_for_dataset,
    vun,
)
from tests.conftest import shared_root


def relabel(g: nx.Graph, seed: int = 0) -> nx.Graph:
    nodes = list(g.nodes)
    perm = random.Random(seed).sample(nodes, len(nodes))
    return nx.relabel_nodes(g, dict(zip(nodes, perm)))


# ---- validity ---------------------------------------------------------------------------------------------
def test_tree_dataset_and_counter_examples(tmp_path):
    graphs = load_dataset("tree", root=tmp_path).to_networkx()
    assert len(graphs) == 200 and all(is_tree_graph(g) for g in graphs)
    assert not is_tree_graph(nx.cycle_graph(7))
    assert not is_tree_graph(nx.disjoint_union(nx.path_graph(3), nx.path_graph(4)))  # a forest
    assert is_tree_graph(nx.empty_graph(1))


def test_planar_dataset_and_counter_examples(tmp_path):
    graphs = load_dataset("synth_planar", root=tmp_path, split="test").to_networkx()
    assert len(graphs) == 40 and all(is_planar_graph(g) for g in graphs)
    assert not is_planar_graph(nx.complete_graph(5))
    assert not is_planar_graph(nx.complete_bipartite_graph(3, 3))
    assert not is_planar_graph(nx.disjoint_union(nx.cycle_graph(4), nx.cycle_graph(4)))  # planar, not connected


def test_grid_dataset_and_counter_examples(tmp_path):
    graphs = load_dataset("synth_grid", root=tmp_path, split="test").to_networkx()[:8]
    assert all(is_grid_graph(g) for g in graphs)
    g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(5, 7))
    assert is_grid_graph(relabel(g))
    broken = g.copy()
    broken.remove_edge(*next(iter(broken.edges)))
    assert not is_grid_graph(broken)
    # same degree counts and edge count as the 4 x 6 grid but not a grid: a degree-preserving double edge swap
    grid = nx.convert_node_labels_to_integers(nx.grid_2d_graph(4, 6))
    swapped = grid.copy()
    nx.double_edge_swap(swapped, nswap=2, max_tries=1000, seed=3)
    assert sorted(d for _, d in swapped.degree()) == sorted(d for _, d in grid.degree())
    assert not nx.is_isomorphic(swapped, grid) and not is_grid_graph(swapped)
    torus = nx.convert_node_labels_to_integers(nx.grid_2d_graph(4, 4, periodic=True))
    assert not is_grid_graph(torus)
    assert not is_grid_graph(nx.path_graph(6))  # a 1 x 6 "grid" only with min_side=1
    assert is_grid_graph(nx.path_graph(6), min_side=1)


def test_lobster_dataset_and_counter_examples(tmp_path):
    graphs = load_dataset("lobster", root=tmp_path).to_networkx()
    assert len(graphs) == 100 and all(is_lobster_graph(g) for g in graphs)
    assert is_lobster_graph(nx.path_graph(10))
    assert is_lobster_graph(nx.star_graph(5))
    assert is_lobster_graph(nx.empty_graph(1))
    # spider with three legs of length 4: leaves removed twice leaves a star with three legs of length 2
    spider = nx.Graph()
    for leg in range(3):
        nx.add_path(spider, [0] + [f"{leg}-{i}" for i in range(4)])
    assert is_tree_graph(spider) and not is_lobster_graph(spider)
    assert not is_lobster_graph(nx.cycle_graph(8))


def test_zero_node_graph_is_invalid_everywhere():
    for name, fn in VALIDITY.items():
        assert fn(nx.Graph()) is False, name
    assert sbm_p_value(nx.Graph(), strict=False) == 0.0


def test_validity_for_dataset():
    assert validity_for_dataset("planar") is is_planar_graph
    assert validity_for_dataset("synth_planar") is is_planar_graph
    assert validity_for_dataset("sbm") is is_sbm_graph
    assert validity_for_dataset("synth-sbm") is is_sbm_graph
    assert validity_for_dataset("tree") is is_tree_graph
    assert validity_for_dataset("lobster") is is_lobster_graph
    assert validity_for_dataset("grid") is is_grid_graph
    assert validity_for_dataset("synth_grid") is is_grid_graph
    assert validity_for_dataset("community_small") is None
    assert validity_for_dataset("qm9") is None


# ---- uniqueness and novelty --------------------------------------------------------------------------------
def test_relabelled_copies_are_duplicates():
    a = nx.petersen_graph()
    b = nx.cycle_graph(10)
    graphs = [a, relabel(a, 1), b, relabel(a, 2), relabel(b, 3)]
    assert isomorphism_classes(graphs) == [0, 0, 1, 0, 1]
    assert unique_fraction(graphs) == pytest.approx(2 / 5)
    assert novel_fraction(graphs, [relabel(b, 4)]) == pytest.approx(3 / 5)
    assert novel_fraction(graphs, []) == 1.0


def test_wl_hash_collision_is_not_a_duplicate():
    c6 = nx.cycle_graph(6)
    two_triangles = nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert nx.weisfeiler_lehman_graph_hash(c6, iterations=3) == \
            nx.weisfeiler_lehman_graph_hash(two_triangles, iterations=3)
    assert unique_fraction([c6, two_triangles]) == 1.0
    assert novel_fraction([c6], [two_triangles]) == 1.0
    assert novel_fraction([c6], [relabel(c6)]) == 0.0


def test_labels_respected_when_asked():
    g = nx.path_graph(3)
    nx.set_node_attributes(g, {0: "C", 1: "C", 2: "O"}, "atom")
    h = nx.path_graph(3)
    nx.set_node_attributes(h, {0: "C", 1: "O", 2: "C"}, "atom")
    k = relabel(g, 5)
    assert unique_fraction([g, h, k]) == pytest.approx(1 / 3)
    assert unique_fraction([g, h, k], node_attr="atom") == pytest.approx(2 / 3)
    nx.set_edge_attributes(g, 1, "bond")
    nx.set_edge_attributes(h, 1, "bond")
    h2 = h.copy()
    h2.edges[0, 1]["bond"] = 2
    assert unique_fraction([h, h2], edge_attr="bond") == 1.0
    assert unique_fraction([h, h2]) == 0.5


def test_isolated_nodes_and_empty_graphs():
    a = nx.path_graph(3)
    a.add_node(10)  # isolated node
    b = relabel(a, 2)
    assert unique_fraction([a, b, nx.path_graph(4)]) == pytest.approx(2 / 3)
    assert unique_fraction([nx.Graph(), nx.Graph()]) == 0.5
    assert not is_tree_graph(a) and not is_planar_graph(a)


# ---- V.U.N. --------------------------------------------------------------------------------------------------
def test_vun_arithmetic():
    t1, t2, t3 = nx.path_graph(5), nx.star_graph(4), nx.path_graph(6)
    train = [t1]
    graphs = [
        relabel(t1, 1),  # valid, unique, not novel
        t2,              # valid, unique, novel          -> V.U.N.
        relabel(t2, 2),  # valid, duplicate of t2, novel
        t3,              # valid, unique, novel          -> V.U.N.
        nx.cycle_graph(5),  # invalid, unique, novel
        nx.Graph(),      # invalid (no nodes), unique, novel
    ]
    r = vun(graphs, train, is_tree_graph)
    assert r["num_graphs"] == 6 and r["num_train"] == 1
    assert (r["num_valid"], r["num_unique"], r["num_novel"], r["num_unique_novel"], r["num_vun"]) == (4, 5, 5, 4, 2)
    assert r["valid"] == pytest.approx(4 / 6)
    assert r["unique"] == pytest.approx(5 / 6)
    assert r["novel"] == pytest.approx(5 / 6)
    assert r["unique_novel"] == pytest.approx(4 / 6)
    assert r["vun"] == pytest.approx(2 / 6)
    assert r["validity"] == "is_tree_graph"
    assert r["definitions"] == DEFINITIONS


def test_vun_empty_and_without_validity():
    r = vun([], [nx.path_graph(3)], is_tree_graph)
    assert r["num_graphs"] == 0
    for key in ("valid", "unique", "novel", "unique_novel", "vun"):
        assert r[key] == 0.0 and not math.isnan(r[key])
    assert unique_fraction([]) == 0.0 and novel_fraction([], []) == 0.0
    r = vun([nx.path_graph(3)], [], None)
    assert r["valid"] is None and r["vun"] is None and r["unique"] == 1.0 and r["novel"] == 1.0


# ---- SBM ---------------------------------------------------------------------------------------------------
def test_sbm_graphs_pass_and_er_graphs_fail():
    graphs = sbm_generator(8, seed=7)
    valid = [is_sbm_graph(g) for g in graphs]
    assert np.mean(valid) >= 0.75  # ~90% for a perfect fit: pairs of blocks with no edge between them fail
    rng = np.random.default_rng(0)
    for g in graphs[:2]:
        er = nx.gnm_random_graph(g.number_of_nodes(), g.number_of_edges(), seed=int(rng.integers(1 << 30)))
        assert not is_sbm_graph(er)
    assert isinstance(SBM_FIT_METHOD, str) and "description length" in SBM_FIT_METHOD


def test_sbm_fit_recovers_planted_blocks():
    sizes = [25, 30, 35]
    p = np.full((3, 3), 0.005)
    np.fill_diagonal(p, 0.3)
    g = nx.stochastic_block_model(sizes, p.tolist(), seed=3)
    labels, dl = fit_sbm_partition(g)
    truth = np.repeat(np.arange(3), sizes)
    assert len(set(zip(labels.tolist(), truth.tolist()))) == 3 and labels.max() == 2
    assert np.isfinite(dl)
    assert 0.0 <= sbm_p_value(g, strict=False) <= 1.0
    # isolated nodes and a tiny graph do not crash
    g2 = g.copy()
    g2.add_nodes_from([1000, 1001])
    assert isinstance(is_sbm_graph(g2), bool)
    assert is_sbm_graph(nx.path_graph(5)) is False


def test_sbm_vun_reports_fit_method():
    r = vun([nx.path_graph(3)], [], is_sbm_graph)
    assert r["sbm_fit_method"] == SBM_FIT_METHOD and r["num_valid"] == 0


def test_spectre_sbm_subset(tmp_path):
    root = shared_root(tmp_path, "sbm")  # skips when the offline SPECTRE file is absent
    graphs = load_dataset("sbm", root=root, split="train").to_networkx()[:10]
    rate = np.mean([is_sbm_graph(g) for g in graphs])
    assert rate >= 0.7  # the full training split measures 115/128 = 0.898 with this fit
