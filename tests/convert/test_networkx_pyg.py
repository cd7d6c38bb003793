import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from networkx.algorithms.isomorphism import categorical_edge_match, categorical_node_match
from torch_geometric.data import Data

from graphdiff import DataError, GraphState, Schema, SchemaError
from graphdiff.convert import from_networkx, from_pyg, to_networkx, to_pyg


@st.composite
def labelled_graphs(draw, max_nodes=9, labelled=True):
    n = draw(st.integers(1, max_nodes))
    g = nx.Graph()
    for i in range(n):
        if labelled:
            g.add_node(i, label=draw(st.sampled_from(["a", "b", "c"])))
        else:
            g.add_node(i)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs))) if pairs else []
    for u, v in chosen:
        if labelled:
            g.add_edge(u, v, label=draw(st.sampled_from(["x", "y"])))
        else:
            g.add_edge(u, v)
    return g


def same(a, b, labelled=True):
    if not labelled:
        return nx.is_isomorphic(a, b) and sorted(a.edges) == sorted(b.edges)
    return nx.is_isomorphic(a, b, node_match=categorical_node_match("label", None),
                            edge_match=categorical_edge_match("label", None))


@settings(max_examples=60, deadline=None)
@given(st.lists(labelled_graphs(), min_size=1, max_size=4))
def test_networkx_round_trip_labelled(graphs):
    schema = Schema(node_categories=("a", "b", "c"), edge_categories=("none", "x", "y"))
    state = from_networkx(graphs, schema)
    assert state.is_symmetric()
    back = to_networkx(state, schema)
    for a, b in zip(graphs, back):
        assert same(a, b)
        assert dict(a.nodes(data="label")) == dict(b.nodes(data="label"))  # identical node order, not just iso


@settings(max_examples=60, deadline=None)
@given(st.lists(labelled_graphs(labelled=False), min_size=1, max_size=4))
def test_networkx_round_trip_plain_and_through_pyg(graphs):
    state = from_networkx(graphs)
    assert state.schema.edge_categories == ("none", "edge")
    back = to_networkx(state)
    assert all(sorted(a.edges) == sorted(b.edges) for a, b in zip(graphs, back))
    batch = to_pyg(state)
    assert batch.num_graphs == len(graphs)
    again = from_pyg(batch, schema=state.schema)
    assert torch.equal(again.x, state.x) and torch.equal(again.e, state.e) and torch.equal(again.mask, state.mask)


@settings(max_examples=40, deadline=None)
@given(st.lists(labelled_graphs(), min_size=1, max_size=3), st.randoms(use_true_random=False))
def test_pyg_round_trip_is_exact_and_permutation_consistent(graphs, rnd):
    schema = Schema(node_categories=("a", "b", "c"), edge_categories=("none", "x", "y"))
    state = from_networkx(graphs, schema)
    state.pos = torch.randn(state.batch_size, state.max_nodes, 3)
    state = state.masked()
    state.y = torch.randn(state.batch_size, 2)
    back = from_pyg(to_pyg(state), schema=schema, max_nodes=state.max_nodes)
    for f in ("x", "e", "mask", "y"):
        assert torch.equal(getattr(back, f), getattr(state, f)), f
    assert torch.allclose(back.pos, state.pos, atol=1e-6)
    perm = list(range(state.max_nodes))
    rnd.shuffle(perm)
    p = state.permute(torch.tensor(perm))
    # converting a permuted state gives the same graphs up to relabelling
    for a, b in zip(to_networkx(p, schema), graphs):
        assert same(a, b)


def test_from_networkx_reports_self_loop_and_unknown_label():
    g = nx.Graph([(0, 1), (1, 1)])
    with pytest.raises(DataError, match="self-loop"):
        from_networkx(g)
    h = nx.Graph()
    h.add_node(0, label="zz")
    with pytest.raises(SchemaError, match="'zz'"):
        from_networkx(h, Schema(node_categories=("a",), edge_categories=("none", "edge")), node_attr="label")
    assert "zz" in from_networkx(h, Schema(node_categories=("a",), edge_categories=("none", "edge")),
                                 extend=True).schema.node_categories


def test_from_pyg_rejects_asymmetric_and_self_loops():
    d = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), num_nodes=3)
    with pytest.raises(DataError, match="not symmetric"):
        from_pyg(d)
    d = Data(edge_index=torch.tensor([[0, 1, 1], [1, 0, 1]]), num_nodes=2)
    with pytest.raises(DataError, match="self-loop"):
        from_pyg(d)


def test_from_pyg_integer_categories_and_edge_attr_without_none_column():
    d = Data(x=torch.tensor([0, 2, 1]), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
             edge_attr=torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]]))
    schema = Schema(node_categories=("a", "b", "c"), edge_categories=("none", "x", "y"))
    s = from_pyg(d, schema)
    assert s.node_types().tolist() == [[0, 2, 1]]
    assert s.edge_types()[0].tolist() == [[0, 1, 0], [1, 0, 2], [0, 2, 0]]
    assert isinstance(s, GraphState) and s.schema is schema


def test_dense_state_pads_to_requested_size():
    s = from_networkx([nx.path_graph(3)], max_nodes=6)
    assert s.max_nodes == 6 and s.n_nodes.tolist() == [3]
    assert np.array_equal(s.adjacency()[0, :3, :3].numpy(), nx.to_numpy_array(nx.path_graph(3)))
