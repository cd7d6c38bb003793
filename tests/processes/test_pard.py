"""PARD (block-autoregressive diffusion): resolve, the doubled-node-set training input and its causality, the loss,
an exact oracle that the loss scores ~0 and the sampler reproduces, and a tiny denoiser trained then sampled (the
block sampler's own tests: tests/samplers/test_pard.py)."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from graphdiff.errors import ConfigError, DataError, SchemaError
from graphdiff.nn.ppgn import PPGNTransformerDenoiser
from graphdiff.processes.pard import BlockAutoregressive, block_statistics
from graphdiff.processes.order import blocks_from_state, structural_blocks
from graphdiff.samplers import SampleNoise
from graphdiff.samplers.pard import block_ancestral
from graphdiff.schema import Schema
from graphdiff.state import GraphState
from tests.processes.test_categorical import adam_steps, seeded_loss


def schema(max_nodes=8, graph_features=()):
    hist = [0] * (max_nodes + 1)
    hist[min(5, max_nodes)] = 1
    return Schema(node_categories=("A", "B", "C"), edge_categories=("none", "single", "double"), max_nodes=max_nodes,
                  node_count_hist=tuple(hist), node_marginals=(0.5, 0.3, 0.2), edge_marginals=(0.8, 0.15, 0.05),
                  graph_features=tuple(graph_features))


# a 6-node graph: triangle 0-1-2, 3 hanging off 0, 4 off 3, 5 off 1 (three structural blocks)
NODES = [0, 1, 2, 0, 1, 2]
EDGES = [(0, 1, 1), (1, 2, 2), (0, 2, 1), (0, 3, 1), (3, 4, 2), (1, 5, 1)]


def graph_state(sch, nodes, edges, n_slots=None, y=None):
    n = len(nodes)
    n_slots = n_slots or n
    nt = torch.zeros(1, n_slots, dtype=torch.long)
    nt[0, :n] = torch.tensor(nodes)
    et = torch.zeros(1, n_slots, n_slots, dtype=torch.long)
    for i, j, k in edges:
        et[0, i, j] = et[0, j, i] = k
    mask = torch.arange(n_slots).unsqueeze(0) < n
    return GraphState.from_types(nt, et, mask, sch, y=y)


def sorted_by_block(sch, nodes, edges):
    """The graph with its nodes relabelled in generation order (block 0 first), as the sampler lays them out."""
    blocks = structural_blocks(len(nodes), np.array([(i, j) for i, j, _ in edges]))
    order = np.argsort(blocks, kind="stable")
    where = {int(o): k for k, o in enumerate(order)}
    nodes2 = [nodes[o] for o in order]
    edges2 = [(where[i], where[j], k) for i, j, k in edges]
    return nodes2, edges2, np.bincount(blocks).tolist()


def batch_of(sch, graphs, n_slots=None, y=None):
    n_slots = n_slots or max(len(g[0]) for g in graphs)
    return GraphState.cat([graph_state(sch, nd, ed, n_slots) for nd, ed in graphs]) if y is None else \
        GraphState.cat([graph_state(sch, nd, ed, n_slots, y=y[i:i + 1]) for i, (nd, ed) in enumerate(graphs)])


GRAPHS = [
    (NODES, EDGES),
    ([1, 0, 0, 2], [(0, 1, 1), (1, 2, 1), (2, 3, 1)]),  # a path: ends generated last
    ([2, 2, 1, 0, 1], [(0, 1, 1), (0, 2, 1), (0, 3, 2), (0, 4, 1)]),  # a star
    ([0, 1, 2, 0, 2, 1, 0], [(0, 1, 1), (1, 2, 1), (2, 3, 2), (3, 4, 1), (4, 5, 1), (5, 6, 1), (6, 0, 1)]),
]


def tiny_ppgn(proc, seed=0, hidden=16, layers=2):
    torch.manual_seed(seed)
    return PPGNTransformerDenoiser(**proc.denoiser_kwargs(), n_layers=layers, hidden=hidden, n_heads=2)


class FakeDataset:
    def __init__(self, graphs):
        self.graphs = graphs

    def __len__(self):
        return len(self.graphs)

    def graph(self, i):
        nodes, edges = self.graphs[i]
        ei = np.array([(a, b) for a, b, _ in edges], dtype=np.int64).reshape(-1, 2)
        return np.array(nodes), ei, np.array([k for *_, k in edges], dtype=np.int64)


# ---- configuration ------------------------------------------------------------------------------------------
def test_resolve_fills_block_sizes_from_the_structural_order_and_refuses_bad_data():
    sch = schema()
    spec = BlockAutoregressive.resolve({"name": "pard"}, sch, FakeDataset(GRAPHS))
    sizes = [np.bincount(structural_blocks(len(nd), np.array([(i, j) for i, j, _ in ed]))) for nd, ed in GRAPHS]
    assert spec["max_block"] == max(int(s.max()) for s in sizes) and spec["max_blocks"] == max(len(s) for s in sizes)
    assert BlockAutoregressive.resolve({"max_block": 3}, sch, FakeDataset(GRAPHS))["max_block"] == 3
    proc = BlockAutoregressive(sch, **{k: v for k, v in spec.items() if k != "name"})
    assert proc.denoiser_kwargs()["max_block"] == spec["max_block"]
    assert proc.denoiser_kwargs()["max_nodes"] == 2 * sch.max_nodes + 1
    again = BlockAutoregressive(sch, **{k: v for k, v in proc.to_dict().items() if k != "name"})
    assert again.to_dict() == proc.to_dict() and proc.name == "pard"
    with pytest.raises(DataError, match="empty"):
        BlockAutoregressive.resolve({}, sch, FakeDataset([]))
    big = ([0] * 9, [(i, i + 1, 1) for i in range(8)])
    with pytest.raises(SchemaError, match="graph 1: 9 nodes.*max_nodes=8"):
        BlockAutoregressive.resolve({}, sch, FakeDataset([GRAPHS[1], big]))
    with pytest.raises(ConfigError, match="max_block"):
        BlockAutoregressive(sch)  # 'auto' without resolve
    with pytest.raises(ConfigError, match="max_blocks"):
        BlockAutoregressive(sch, max_block=2, max_blocks=0)


@pytest.mark.parametrize("chunk_nodes", [1 << 20, 37], ids=["one-run", "many-runs"])
def test_resolve_on_a_stored_dataset_matches_graph_by_graph(tmp_path, monkeypatch, chunk_nodes):
    import graphdiff.processes.order as order_module
    from graphdiff.data import load_dataset
    from tests.conftest import shared_root

    monkeypatch.setattr(order_module, "_CHUNK_NODES", chunk_nodes)  # runs of graphs of ~37 nodes: many runs

    root = shared_root(tmp_path, "community_small")
    train = load_dataset("community_small", root=root, download=False).split("train")

    class Plain:  # the same graphs without the store: peeled one by one
        def __len__(self):
            return len(train)

        def graph(self, i):
            return train.graph(i)

    fast = block_statistics(train, train.schema.max_nodes)
    assert fast == block_statistics(Plain(), train.schema.max_nodes) and fast[0] >= 1 and fast[1] > 1
    with pytest.raises(SchemaError, match="more than the schema's max_nodes=5"):
        block_statistics(train, 5)


def test_prior_is_the_empty_graph_and_decode_compacts():
    sch = schema()
    proc = BlockAutoregressive(sch, max_block=3, max_blocks=4)
    prior = proc.prior(torch.tensor([5, 2, 7]), generator=SampleNoise.for_run(0, 0, 3))
    assert prior.mask.shape == (3, sch.max_nodes) and not prior.mask.any()
    state = proc.encode(batch_of(sch, GRAPHS[1:3], n_slots=sch.max_nodes))
    out = proc.decode(state)
    assert out.max_nodes == 5 and out.n_nodes.tolist() == [4, 5]
    assert torch.equal(out.edge_types(), batch_of(sch, GRAPHS[1:3]).edge_types())


# ---- training -----------------------------------------------------------------------------------------------
def test_loss_is_finite_per_graph_and_decreases_with_a_tiny_denoiser():
    sch = schema()
    proc = BlockAutoregressive(sch, T=20, max_block=3, max_blocks=5)
    batch = batch_of(sch, GRAPHS)
    den = tiny_ppgn(proc)
    loss = proc.loss(den, batch, generator=torch.Generator().manual_seed(0))
    assert loss.shape == (4,) and torch.isfinite(loss).all()
    assert torch.equal(loss, proc.loss(den, batch, generator=torch.Generator().manual_seed(0)))

    first = seeded_loss(proc, den, batch, range(1000, 1006))
    adam_steps(proc, den, batch, 60, 3e-3)
    assert seeded_loss(proc, den, batch, range(1000, 1006)) < 0.7 * first


def test_block_terms_of_earlier_blocks_ignore_later_blocks():
    """Causality of the one-pass training input: changing the categories of the last block's nodes (the blocks
    themselves depend on the structure only) leaves every loss term of earlier blocks, and every size term that
    predicts from earlier blocks, unchanged; the last block's own terms do change."""
    sch = schema()
    proc = BlockAutoregressive(sch, T=20, max_block=3, max_blocks=5)
    den = tiny_ppgn(proc, seed=1, layers=3).eval()
    batch = batch_of(sch, GRAPHS)
    blocks = blocks_from_state(batch)
    last = int(blocks[0].max())
    nodes = list(NODES)
    for i in range(len(nodes)):
        if int(blocks[0, i]) == last:
            nodes[i] = (nodes[i] + 1) % 3
    changed = batch_of(sch, [(nodes, EDGES)] + GRAPHS[1:])
    a = proc.block_losses(den, batch, generator=torch.Generator().manual_seed(3))
    b = proc.block_losses(den, changed, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a["blocks"], b["blocks"])
    assert torch.allclose(a["block"][0, :last], b["block"][0, :last], atol=1e-6, rtol=0)
    assert torch.allclose(a["size"][0, :last + 1], b["size"][0, :last + 1], atol=1e-6, rtol=0)
    assert (a["block"][0, last] - b["block"][0, last]).abs() > 1e-4
    assert torch.allclose(a["block"][1:], b["block"][1:], atol=1e-6, rtol=0)


def test_block_k_sees_only_clean_earlier_blocks_as_the_sampler_builds_it():
    """The logits of block k on the full doubled set equal those on the sampler's input for block k (clean copies
    of blocks < k, noisy copies of blocks <= k): nothing of the clean block k or of later blocks reaches them."""
    sch = schema()
    proc = BlockAutoregressive(sch, T=20, max_block=3, max_blocks=5)
    den = tiny_ppgn(proc, seed=2, layers=3).eval()
    batch = batch_of(sch, GRAPHS)
    x0, e0 = proc.categories(batch)
    mask = batch.mask
    blocks = blocks_from_state(batch)
    g = torch.Generator().manual_seed(0)
    pb = torch.maximum(blocks.unsqueeze(2), blocks.unsqueeze(1)).clamp(min=0)
    t_block = torch.randint(1, 21, (4, 8), generator=g)
    t_nodes = t_block.gather(1, blocks.clamp(min=0)) * mask
    t_pairs = t_block.gather(1, pb.reshape(4, -1)).reshape(pb.shape)
    px, pe = proc.noise_probs_at(x0, e0, t_nodes, t_pairs)
    noisy = proc.sample_state(px, pe, mask, g)
    clean = proc.onehot(x0, e0, mask)
    with torch.no_grad():
        full = proc.predict_blocks(den, clean.x, clean.e, noisy.x, noisy.e, t_nodes, blocks, mask, mask)
        for k in range(int(blocks.max()) + 1):
            cm, nm = mask & (blocks < k), mask & (blocks <= k)
            part = proc.predict_blocks(den, clean.x, clean.e, noisy.x, noisy.e, t_nodes, blocks, cm, nm)
            node_k = blocks == k
            pair_k = (torch.maximum(blocks.unsqueeze(2), blocks.unsqueeze(1)) == k) & batch.pair_mask()
            assert torch.allclose(full[0][node_k], part[0][node_k], atol=1e-5)
            assert torch.allclose(full[1][pair_k], part[1][pair_k], atol=1e-5)
            # the size of block k + 1 is read at level 2k + 2 and needs the clean block k
            cm2 = mask & (blocks <= k)
            part2 = proc.predict_blocks(den, clean.x, clean.e, noisy.x, noisy.e, t_nodes, blocks, cm2, nm)
            assert torch.allclose(full[2][:, 2 * k + 2], part2[2][:, 2 * k + 2], atol=1e-5)
            if k:
                assert torch.allclose(full[2][:, 2 * k], part[2][:, 2 * k], atol=1e-5)


def test_loss_uses_conditions():
    """A graph's loss depends on its own condition (the noise is fixed by the generator). Condition dropout
    (``cond_drop``) gives a dropped graph the null input ``[0, 0]``: its loss no longer sees the value, a kept graph's
    loss is the one without dropout."""
    sch = schema(graph_features=("a",))
    graphs = GRAPHS * 6  # 24 graphs
    y = torch.linspace(-2.0, 3.0, len(graphs)).view(-1, 1)
    den = tiny_ppgn(BlockAutoregressive(sch, T=10, max_block=3, max_blocks=5), seed=1)
    seen = []
    den.register_forward_pre_hook(lambda mod, args: seen.append(args[2].clone()))

    def loss(cond, cond_drop=0.0):
        proc = BlockAutoregressive(sch, T=10, max_block=3, max_blocks=5, cond_drop=cond_drop)
        with torch.no_grad():
            return proc.loss(den, batch_of(sch, graphs, y=cond), generator=torch.Generator().manual_seed(0))

    base = loss(y)
    assert base.shape == (len(graphs),) and torch.isfinite(base).all()
    # one graph's condition moves its loss and no other graph's
    y2 = y.clone()
    y2[2] = 10.0
    moved = loss(y2)
    assert (moved[2] - base[2]).abs() > 1e-3
    others = torch.arange(len(graphs)) != 2
    torch.testing.assert_close(moved[others], base[others], rtol=0, atol=1e-5)
    assert torch.equal(seen[0], torch.cat([y, torch.ones_like(y)], 1))  # without dropout: [value, kept]
    # half dropped: the same graphs for the same generator, whatever the values
    half = loss(y, cond_drop=0.5)
    keep = seen[-1][:, 1]
    half_other = loss(-3 * y + 1, cond_drop=0.5)
    assert torch.equal(seen[-1][:, 1], keep) and set(keep.tolist()) == {0.0, 1.0}
    dropped = keep == 0
    assert 4 <= int(dropped.sum()) <= 20, int(dropped.sum())
    assert (seen[-1][dropped] == 0).all()  # the null input
    torch.testing.assert_close(half[dropped], half_other[dropped], rtol=0, atol=1e-5)
    assert ((half - half_other).abs()[~dropped] > 1e-4).all()
    torch.testing.assert_close(half[~dropped], base[~dropped], rtol=0, atol=1e-5)
    assert ((half - base).abs()[dropped] > 1e-4).all()
    with pytest.raises(ConfigError, match="batch.y"):
        BlockAutoregressive(sch, T=10, max_block=3, max_blocks=5).loss(
            den, batch_of(sch, GRAPHS), generator=torch.Generator().manual_seed(0))


# ---- an exact oracle --------------------------------------------------------------------------------------------
class Oracle(nn.Module):
    """Knows the one target graph (nodes in generation order): returns its categories as confident logits at every
    slot of the doubled set, and its size sequence (then 0) at the even levels."""

    def __init__(self, proc, nodes, edges, sizes, big=30.0):
        super().__init__()
        self.proc, self.big, self.sizes = proc, big, sizes
        n = len(nodes)
        self.x = torch.tensor(nodes)
        self.e = torch.zeros(n, n, dtype=torch.long)
        for i, j, k in edges:
            self.e[i, j] = self.e[j, i] = k
        self.dummy = nn.Parameter(torch.zeros(1))
        self.calls = 0

    def forward(self, state, t, cond=None, *, block=None):
        self.calls += 1
        b, m = state.mask.shape
        n = (m - 1) // 2
        orig = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(n), torch.arange(n)])
        orig = orig.clamp(max=len(self.x) - 1)
        x = self.big * nn.functional.one_hot(self.x[orig], self.proc.kx).float().expand(b, -1, -1)
        e = self.big * nn.functional.one_hot(self.e[orig][:, orig], self.proc.ke).float().expand(b, -1, -1, -1)
        levels = int(block[state.mask].max()) + 1
        want = [self.sizes[c // 2] if c // 2 < len(self.sizes) else 0 for c in range(levels)]
        y = self.big * nn.functional.one_hot(torch.tensor(want), self.proc.max_block + 1).float()
        return GraphState(x=x, e=e, y=y.reshape(1, -1).expand(b, -1), mask=state.mask)


@pytest.mark.parametrize("transition", ["marginal", "absorbing"])
def test_an_exact_oracle_reproduces_the_graph_and_calls_are_counted(transition):
    sch = schema()
    nodes, edges, sizes = sorted_by_block(sch, NODES, EDGES)
    proc = BlockAutoregressive(sch, T=10, transition=transition, max_block=max(sizes), max_blocks=len(sizes))
    oracle = Oracle(proc, nodes, edges, sizes)
    # the training loss of the oracle on its graph is ~0: training reads the outputs where the sampler does
    assert float(proc.loss(oracle, graph_state(sch, nodes, edges), generator=torch.Generator().manual_seed(0))) < 1e-6
    b, steps = 3, 4
    prior = proc.prior(torch.tensor([1] * b), generator=SampleNoise.for_run(0, 0, b))
    oracle.calls = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = proc.decode(block_ancestral(proc, oracle, prior, steps=steps, noise=SampleNoise.for_run(0, 0, b)))
    target = graph_state(sch, nodes, edges)
    assert out.n_nodes.tolist() == [len(nodes)] * b
    assert torch.equal(out.node_types(), target.node_types().expand(b, -1))
    assert torch.equal(out.edge_types(), target.edge_types().expand(b, -1, -1))
    k = len(sizes)
    assert proc.last_stats["network_calls"].tolist() == [(k + 1) + k * steps] * b
    assert proc.last_stats["blocks"].tolist() == [k] * b and proc.last_stats["hit_max_blocks"] == 0
    assert oracle.calls == (k + 1) + k * steps  # one batched call serves every sample
    assert blocks_from_state(out)[0].tolist() == sorted(structural_blocks(6, np.array([e[:2] for e in EDGES])))
    assert torch.equal(out.blocks, blocks_from_state(out))  # the sampler's blocks are the graph's structural order
    assert proc.last_stats["node_degree"] is None and proc.last_stats["degree_matched"] == 0  # no block degree here


def run(proc, den, b=2, steps=2, **kw):
    prior = proc.prior(torch.tensor([1] * b), generator=SampleNoise.for_run(0, 0, b))
    return proc.decode(block_ancestral(proc, den, prior, steps=steps, noise=SampleNoise.for_run(0, 0, b), **kw))


# ---- learning one graph -------------------------------------------------------------------------------------
def test_a_tiny_denoiser_trained_on_one_graph_reproduces_it():
    """Train -> sample end to end on a dataset of one graph repeated: a star whose leaf block is determined by the
    centre (a leaf block of *different* leaves would need symmetry breaking inside the block, which a tiny model
    trained this briefly learns only in part)."""
    sch = schema(max_nodes=6)
    nodes, edges, sizes = sorted_by_block(sch, [0, 2, 2, 2], [(0, 1, 2), (0, 2, 2), (0, 3, 2)])
    assert sizes == [1, 3]
    proc = BlockAutoregressive(sch, T=10, max_block=max(sizes), max_blocks=len(sizes))
    den = tiny_ppgn(proc, seed=0, hidden=32, layers=2)
    batch = GraphState.cat([graph_state(sch, nodes, edges)] * 8)
    opt = torch.optim.Adam(den.parameters(), lr=3e-3)
    for i in range(120):
        val = proc.loss(den, batch, generator=torch.Generator().manual_seed(i)).mean()
        opt.zero_grad()
        val.backward()
        opt.step()
    den.eval()
    out = run(proc, den, b=8, steps=5)
    target = graph_state(sch, nodes, edges)
    assert out.n_nodes.tolist() == [4] * 8
    assert torch.equal(out.node_types(), target.node_types().expand(8, -1))
    assert torch.equal(out.edge_types(), target.edge_types().expand(8, -1, -1))
