"""Generated synthetic datasets: determinism, structural properties, splits, card counts, caching."""

import networkx as nx
import numpy as np
import pytest

from graphdiff.data import synthetic as S
from graphdiff.data.base import load_card

CLASSES = [S.SynthCommunitySmall, S.SynthGrid, S.SynthPlanar, S.SynthSBM, S.Tree, S.Lobster]
GENERATORS = [S.community_small, S.grid, S.planar, S.sbm, S.tree, S.lobster]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="module")
def built(root):
    """Each dataset built once from its card (the expensive part, shared by the tests below)."""
    return {cls.name: cls(root) for cls in CLASSES}


def graphs_of(ds):
    return ds.to_networkx()


def edge_sets(graphs):
    return [sorted(map(tuple, S.edge_array(g).tolist())) for g in graphs]


# ---- generators ------------------------------------------------------------------------------------
@pytest.mark.parametrize("gen", GENERATORS, ids=lambda f: f.__name__)
def test_generator_deterministic(gen):
    a, b, c = gen(8, 3), gen(8, 3), gen(8, 4)
    assert [g.number_of_nodes() for g in a] == [g.number_of_nodes() for g in b]
    assert edge_sets(a) == edge_sets(b)
    assert edge_sets(a) != edge_sets(c)
    for g in a:
        assert sorted(g.nodes) == list(range(g.number_of_nodes()))


def test_grid_all_sizes_is_graphrnn_set():
    gs = S.grid(100, 0, all_sizes=True)
    assert sorted(g.number_of_nodes() for g in gs) == sorted(m * n for m in range(10, 20) for n in range(10, 20))
    with pytest.raises(ValueError):
        S.grid(5, 0, all_sizes=True)


def test_community_intra_edges_follow_gdss_fixed_seeds():
    for g in S.community_small(20, 1):
        c = g.number_of_nodes() // 2
        ref = nx.disjoint_union(nx.gnp_random_graph(c, 0.7, seed=0), nx.gnp_random_graph(c, 0.7, seed=1))
        intra = {tuple(sorted(e)) for e in g.edges if (e[0] < c) == (e[1] < c)}
        assert intra == {tuple(sorted(e)) for e in ref.edges}
    # random intra seeds give graphs of one size different intra edges
    assert len({frozenset(g.edges) for g in S.community_small(30, 1, fixed_intra_seeds=False)}) == 30


def test_lobster_gran_seed_sequence():
    make = getattr(nx, "random_lobster_graph", None) or nx.random_lobster
    a = S.lobster(5, 1234, gran_seed_sequence=True)
    draws = (make(80, 0.7, 0.7, seed=s) for s in range(1234, 2000))  # GRAN's loop
    assert edge_sets(a[:2]) == edge_sets([g for g in draws if 10 <= g.number_of_nodes() <= 100][:2])
    assert edge_sets(S.lobster(5, 1234)) != edge_sets(a)


def test_split_rules():
    assert (S.make_split("gdss", 100)[:20] == 2).all() and (S.make_split("gdss", 100)[20:] == 0).all()
    assert (S.make_split("gran", 100)[80:] == 2).all() and (S.make_split("gran", 100)[:80] == 0).all()
    esgg = S.make_split("esgg", 200)
    assert (esgg[:128] == 0).all() and (esgg[128:160] == 1).all() and (esgg[160:] == 2).all()
    spectre = S.make_split("spectre", 200)
    assert np.bincount(spectre).tolist() == [128, 32, 40]
    assert (spectre == S.make_split("spectre", 200)).all() and not (spectre == esgg).all()


# ---- structural properties of every graph ----------------------------------------------------------
def is_lobster(g: nx.Graph) -> bool:
    if not nx.is_tree(g):
        return False
    h = g.copy()
    for _ in range(2):
        h.remove_nodes_from([v for v, d in h.degree() if d <= 1])
    return h.number_of_nodes() == 0 or (nx.is_tree(h) and max(d for _, d in h.degree()) <= 2)


def test_lobster_checker():
    assert is_lobster(nx.path_graph(5)) and is_lobster(nx.star_graph(4))
    spider = nx.Graph([(0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9)])
    assert not is_lobster(spider) and not is_lobster(nx.cycle_graph(5))


def test_community_small_graphs(built):
    for g in graphs_of(built["synth_community_small"]):
        n = g.number_of_nodes()
        assert 12 <= n <= 20 and n % 2 == 0 and nx.is_connected(g)


def test_grid_graphs(built):
    for g in graphs_of(built["synth_grid"]):
        n, m = g.number_of_nodes(), g.number_of_edges()
        s = 2 * n - m  # a + b for an a x b grid (a * b = n, 2ab - a - b = m)
        a = (s - round(np.sqrt(s * s - 4 * n))) // 2
        assert 10 <= a <= 19 and a * (s - a) == n and 10 <= s - a <= 19
        assert nx.vf2pp_is_isomorphic(g, nx.grid_2d_graph(a, s - a))


def test_planar_graphs(built):
    for g in graphs_of(built["synth_planar"]):
        assert g.number_of_nodes() == 64 and nx.is_connected(g) and nx.is_planar(g)


def test_sbm_graphs(built):
    for g in graphs_of(built["synth_sbm"]):
        assert 40 <= g.number_of_nodes() <= 200 and nx.is_connected(g)


def test_tree_graphs(built):
    for g in graphs_of(built["tree"]):
        assert g.number_of_nodes() == 64 and nx.is_tree(g)


def test_lobster_graphs(built):
    for g in graphs_of(built["lobster"]):
        assert 10 <= g.number_of_nodes() <= 100 and is_lobster(g)


# ---- dataset plumbing ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
def test_card_counts_and_splits(built, cls):
    ds, card = built[cls.name], load_card(cls.name)
    assert card["kind"] == "graph" and card["source"] == "generated" and card["files"] == []
    assert ds.split_sizes() == {k: card["split"][k] for k in ("train", "val", "test")}
    assert {k: ds.info[k] for k in card["counts"]} == card["counts"]
    assert ds.info["invalid"] == {"count": 0, "examples": []}
    assert ds.info["generator"]["seed"] == card["seed"] and len(ds) == card["num_graphs"]
    assert ds.schema.node_categories == ("node",) and ds.schema.edge_categories == ("none", "edge")
    assert len(ds.split("train")) == card["split"]["train"]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
def test_cache_reused(built, root, cls):
    assert built[cls.name].processed_now
    again = cls(root, "test")
    assert not again.processed_now and len(again) == load_card(cls.name)["split"]["test"]


def test_seed_override_gets_own_cache(built, root):
    a = S.Tree(root, num_graphs=10, seed=5)
    assert a.processed_now and a.variant() == "n10_seed5" and len(a) == 10
    assert not S.Tree(root, num_graphs=10, seed=5).processed_now
    b = S.Tree(root, num_graphs=10, seed=6)
    assert b.processed_now and b.processed_dir != a.processed_dir
    assert edge_sets(graphs_of(a)) != edge_sets(graphs_of(b))
    assert edge_sets(graphs_of(a)) == edge_sets(S.tree(10, 5))
    assert not S.Tree(root).processed_now  # the default variant is untouched
