"""PARD's block degree: its definition against peeling with networkx, resolve, the head's causality, the loss, and
the sampler drawing the degree given the size and conditioning the block's diffusion on it."""

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from graphdiff.errors import ConfigError
from graphdiff.processes.pard import BlockAutoregressive, block_degrees, block_statistics
from graphdiff.processes.order import blocks_from_state, structural_blocks
from graphdiff.samplers import SampleNoise
from graphdiff.samplers.pard import block_ancestral
from graphdiff.state import GraphState
from tests.processes.test_pard import (
    EDGES,
    GRAPHS,
    NODES,
    FakeDataset,
    Oracle,
    batch_of,
    graph_state,
    schema,
    sorted_by_block,
    tiny_ppgn,
)
from tests.processes.test_categorical import adam_steps, seeded_loss


def _peeling_degrees(n, edges, blocks):
    """Block k's degree by its definition: degrees of its nodes in the graph of blocks <= k (all must agree)."""
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    out = []
    for k in range(int(blocks.max()) + 1):
        h = g.subgraph([i for i in range(n) if blocks[i] <= k])
        degs = {h.degree(i) for i in range(n) if blocks[i] == k}
        assert len(degs) == 1, f"block {k}: its nodes have degrees {degs}"
        out.append(degs.pop())
    return out


def test_block_degree_is_the_degree_when_peeled():
    graphs = [(NODES, EDGES)] + list(GRAPHS[1:])
    for seed in range(6):  # random graphs too
        g = nx.gnp_random_graph(8, 0.35, seed=seed)
        graphs.append(([0] * 8, [(i, j, 1) for i, j in g.edges()]))
    sch = schema()
    for nodes, edges in graphs:
        ei = np.array([(i, j) for i, j, _ in edges], dtype=np.int64).reshape(-1, 2)
        blocks = structural_blocks(len(nodes), ei)
        state = graph_state(sch, nodes, edges)
        got = block_degrees(state.adjacency(), blocks_from_state(state))[0]
        assert got.tolist() == _peeling_degrees(len(nodes), [(i, j) for i, j, _ in edges], blocks)


def test_resolve_fills_max_degree_only_with_block_degree():
    sch = schema()
    spec = BlockAutoregressive.resolve({"name": "pard", "block_degree": True}, sch, FakeDataset(GRAPHS))
    expect = 0
    for nodes, edges in GRAPHS:
        ei = np.array([(i, j) for i, j, _ in edges])
        expect = max(expect, max(_peeling_degrees(len(nodes), ei.tolist(), structural_blocks(len(nodes), ei))))
    assert spec["max_degree"] == expect == block_statistics(FakeDataset(GRAPHS), 8)[2]
    assert "max_degree" not in BlockAutoregressive.resolve({"name": "pard"}, sch, FakeDataset(GRAPHS))
    proc = BlockAutoregressive(sch, **{k: v for k, v in spec.items() if k != "name"})
    kw = proc.denoiser_kwargs()
    assert kw["max_degree"] == expect and kw["node_dim"] == proc.node_states + 3
    assert "max_degree" not in BlockAutoregressive(sch, max_block=3, max_blocks=4).denoiser_kwargs()
    again = BlockAutoregressive(sch, **{k: v for k, v in proc.to_dict().items() if k != "name"})
    assert again.to_dict() == proc.to_dict()
    with pytest.raises(ConfigError, match="max_degree: 'auto' needs the training data"):
        BlockAutoregressive(sch, max_block=3, max_blocks=4, block_degree=True)
    with pytest.raises(ConfigError, match="max_degree must be an integer in 0..7"):
        BlockAutoregressive(sch, max_block=3, max_blocks=4, block_degree=True, max_degree=8)
    with pytest.raises(ConfigError, match="block_degree must be true or false"):
        BlockAutoregressive(sch, max_block=3, max_blocks=4, block_degree="yes")


def _proc(sch, **kw):
    spec = BlockAutoregressive.resolve({"block_degree": True}, sch, FakeDataset(GRAPHS))
    return BlockAutoregressive(sch, T=20, **{**spec, **kw})


def test_degree_loss_is_finite_has_a_term_per_block_and_decreases():
    sch = schema()
    proc = _proc(sch)
    batch = batch_of(sch, GRAPHS)
    den = tiny_ppgn(proc)
    parts = proc.block_losses(den, batch, generator=torch.Generator().manual_seed(0))
    n_blocks = blocks_from_state(batch).amax(1) + 1
    assert torch.equal(parts["degree_mask"].sum(1), n_blocks) and torch.isfinite(parts["degree"]).all()
    first = seeded_loss(proc, den, batch, range(1000, 1006))
    adam_steps(proc, den, batch, 60, 3e-3)
    assert seeded_loss(proc, den, batch, range(1000, 1006)) < 0.7 * first


def test_degree_logits_and_degree_inputs_are_causal():
    """The degree of block k + 1 is read at level 2k + 2 and must not see block k + 1 or later; the degree channel
    of later blocks must not reach the outputs of earlier ones."""
    sch = schema()
    proc = _proc(sch)
    den = tiny_ppgn(proc, seed=2, layers=3).eval()
    batch = batch_of(sch, GRAPHS)
    x0, e0 = proc.categories(batch)
    mask = batch.mask
    blocks = blocks_from_state(batch)
    deg = block_degrees(batch.adjacency(), blocks).gather(1, blocks.clamp(min=0)) * mask
    clean = proc.onehot(x0, e0, mask)
    t = torch.full_like(blocks, 5) * mask
    with torch.no_grad():
        full = proc.predict_blocks(den, clean.x, clean.e, clean.x, clean.e, t, blocks, mask, mask, node_degree=deg)
        assert full[3].shape[-2:] == (proc.max_block + 1, proc.max_degree + 1)
        for k in range(int(blocks.max())):
            cm = mask & (blocks <= k)
            part = proc.predict_blocks(den, clean.x, clean.e, clean.x, clean.e, t, blocks, cm, cm, node_degree=deg)
            assert torch.allclose(full[3][:, 2 * k + 2], part[3][:, 2 * k + 2], atol=1e-5)
            later = torch.where(blocks > k, deg + 3, deg)  # other degrees for blocks after k
            moved = proc.predict_blocks(den, clean.x, clean.e, clean.x, clean.e, t, blocks, mask, mask,
                                        node_degree=later)
            early = blocks <= k
            assert torch.allclose(full[0][early], moved[0][early], atol=1e-5)
            assert torch.allclose(full[3][:, : 2 * k + 3], moved[3][:, : 2 * k + 3], atol=1e-5)


def _graph_by_block(sch):
    """The test graph with its nodes sorted by block, its block sizes and its peeling degrees per block."""
    nodes, edges, sizes = sorted_by_block(sch, NODES, EDGES)
    ei = np.array([(i, j) for i, j, _ in edges])
    return nodes, edges, sizes, _peeling_degrees(len(nodes), ei.tolist(), structural_blocks(len(nodes), ei))


class DegreeOracle(Oracle):
    """The exact oracle plus the block degrees (at every candidate size); records the degree channel it is given."""

    def __init__(self, proc, nodes, edges, sizes, degrees):
        super().__init__(proc, nodes, edges, sizes)
        self.degrees, self.seen = degrees, []

    def forward(self, state, t, cond=None, *, block=None):
        out = super().forward(state, t, cond, block=block)
        self.seen.append((state.x[..., -1].clone(), block.clone(), state.mask.clone()))
        levels = out.y.shape[1] // (self.proc.max_block + 1)
        want = [self.degrees[c // 2] if c // 2 < len(self.degrees) else 0 for c in range(levels)]
        d = self.big * nn.functional.one_hot(torch.tensor(want), self.proc.max_degree + 1).float()
        d = d.unsqueeze(1).expand(-1, self.proc.max_block + 1, -1).reshape(levels, -1)
        size = out.y.reshape(out.y.shape[0], levels, -1)
        y = torch.cat([size, d.unsqueeze(0).expand(size.shape[0], -1, -1)], -1).reshape(size.shape[0], -1)
        return GraphState(x=out.x, e=out.e, y=y, mask=out.mask)


def test_an_oracle_with_degrees_reproduces_the_graph_and_conditions_each_block_on_its_degree():
    sch = schema()
    nodes, edges, sizes, degrees = _graph_by_block(sch)
    proc = BlockAutoregressive(sch, T=10, max_block=max(sizes), max_blocks=len(sizes), block_degree=True,
                               max_degree=max(degrees))
    oracle = DegreeOracle(proc, nodes, edges, sizes, degrees)
    target = graph_state(sch, nodes, edges)
    assert float(proc.loss(oracle, target, generator=torch.Generator().manual_seed(0))) < 1e-6
    b = 2
    prior = proc.prior(torch.tensor([1] * b), generator=SampleNoise.for_run(0, 0, b))
    oracle.seen.clear()
    out = proc.decode(block_ancestral(proc, oracle, prior, steps=3, noise=SampleNoise.for_run(0, 0, b)))
    assert out.n_nodes.tolist() == [len(nodes)] * b
    assert torch.equal(out.edge_types(), target.edge_types().expand(b, -1, -1))
    # every noisy copy the network saw carried its block's degree (level 2k + 1 = noisy copy of block k)
    checked = 0
    for channel, levels, mask in oracle.seen:
        noisy = mask & (levels % 2 == 1)
        for lv, value in zip(levels[noisy].tolist(), channel[noisy].tolist()):
            assert value == pytest.approx(degrees[(lv - 1) // 2] / proc.max_degree)
            checked += 1
    assert checked > 0


def test_the_sampler_returns_the_blocks_and_counts_nodes_whose_drawn_degree_came_out():
    sch = schema()
    nodes, edges, sizes, degrees = _graph_by_block(sch)
    proc = BlockAutoregressive(sch, T=10, max_block=max(sizes), max_blocks=len(sizes), block_degree=True,
                               max_degree=max(degrees) + 1)
    b = 2
    blocks = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    # the oracle draws the true degrees, then one too many for the last block (its edges stay the true ones)
    for drawn, matched in ((degrees, len(nodes)), (degrees[:-1] + [degrees[-1] + 1], len(nodes) - sizes[-1])):
        proc.reset_stats()
        prior = proc.prior(torch.tensor([1] * b), generator=SampleNoise.for_run(0, 0, b))
        oracle = DegreeOracle(proc, nodes, edges, sizes, drawn)
        out = proc.decode(block_ancestral(proc, oracle, prior, steps=2, noise=SampleNoise.for_run(0, 0, b)))
        assert torch.equal(out.edge_types(), graph_state(sch, nodes, edges).edge_types().expand(b, -1, -1))
        assert torch.equal(out.blocks, blocks.expand(b, -1))  # the block each node was generated in
        assert torch.equal(proc.last_stats["node_degree"][:, : len(nodes)], torch.tensor(drawn)[blocks].expand(b, -1))
        assert proc.last_stats["degree_matched"] == b * matched
        assert proc.total_stats["nodes"] == b * len(nodes) and proc.total_stats["degree_matched"] == b * matched
