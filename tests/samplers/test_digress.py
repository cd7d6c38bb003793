"""DiGress's ancestral sampler: per-sample streams through a graph transformer that sees whole padded graphs (the
exact-posterior oracle, guidance and step skipping: tests/processes/test_digress.py)."""

import torch

import graphdiff.samplers as samplers
from graphdiff.nn import build_denoiser
from graphdiff.processes.digress import DiscreteDiffusion
from tests.processes.test_categorical import small_schema
from tests.samplers.batches import SPLITS, draw_in_batches

TINY_TRANSFORMER = {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16, "ff_e": 8,
                    "ff_y": 8, "extra_features": ["cycles", "spectral"]}


def test_sample_i_is_the_same_whatever_the_batch_size():
    proc = DiscreteDiffusion(small_schema(), T=20)
    torch.manual_seed(0)
    den = build_denoiser("graph_transformer", **proc.denoiser_kwargs(), **TINY_TRANSFORMER)
    n = torch.tensor([5, 3, 10, 5, 7])

    def draw(sizes, noise):
        return samplers.sample(proc, den, sizes, steps=4, sampler="ancestral", noise=noise)

    whole = draw_in_batches(draw, n, 3, [5])
    assert not torch.equal(whole[0].e, whole[3].e)  # two graphs of 5 nodes: their own streams
    for sizes in SPLITS:
        for a, b in zip(whole, draw_in_batches(draw, n, 3, sizes)):
            assert torch.equal(a.x, b.x) and torch.equal(a.e, b.e), sizes
