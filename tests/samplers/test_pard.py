"""PARD's block sampler: the entry point and guidance, per-sample streams, stops, bounds, truncation and its
checks (an exact oracle and a trained tiny denoiser: tests/processes/test_pard.py)."""

import warnings

import pytest
import torch
from torch import nn

import graphdiff.samplers as samplers
from graphdiff.errors import ConfigError
from graphdiff.processes.pard import BlockAutoregressive
from graphdiff.samplers.pard import block_ancestral
from graphdiff.state import GraphState
from tests.processes.test_pard import EDGES, NODES, Oracle, run, schema, sorted_by_block, tiny_ppgn
from tests.samplers.batches import SPLITS, draw_in_batches


def test_sample_entry_point_and_guidance_doubles_the_calls(monkeypatch):
    monkeypatch.setitem(samplers.SAMPLERS, "pard", {"block": block_ancestral})
    sch = schema(graph_features=("a",))
    nodes, edges, sizes = sorted_by_block(sch, NODES, EDGES)
    proc = BlockAutoregressive(sch, T=10, max_block=max(sizes), max_blocks=len(sizes))
    oracle = Oracle(proc, nodes, edges, sizes)
    out = samplers.sample(proc, oracle, torch.tensor([2, 2]), steps=2, sampler="block", cond=torch.ones(2, 1))
    assert out.n_nodes.tolist() == [6, 6]
    plain = proc.last_stats["network_calls"].clone()
    samplers.sample(proc, oracle, torch.tensor([2, 2]), steps=2, sampler="block", cond=torch.ones(2, 1), guidance=1.5)
    assert torch.equal(proc.last_stats["network_calls"], 2 * plain)
    assert proc.total_stats["graphs"] == 4 and proc.total_stats["network_calls"] == int(3 * plain.sum())
    with pytest.raises(ConfigError, match="guidance"):
        samplers.sample(proc, oracle, torch.tensor([2]), steps=2, sampler="block", guidance=1.0)


def test_sample_i_is_the_same_whatever_the_batch_size():
    """Graphs of different sizes grow in one batch (samples stop at different rounds); each is the one its own
    stream gives, drawn alone or in any batch."""
    proc = BlockAutoregressive(schema(), T=10, max_block=3, max_blocks=4)
    den = tiny_ppgn(proc, seed=0).eval()
    with torch.no_grad():  # let graphs grow: favour sizes 1..3 over stopping
        den.out_size[-1].bias.copy_(torch.tensor([-1.0, 1.0, 1.0, 1.0]))

    def draw(n_nodes, noise):
        return proc.decode(block_ancestral(proc, den, proc.prior(n_nodes, generator=noise), steps=3, noise=noise))

    n = torch.ones(5, dtype=torch.long)  # the prior is the empty graph: only the batch size counts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = draw_in_batches(draw, n, 7, [5])
        assert len({g.n_nodes.item() for g in whole}) > 1  # graphs of different sizes in one batch
        for sizes in SPLITS:
            for a, b in zip(whole, draw_in_batches(draw, n, 7, sizes)):
                assert torch.equal(a.node_types(), b.node_types()) and torch.equal(a.edge_types(), b.edge_types())
                assert torch.equal(a.blocks, b.blocks), sizes


# ---- the sampler's stops and bounds -------------------------------------------------------------------------
class SizeOnly(nn.Module):
    """Uniform categories; every size prediction is ``size`` (a constant)."""

    def __init__(self, proc, size):
        super().__init__()
        self.proc, self.size = proc, size
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, state, t, cond=None, *, block=None):
        b, m = state.mask.shape
        levels = int(block[state.mask].max()) + 1
        y = torch.full((b, levels, self.proc.max_block + 1), -30.0)
        y[..., self.size] = 30.0
        return GraphState(x=torch.zeros(b, m, self.proc.kx), e=torch.zeros(b, m, m, self.proc.ke),
                          y=y.reshape(b, -1), mask=state.mask)


def test_a_stop_first_gives_empty_graphs_after_one_call():
    proc = BlockAutoregressive(schema(), T=10, max_block=3, max_blocks=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = run(proc, SizeOnly(proc, 0), b=3)
    assert out.n_nodes.tolist() == [0, 0, 0] and proc.last_stats["network_calls"].tolist() == [1, 1, 1]


def test_a_model_that_never_stops_is_bounded_by_max_blocks_with_a_warning():
    proc = BlockAutoregressive(schema(), T=10, max_block=3, max_blocks=4)
    with pytest.warns(UserWarning, match="2 of 2 samples reached max_blocks=3"):
        out = run(proc, SizeOnly(proc, 1), max_blocks=3)
    assert out.n_nodes.tolist() == [3, 3] and proc.last_stats["hit_max_blocks"] == 2
    assert proc.last_stats["network_calls"].tolist() == [4 + 3 * 2] * 2
    with pytest.warns(UserWarning, match="reached max_blocks=6"):  # default bound: max_blocks + a margin
        out = run(proc, SizeOnly(proc, 1))
    assert out.n_nodes.tolist() == [6, 6]


def test_huge_blocks_are_cut_to_max_nodes():
    sch = schema(max_nodes=5)
    proc = BlockAutoregressive(sch, T=10, max_block=5, max_blocks=5)
    with pytest.warns(UserWarning, match="past max_nodes=5"):
        out = run(proc, SizeOnly(proc, 4), b=2, max_blocks=5)
    assert out.n_nodes.tolist() == [5, 5] and proc.last_stats["truncated"] == 2
    assert proc.last_stats["blocks"].tolist() == [2, 2]  # 4 nodes, then 1 (cut from 4), then the graph is full


def test_steps_are_checked():
    proc = BlockAutoregressive(schema(), T=10, max_block=3, max_blocks=4)
    for bad in (0, -1, 11, 2.5):
        with pytest.raises(ConfigError, match="steps"):
            run(proc, SizeOnly(proc, 1), steps=bad)
    with pytest.raises(ConfigError, match="max_blocks"):
        run(proc, SizeOnly(proc, 1), max_blocks=0)
    with pytest.raises(ConfigError, match="block-causal"):
        run(proc, samplers_free_denoiser())


def samplers_free_denoiser():
    class Plain(nn.Module):
        def forward(self, state, t, cond=None):
            return state

    return Plain()
