"""The attributed SBM (``synth_sbm_attr``): seeded, connected, its node category a group attribute that edges
depend on (a large parity gap), card counts and split."""

import networkx as nx
import numpy as np

from graphdiff.data import load_dataset
from graphdiff.data import synthetic as S
from graphdiff.data.base import load_card
from graphdiff.metrics.fairness import edge_rates, group_balance, parity_gap


def test_generator_is_seeded_and_its_attribute_follows_the_blocks():
    a, b, c = S.sbm_attr(10, 3), S.sbm_attr(10, 3), S.sbm_attr(10, 4)
    assert [sorted(g.edges) for g in a] == [sorted(g.edges) for g in b] != [sorted(g.edges) for g in c]
    assert [dict(g.nodes(data="group")) for g in a] == [dict(g.nodes(data="group")) for g in b]
    for g in a:
        assert 20 <= g.number_of_nodes() <= 40 and nx.is_connected(g)
        assert set(dict(g.nodes(data="group")).values()) <= {0, 1}
    intra, inter = edge_rates(a, "group")
    assert intra > 2 * inter
    # homophily 0.5 decouples the attribute from the blocks: no gap to speak of
    assert parity_gap(S.sbm_attr(60, 0, homophily=0.5), "group") < 0.03 < parity_gap(a, "group")


def test_dataset_card_categories_and_gap(tmp_path):
    ds = load_dataset("synth_sbm_attr", root=tmp_path)
    card = load_card("synth_sbm_attr")
    assert ds.schema.node_categories == ("g0", "g1") and ds.schema.edge_categories == ("none", "edge")
    assert {k: ds.info[k] for k in card["counts"]} == card["counts"]
    assert ds.split_sizes() == {k: card["split"][k] for k in ("train", "val", "test")}
    graphs = ds.to_networkx()
    assert parity_gap(graphs) > 0.15 and group_balance(graphs) > 0.9
    np.testing.assert_array_equal(sorted({d for g in graphs for _, d in g.nodes(data="label")}), ["g0", "g1"])
