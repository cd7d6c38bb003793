import numpy as np
import pytest
import torch

from graphdiff import Schema, SchemaError
from graphdiff.schema import atom_token, parse_atom_token


def test_marginals_from_data_sum_to_one():
    nodes = [np.array([0, 1, 1]), np.array([2, 0])]
    edges = [np.array([1, 2]), np.array([1])]
    s = Schema.from_graphs(nodes, edges, node_categories=("a", "b", "c"), edge_categories=("none", "x", "y"))
    assert s.max_nodes == 3
    assert s.node_count_hist == (0, 0, 1, 1)
    assert sum(s.node_marginals) == pytest.approx(1.0)
    assert sum(s.edge_marginals) == pytest.approx(1.0)
    # 3 + 1 unordered pairs, 3 edges -> one "none"
    assert s.edge_marginals == pytest.approx((0.25, 0.5, 0.25))
    assert s.node_marginals == pytest.approx((0.4, 0.4, 0.2))


def test_json_round_trip_and_unknown_field():
    s = Schema.from_graphs([np.array([0])], [np.array([], dtype=int)], node_categories=("C",),
                           edge_categories=("none", "SINGLE"), kind="molecule")
    assert Schema.from_json(s.to_json()) == s
    d = s.to_dict()
    d["nodes_categories"] = []
    with pytest.raises(SchemaError, match="nodes_categories"):
        Schema.from_dict(d)


def test_extended_keeps_indices():
    s = Schema(node_categories=("C", "N"), edge_categories=("none", "SINGLE"), kind="molecule",
               node_marginals=(0.5, 0.5))
    t = s.extended(["Se", "N", "O-"])
    assert t.node_categories == ("C", "N", "Se", "O-")
    assert t.node_marginals == (0.5, 0.5, 0.0, 0.0)


@pytest.mark.parametrize("sym,charge", [("C", 0), ("N", 1), ("O", -1), ("Fe", 2), ("Cl", -1), ("*", 0)])
def test_atom_token_round_trip(sym, charge):
    assert parse_atom_token(atom_token(sym, charge)) == (sym, charge)


def test_bad_token_and_missing_none_edge():
    with pytest.raises(SchemaError):
        parse_atom_token("c1")
    with pytest.raises(SchemaError, match="none"):
        Schema(node_categories=("a",), edge_categories=("edge",))


def test_sample_n_nodes_follows_histogram():
    s = Schema(node_categories=("a",), edge_categories=("none", "e"), node_count_hist=(0, 0, 3, 0, 1))
    n = s.sample_n_nodes(4000, generator=torch.Generator().manual_seed(0))
    assert set(n.tolist()) <= {2, 4}
    assert abs((n == 2).float().mean().item() - 0.75) < 0.03
