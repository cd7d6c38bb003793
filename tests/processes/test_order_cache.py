"""PARD's structural order kept with a prepared dataset: computed once, stored next to the store, carried by every
batch (``GraphState.blocks``), identical to peeling the batch, and gone when the store is rebuilt."""

import numpy as np
import pytest
import torch

import graphdiff.processes.order as order_module
from graphdiff.cli import main
from graphdiff.data import load_dataset
from graphdiff.errors import DataError
from graphdiff.processes.pard import BlockAutoregressive
from graphdiff.processes.order import blocks_file, blocks_from_state, dataset_blocks, structural_blocks
from graphdiff.train import group_by_size
from tests.processes.test_pard import tiny_ppgn


@pytest.fixture()
def ds(tmp_path):
    return load_dataset("synth_community_small", root=tmp_path, download=False)


def test_computed_once_stored_and_equal_to_peeling_each_graph(ds, monkeypatch):
    path = blocks_file(ds)
    assert not path.is_file()
    blocks = dataset_blocks(ds, attach=False)
    assert path.is_file() and isinstance(blocks, np.memmap)
    ptr = np.asarray(ds.store.node_ptr)
    for g in range(len(ds)):
        n, edges = int(ptr[g + 1] - ptr[g]), ds.store.graph(g)[1]
        assert np.array_equal(blocks[ptr[g]:ptr[g + 1]], structural_blocks(n, edges)), g

    def refuse(*a, **k):
        raise AssertionError("the stored order should have been read, not computed again")

    monkeypatch.setattr(order_module, "store_blocks", refuse)
    again = load_dataset("synth_community_small", root=ds.root, download=False)
    assert np.array_equal(dataset_blocks(again), blocks)
    assert again.store.node_blocks is not None  # attached by default


def test_a_file_that_does_not_fit_the_store_is_recomputed(ds):
    path = blocks_file(ds)
    np.save(path, np.zeros(3, dtype=np.int16))
    blocks = dataset_blocks(ds, attach=False)
    assert blocks.shape == (int(ds.store.node_ptr[-1]),) and np.load(path).shape == blocks.shape


def test_reprocessing_the_dataset_drops_the_stored_order(ds):
    dataset_blocks(ds, attach=False)
    assert blocks_file(ds).is_file()
    rebuilt = load_dataset("synth_community_small", root=ds.root, download=False, force_reload=True)
    assert rebuilt.processed_now and not blocks_file(rebuilt).is_file()


def test_batches_carry_their_blocks_through_grouping_padding_and_permutation(ds):
    train = ds.split("train")
    dataset_blocks(train)
    sizes = torch.as_tensor(train.num_nodes())
    order = group_by_size(torch.randperm(len(train), generator=torch.Generator().manual_seed(0)), sizes, 8, 2,
                          torch.Generator().manual_seed(1))
    batch = train.batch(order[:8].tolist(), max_nodes=train.schema.max_nodes)
    assert batch.blocks is not None and batch.blocks.shape == batch.mask.shape
    assert torch.equal(batch.blocks, blocks_from_state(batch))
    perm = torch.randperm(batch.max_nodes, generator=torch.Generator().manual_seed(2))
    moved = batch.permute(perm)
    assert torch.equal(moved.blocks, blocks_from_state(moved))
    assert torch.equal(batch.compact().blocks, blocks_from_state(batch.compact()))


def test_pard_loss_is_the_same_with_carried_or_peeled_blocks(ds):
    train = ds.split("train")
    proc = BlockAutoregressive(train.schema, T=10, max_block=train.schema.max_nodes, max_blocks=8)
    den = tiny_ppgn(proc)
    peeled = train.batch(list(range(6)))
    assert peeled.blocks is None
    proc.prepare_dataset(train)
    carried = train.batch(list(range(6)))
    assert carried.blocks is not None
    a = proc.loss(den, peeled, generator=torch.Generator().manual_seed(3))
    b = proc.loss(den, carried, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    wrong = carried.clone()
    wrong.blocks[0, 0] = -1
    with pytest.raises(DataError, match="batch.blocks must be >= 0 exactly at real nodes"):
        proc.loss(den, wrong)


def test_prepare_pard_order_from_the_command_line(tmp_path, capsys):
    args = ["datasets", "prepare", "synth_community_small", "--root", str(tmp_path), "--pard-order", "--workers", "1"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "PARD structural order of" in first and "ordered in" in first
    assert main(args) == 0
    assert "order up to date" in capsys.readouterr().out
    ds = load_dataset("synth_community_small", root=tmp_path, download=False)
    assert blocks_file(ds).is_file()
