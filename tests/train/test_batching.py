"""Size-grouped epoch orders: still a permutation, reproducible, tighter batches, exact resume, clear errors."""

from __future__ import annotations

import pytest
import torch

from graphdiff.errors import ConfigError
from graphdiff.train import TrainConfig, Trainer, derive_seed, group_by_size

from .test_trainer import _assert_same_state, _trainer
from .toys import RUN_CONFIG, NoiseProcess, make_denoiser, resume_config


def _batches(order, bs):
    return [order[i:i + bs] for i in range(0, len(order), bs)]


def _padded_nodes(order, sizes, bs):
    """Slots a dense batch pads to, summed over the epoch (what a dense denoiser pays for)."""
    return sum(len(b) * int(sizes[b].max()) for b in _batches(order, bs))


def test_grouped_order_is_a_permutation_with_tight_batches():
    g = torch.Generator().manual_seed(0)
    sizes = torch.randint(6, 39, (1000,), generator=g)  # ZINC-like spread
    order = torch.randperm(1000, generator=g)
    grouped = group_by_size(order, sizes, 32, 10, torch.Generator().manual_seed(1))
    assert torch.equal(torch.sort(grouped).values, torch.arange(1000))
    # inside a window of 10 batches the spread of a batch is a tenth of the range or so; random batches span it.
    # The last window holds only 40 graphs (one full batch), so one batch may span more.
    spread = sorted(int(sizes[b].max() - sizes[b].min()) for b in _batches(grouped, 32)[:-1])
    random_spread = [int(sizes[b].max() - sizes[b].min()) for b in _batches(order, 32)[:-1]]
    assert spread[-2] <= 12 and min(random_spread) >= 20
    assert _padded_nodes(grouped, sizes, 32) < 0.8 * _padded_nodes(order, sizes, 32)
    # the batches are shuffled: sizes do not fall monotonically over the epoch
    firsts = [int(sizes[b[0]]) for b in _batches(grouped, 32)[:-1]]
    assert firsts != sorted(firsts, reverse=True)
    # the partial last batch stays last, so the trainer's slicing still yields 31 full batches and 1 of 8
    assert len(_batches(grouped, 32)[-1]) == 1000 % 32


def test_window_of_the_whole_epoch_sorts_everything_into_batches():
    sizes = torch.tensor([5, 1, 4, 2, 3, 6, 8, 7])
    order = torch.randperm(8, generator=torch.Generator().manual_seed(3))
    grouped = group_by_size(order, sizes, 2, 4, torch.Generator().manual_seed(4))
    pairs = sorted(tuple(sorted(int(sizes[i]) for i in b)) for b in _batches(grouped, 2))
    assert pairs == [(1, 2), (3, 4), (5, 6), (7, 8)]


def test_trainer_order_is_reproducible_and_off_by_default(train_set, tmp_path):
    plain = _trainer(train_set, tmp_path / "a", resume_config(batch_size=4))
    grouped = _trainer(train_set, tmp_path / "b", resume_config(batch_size=4, group_by_size=4))
    again = _trainer(train_set, tmp_path / "c", resume_config(batch_size=4, group_by_size=4))
    sizes = torch.as_tensor(train_set.num_nodes())
    g = torch.Generator().manual_seed(0)
    for epoch in range(3):
        base = plain._epoch_order(epoch)
        # off: exactly the seeded permutation the trainer always drew (old runs resume unchanged)
        g.manual_seed(derive_seed(7, "epoch", epoch))
        assert torch.equal(base, torch.randperm(len(train_set), generator=g))
        order = grouped._epoch_order(epoch)
        assert torch.equal(order, again._epoch_order(epoch))
        assert torch.equal(torch.sort(order).values, torch.arange(len(train_set)))
        assert _padded_nodes(order, sizes, 4) < _padded_nodes(base, sizes, 4)


def test_resume_with_grouping_is_exact(train_set, tmp_path):
    opts = dict(batch_size=6, group_by_size=3)
    full = _trainer(train_set, tmp_path / "full", resume_config(max_steps=14, **opts))
    full.fit()
    half = _trainer(train_set, tmp_path / "split", resume_config(max_steps=7, **opts))
    half.fit()
    again = _trainer(train_set, tmp_path / "split", resume_config(max_steps=14, **opts))
    again.fit(resume=True)
    _assert_same_state(full, again)


def test_bad_group_by_size_and_dataset_without_sizes(tmp_path, train_set):
    with pytest.raises(ConfigError, match="group_by_size must be an integer >= 0"):
        TrainConfig.from_dict({"group_by_size": -1})

    class NoSizes:
        def __len__(self):
            return len(train_set)

        def batch(self, idx):
            return train_set.batch(idx)

    with pytest.raises(ConfigError, match="group_by_size needs a dataset with num_nodes"):
        Trainer(NoiseProcess(), make_denoiser(), NoSizes(), resume_config(group_by_size=2), tmp_path,
                run_config=RUN_CONFIG, progress=False)
