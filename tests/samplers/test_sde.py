"""GDSS's SDE samplers (em, pc, s4, ode): per-sample streams (each against an exact score:
tests/processes/test_gdss.py)."""

import pytest
import torch

import graphdiff.samplers as samplers
from graphdiff.nn import build_denoiser
from graphdiff.processes import GDSSProcess
from tests.processes.test_gdss import plain_schema
from tests.samplers.batches import SPLITS, draw_in_batches


@pytest.mark.parametrize("sampler", ["em", "pc", "s4", "ode"])
def test_sample_i_is_the_same_whatever_the_batch_size(sampler):
    proc = GDSSProcess(plain_schema(10), node_features="degree", max_feat_num=3)
    torch.manual_seed(0)
    den = build_denoiser("gdss", x_net={"type": "gcn", "depth": 2, "nhid": 8}, adj_net={"nhid": 8, "num_layers": 2},
                         x_dim=proc.x_dim, max_nodes=10)
    n = torch.tensor([5, 3, 10, 5, 7])

    def draw(sizes, noise):
        return samplers.sample(proc, den, sizes, steps=3, sampler=sampler, noise=noise, decode=False)

    whole = draw_in_batches(draw, n, 3, [5])
    assert (whole[0].e - whole[3].e).abs().max() > 0.1  # two graphs of 5 nodes: their own streams
    for sizes in SPLITS:
        for a, b in zip(whole, draw_in_batches(draw, n, 3, sizes)):
            torch.testing.assert_close(b.x, a.x, rtol=0, atol=1e-5)
            torch.testing.assert_close(b.e, a.e, rtol=0, atol=1e-5)
