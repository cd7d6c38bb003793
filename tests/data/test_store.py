import numpy as np
import pytest
import torch

from graphdiff import DataError, Schema, SchemaError
from graphdiff.data.store import GraphStore


def small_store():
    return GraphStore.from_lists(
        [np.array([0, 1, 1]), np.array([1, 0]), np.array([0])],
        [np.array([[0, 1], [2, 1]]), np.array([[1, 0]]), np.zeros((0, 2), int)],
        [np.array([1, 2]), np.array([1]), np.array([], dtype=int)],
        split=np.array([0, 2, 1]),
    )


def test_round_trip_through_disk_is_memory_mapped(tmp_path):
    s = small_store()
    s.save(tmp_path / "store")
    t = GraphStore.load(tmp_path / "store")
    assert isinstance(t.node_type, np.memmap)
    for i in range(3):
        for a, b in zip(s.graph(i), t.graph(i)):
            assert np.array_equal(a, b)
    assert t.indices("test").tolist() == [1]
    # saving again replaces atomically; no temporary folders left behind
    s.save(tmp_path / "store")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_to_state_matches_graphs():
    s = small_store()
    schema = s.schema(("a", "b"), ("none", "x", "y"))
    st = s.to_state([0, 1, 2], schema)
    assert st.n_nodes.tolist() == [3, 2, 1]
    assert st.is_symmetric()
    assert st.edge_types()[0].tolist() == [[0, 1, 0], [1, 0, 2], [0, 2, 0]]
    assert st.node_types()[1, :2].tolist() == [1, 0]
    assert abs(sum(schema.edge_marginals) - 1) < 1e-12 and abs(sum(schema.node_marginals) - 1) < 1e-12
    with pytest.raises(SchemaError, match="max_nodes=2"):
        s.to_state([0], schema, max_nodes=2)


def test_validate_names_bad_graph():
    with pytest.raises(DataError, match="graph 1 has a self-loop"):
        GraphStore.from_lists([np.zeros(2), np.zeros(2)], [np.array([[0, 1]]), np.array([[1, 1]])])
    with pytest.raises(DataError, match="graph 0 has an edge to a node index"):
        GraphStore.from_lists([np.zeros(2)], [np.array([[0, 5]])])


def test_concat_equals_building_at_once():
    a = small_store()
    both = GraphStore.concat([a, a])
    assert len(both) == 6
    for i in range(3):
        for x, y in zip(both.graph(i + 3), a.graph(i)):
            assert np.array_equal(x, y)


def test_loader_batches_are_graphstates(tmp_path):
    from graphdiff.data.synthetic import SynthCommunitySmall

    ds = SynthCommunitySmall(root=tmp_path, split="train")
    batches = list(ds.loader(batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert sum(b.batch_size for b in batches) == len(ds) == 80
    assert all(b.is_symmetric() for b in batches)
    assert isinstance(ds.schema, Schema)
