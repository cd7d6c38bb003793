"""PARD's structural partial order: a dense re-statement of the rule, equivariance, hand-checked graphs, stores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphdiff.data.store import GraphStore
from graphdiff.errors import ConfigError, DataError, GraphdiffError
from graphdiff.processes.order import block_sizes, blocks_from_state, store_blocks, structural_blocks


def reference_blocks(n: int, edges: np.ndarray, max_hops: int = 3) -> np.ndarray:
    """The rule of the module docstring with dense matrices, one node set per round (slow, obviously right)."""
    adj = np.zeros((n, n), dtype=object)  # Python integers: no overflow, no rounding
    for u, v in edges:
        adj[u, v] = adj[v, u] = 1
    left = np.ones(n, dtype=bool)
    peel = np.zeros(n, dtype=np.int64)
    r = 0
    while left.any():
        r += 1
        a = adj * np.outer(left, left)  # edges among the remaining nodes
        x = np.ones(n, dtype=object)
        w = np.zeros(n, dtype=object)
        for _ in range(max_hops):
            x = x + a.dot(x)
            w = w * n + x
        low = min(w[left])
        taken = left & (w == low)
        peel[taken] = r
        left &= ~taken
    return r - peel


@st.composite
def graphs(draw, max_nodes: int = 12):
    """Random simple graphs (isolated nodes and several components included), edges listed once as (i, j)."""
    n = draw(st.integers(0, max_nodes))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    keep = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    return n, np.array([p for p, k in zip(pairs, keep) if k], dtype=np.int64).reshape(-1, 2)


def _degrees(n: int, edges: np.ndarray) -> np.ndarray:
    return np.bincount(edges.reshape(-1), minlength=n)


@settings(max_examples=120, deadline=None)
@given(graphs(), st.randoms(use_true_random=False), st.integers(0, 4))
def test_relabelling_permutes_blocks_and_matches_reference(graph, rnd, hops):
    n, edges = graph
    blocks = structural_blocks(n, edges, max_hops=hops)
    np.testing.assert_array_equal(blocks, reference_blocks(n, edges, hops))
    perm = np.array(rnd.sample(range(n), n), dtype=np.int64)  # old node i becomes perm[i]
    moved = perm[edges] if len(edges) else edges
    if len(moved):  # also flip the orientation of some edges
        moved[::2] = moved[::2, ::-1]
    pblocks = structural_blocks(n, moved, max_hops=hops)
    np.testing.assert_array_equal(pblocks[perm], blocks)
    assert block_sizes(pblocks) == block_sizes(blocks)
    pairs = sorted(zip(blocks.tolist(), _degrees(n, edges).tolist()))
    assert sorted(zip(pblocks.tolist(), _degrees(n, moved).tolist())) == pairs
    if n:  # blocks are numbered 0..P-1 without gaps
        assert set(blocks.tolist()) == set(range(int(blocks.max()) + 1))


def _path(n):
    return np.array([(i, i + 1) for i in range(n - 1)], dtype=np.int64).reshape(-1, 2)


def test_hand_checked_graphs():
    # path: the two ends are peeled first, the middle is generated first
    assert structural_blocks(3, _path(3)).tolist() == [1, 0, 1]
    assert structural_blocks(5, _path(5)).tolist() == [2, 1, 0, 1, 2]
    assert structural_blocks(6, _path(6)).tolist() == [2, 1, 0, 0, 1, 2]
    # star: all leaves in one block, generated after the centre
    star = np.array([(0, i) for i in range(1, 6)])
    assert structural_blocks(6, star).tolist() == [0, 1, 1, 1, 1, 1]
    assert block_sizes(structural_blocks(6, star)) == [[1, 5]]
    # cycle: every node alike, one block
    cycle = np.array([(i, (i + 1) % 7) for i in range(7)])
    assert structural_blocks(7, cycle).tolist() == [0] * 7
    # ties broken by higher-order degree: leaf 3 hangs on a degree-2 node, leaves 0 and 4 on a degree-3 node
    spider = np.array([(0, 1), (1, 2), (2, 3), (1, 4)])
    assert structural_blocks(5, spider).tolist() == [1, 0, 1, 2, 1]
    assert structural_blocks(5, spider, max_hops=1).tolist() == [1, 0, 0, 1, 1]  # degree only: leaves tie
    assert structural_blocks(5, spider, max_hops=0).tolist() == [0] * 5  # no autoregression: one block
    # isolated nodes are peeled first (generated last); empty graphs give empty arrays
    assert structural_blocks(4, np.array([(0, 1)])).tolist() == [0, 0, 1, 1]
    assert structural_blocks(0, np.zeros((0, 2), int)).tolist() == []
    assert structural_blocks(2, []).tolist() == [0, 0]


def test_molecules_from_smiles():
    from graphdiff.convert import from_smiles

    # ethylbenzene, heavy atoms in SMILES order: CH3, CH2, ring c2..c7 (bond orders do not matter)
    state = from_smiles(["CCc1ccccc1", "CC(=O)O"])
    blocks = blocks_from_state(state)
    assert blocks.dtype == torch.long and blocks.shape == state.mask.shape
    assert blocks[0].tolist() == [2, 1, 0, 0, 0, 0, 0, 0]  # ring first, then CH2, then CH3
    assert blocks[1].tolist() == [1, 0, 1, 1, -1, -1, -1, -1]  # acetic acid: carboxyl C, then the three leaves
    assert block_sizes(blocks) == [[6, 1, 1], [1, 3]]
    edges = torch.nonzero(torch.triu(state.adjacency()[0], 1)).numpy()
    np.testing.assert_array_equal(structural_blocks(8, edges), blocks[0].numpy())


def test_blocks_from_state_with_scattered_padding():
    from graphdiff.convert import from_smiles

    state = from_smiles(["CCc1ccccc1", "CC(C)CCO", "O"])
    blocks = blocks_from_state(state)
    perm = torch.stack([torch.randperm(state.max_nodes, generator=torch.Generator().manual_seed(s)) for s in range(3)])
    moved = state.permute(perm)
    assert not bool(moved.mask[:, :3].all())  # padding now sits between real slots
    got = blocks_from_state(moved)
    torch.testing.assert_close(got, torch.gather(blocks, 1, perm))
    assert bool((got[~moved.mask] == -1).all())
    assert block_sizes(got) == block_sizes(blocks)


@pytest.mark.parametrize("workers, chunk_nodes", [(1, 1 << 20), (1, 150), (2, 150)])
def test_store_blocks_match_per_graph(tmp_path, workers, chunk_nodes):
    from graphdiff.data import load_dataset

    store = load_dataset("synth_community_small", root=tmp_path).store
    got = store_blocks(store, workers=workers, chunk_nodes=chunk_nodes)
    assert got.shape == store.node_type.shape and got.dtype == np.int16
    want = np.concatenate([structural_blocks(len(nt), ei) for nt, ei, _ in store.iter_graphs()])
    np.testing.assert_array_equal(got, want)
    idx = np.arange(len(store))
    state_blocks = blocks_from_state(store.to_state(idx, store.schema(("node",), ("none", "edge"))))
    np.testing.assert_array_equal(state_blocks[state_blocks >= 0].numpy(), want)
    np.testing.assert_array_equal(store_blocks(store, workers=1, max_hops=1), np.concatenate(
        [structural_blocks(len(nt), ei, max_hops=1) for nt, ei, _ in store.iter_graphs()]))


def test_store_blocks_with_empty_graphs():
    store = GraphStore.from_lists([np.zeros(3), np.zeros(0), np.zeros(2)], [_path(3), _path(0), _path(2)])
    assert store_blocks(store, workers=1).tolist() == [1, 0, 1, 0, 0]
    empty = GraphStore.from_lists([], [])
    assert store_blocks(empty, workers=1).tolist() == []


def _raises(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, GraphdiffError) and "\n" not in str(info.value)


def test_errors():
    _raises(DataError, r"edge_index: edge 1 \(2, 3\) has a node index outside 0\.\.2", structural_blocks, 3,
            np.array([(0, 1), (2, 3)]))
    _raises(DataError, r"edge 0 \(-1, 1\) has a node index outside", structural_blocks, 3, np.array([(-1, 1)]))
    _raises(DataError, r"edge_index: edge 1 \(2, 2\) is a self-loop", structural_blocks, 3, np.array([(0, 1), (2, 2)]))
    _raises(DataError, r"edge_index: edge 2 \(1, 0\) repeats an earlier edge", structural_blocks, 3,
            np.array([(0, 1), (1, 2), (1, 0)]))
    _raises(DataError, r"edge_index: expected shape \[M, 2\], got \(2, 3\)", structural_blocks, 3,
            np.array([(0, 1, 2), (1, 2, 0)]))
    _raises(DataError, r"edge_index: expected integer node indices, got dtype float64", structural_blocks, 3,
            np.array([(0.0, 1.0)]))
    _raises(DataError, r"num_nodes: must be an integer >= 0, got -1", structural_blocks, -1, [])
    _raises(ConfigError, r"max_hops: must be an integer >= 0, got -1", structural_blocks, 2, [], max_hops=-1)
    _raises(ConfigError, r"max_hops: must be an integer >= 0, got 1.5", structural_blocks, 2, [], max_hops=1.5)
    _raises(DataError, r"graph 0: 1000000 nodes are too many for exact keys with max_hops=4", structural_blocks,
            10**6, [], max_hops=4)
    _raises(ConfigError, r"workers: must be >= 1, got 0", store_blocks,
            GraphStore.from_lists([np.zeros(2)], [_path(2)]), workers=0)
    _raises(DataError, r"blocks: expected shape", block_sizes, np.zeros((1, 2, 3), int))


def test_store_errors_name_the_graph():
    ok = GraphStore.from_lists([np.zeros(3), np.zeros(3)], [_path(3), _path(3)])

    def bad_store(edges):  # the constructor does not validate: a store as a corrupted cache could hold it
        return GraphStore(ok.node_ptr, ok.node_type, ok.edge_ptr, np.array(edges, dtype=np.int8), ok.edge_type)

    _raises(DataError, r"graph 1: edge \(1, 3\) has a node index outside 0\.\.2", store_blocks,
            bad_store([(0, 1), (1, 2), (0, 1), (1, 3)]), workers=1)
    _raises(DataError, r"graph 1: edge \(2, 2\) is a self-loop", store_blocks,
            bad_store([(0, 1), (1, 2), (0, 1), (2, 2)]), workers=1)
