"""Per-sample random streams (``SampleNoise``): sample ``i`` of a run draws from its own generator, seeded from
``(seed, i)``, and every draw is made at the schema's full size then sliced."""

import torch

from graphdiff.samplers import SampleNoise, sample_seed


def test_seeds_depend_on_the_run_seed_and_the_sample_index_only():
    seeds = [sample_seed(s, i) for s in (0, 1) for i in range(50)]
    assert len(set(seeds)) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert sample_seed(7, 3) == sample_seed(7, 3)
    assert SampleNoise.for_run(7, 2, 3).seeds == SampleNoise.for_run(7, 0, 5).seeds[2:]


def test_each_row_is_its_own_stream():
    whole = SampleNoise.for_run(4, 0, 3)
    alone = SampleNoise.for_run(4, 1, 1)
    for draw in (lambda z: z.rand(5), lambda z: z.randn(2, 3), lambda z: z.rand(4)):
        a, b = draw(whole), draw(alone)
        assert torch.equal(a[1], b[0])  # the same sequence of draws, whatever the other rows
    assert not torch.equal(a[0], a[1])


def test_subset_shares_the_generators():
    noise = SampleNoise.for_run(0, 0, 4)
    ref = SampleNoise.for_run(0, 0, 4)
    sub = noise.subset([3, 1])
    assert sub.seeds == [noise.seeds[3], noise.seeds[1]] and len(sub) == 2
    first = sub.rand(2)
    assert torch.equal(first, ref.rand(2)[[3, 1]])
    # rows 1 and 3 have moved on; rows 0 and 2 have not
    later, fresh = noise.rand(2), SampleNoise.for_run(0, 0, 4).rand(2)
    assert torch.equal(later[[0, 2]], fresh[[0, 2]]) and not torch.equal(later[[1, 3]], fresh[[1, 3]])


def test_draws_are_made_at_full_size_and_sliced():
    """A graph padded to 4 or to 7 slots sees the same noise in its first 4, and its stream ends in the same place."""
    small, big = SampleNoise.for_run(1, 0, 2), SampleNoise.for_run(1, 0, 2)
    a, b = small.randn_nodes(10, 4, 3), big.randn_nodes(10, 7, 3)
    assert a.shape == (2, 4, 3) and torch.equal(a, b[:, :4])
    s, t = small.randn_symmetric(10, 4), big.randn_symmetric(10, 7)
    assert torch.equal(s, s.transpose(1, 2)) and (s.diagonal(dim1=1, dim2=2) == 0).all()
    assert torch.equal(s, t[:, :4, :4])
    assert torch.equal(small.rand(3), big.rand(3))  # both streams at the same position


def test_node_counts_follow_the_histogram_per_sample():
    probs = torch.tensor([0.0, 0.0, 0.5, 0.0, 0.5])
    counts = SampleNoise.for_run(2, 0, 400).node_counts(probs)
    assert counts.shape == (400,) and set(counts.tolist()) == {2, 4}
    assert abs((counts == 4).float().mean().item() - 0.5) < 0.08
    assert torch.equal(SampleNoise.for_run(2, 5, 1).node_counts(probs), counts[5:6])
