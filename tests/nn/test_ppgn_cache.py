"""The prefix cache of PARD's denoiser: calls that change a graph from some block level on are answered by
recomputing those levels and match the whole network (new blocks in empty slots, a redrawn newest block, two
levels at once, a graph that stops, re-laid-out records); a change of ``t`` runs the whole network; the cache stays
out of training, gradients and structural features; PARD's sampler gives the same graphs with and without it."""

import warnings

import pytest
import torch

from graphdiff import GraphState
from graphdiff.nn.ppgn import PPGNTransformerDenoiser
from graphdiff.nn.ppgn_cache import PrefixCache
from graphdiff.processes.pard import BlockAutoregressive
from graphdiff.samplers import SampleNoise
from graphdiff.samplers.pard import block_ancestral

from ..processes.test_pard import schema
from .test_ppgn import EDGE_DIM, NODE_DIM, make_blocks, make_state, model

F64 = torch.float64


def redraw_top(state, level, seed):
    """``state`` with new random categories on every node and pair of each graph's highest level."""
    g = torch.Generator().manual_seed(seed)
    top = level.amax(1, keepdim=True)
    upd = state.mask & (level == top)
    x = torch.nn.functional.one_hot(torch.randint(0, NODE_DIM, level.shape, generator=g), NODE_DIM).to(F64)
    types = torch.triu(torch.randint(0, EDGE_DIM, level.shape + level.shape[1:], generator=g), 1)
    e = torch.nn.functional.one_hot(types + types.transpose(1, 2), EDGE_DIM).to(F64)
    rows = (upd.unsqueeze(2) | upd.unsqueeze(1)).unsqueeze(-1)
    return GraphState(x=torch.where(upd.unsqueeze(-1), x, state.x), e=torch.where(rows, e, state.e),
                      mask=state.mask).masked()


def cached_model(**kw):
    # three layers: PPGN in the second only (ppgn_every=2), the last one without a graph-vector update
    return model(n_layers=3, ppgn_every=2, max_degree=3, **kw)


def close(a, b):
    return (a - b).abs().max().item() < 1e-10


def test_calls_that_change_only_the_top_level_match_the_whole_network():
    net = cached_model()
    state = make_state(seed=3)  # graphs of 6-8 nodes at scattered slots, a one-node and an empty graph
    level = make_blocks(state.mask)
    t = torch.zeros(state.mask.shape[0], dtype=F64)
    cache = PrefixCache()
    with torch.no_grad():
        first = net(state, t, block=level, cache=cache)
        kept = [first.x.clone(), first.e.clone(), first.y.clone()]
        for seed in range(3):
            moved = redraw_top(state, level, seed)
            want = net(moved, t, block=level)
            got = net(moved, t, block=level, cache=cache)
            assert close(got.x, want.x) and close(got.e, want.e) and close(got.y, want.y)
            assert not torch.equal(got.e, first.e)  # the top level really changed
    assert (cache.hits, cache.misses) == (3, 1)
    # the recorded call's own outputs are not written over by later calls
    assert torch.equal(first.x, kept[0]) and torch.equal(first.e, kept[1]) and torch.equal(first.y, kept[2])


def random_like(state, seed):
    g = torch.Generator().manual_seed(seed)
    b, n = state.mask.shape
    x = torch.nn.functional.one_hot(torch.randint(0, NODE_DIM, (b, n), generator=g), NODE_DIM).to(F64)
    types = torch.triu(torch.randint(0, EDGE_DIM, (b, n, n), generator=g), 1)
    return x, torch.nn.functional.one_hot(types + types.transpose(1, 2), EDGE_DIM).to(F64)


def check_sequence(net, calls, cache=None):
    """Feed ``(state, level)`` calls through one cache; each output must match the whole network's."""
    cache = PrefixCache() if cache is None else cache
    t = torch.zeros(calls[0][0].mask.shape[0], dtype=F64)
    with torch.no_grad():
        for state, level in calls:
            got = net(state, t, block=level, cache=cache)
            want = net(state, t, block=level)
            assert close(got.x, want.x) and close(got.e, want.e) and close(got.y, want.y)
    return cache


def test_a_change_at_a_lower_level_recomputes_from_that_level():
    net = cached_model()
    state = make_state(seed=4)
    level = make_blocks(state.mask)
    low = torch.nonzero(state.mask[0] & (level[0] == 1))[:2, 0]  # two nodes of block 1 of graph 0
    e = state.e.clone()
    i, j = low.tolist()
    e[0, i, j] = e[0, j, i] = e[0, i, j].flip(-1)
    cache = check_sequence(net, [(state, level), (GraphState(x=state.x, e=e, mask=state.mask), level)])
    assert (cache.hits, cache.misses) == (1, 1)
    # graph 0 recomputes its blocks 1..3, the other graphs nothing
    assert cache.recomputed == int((state.mask[0] & (level[0] >= 1)).sum())
    t = torch.zeros(state.mask.shape[0], dtype=F64)
    with torch.no_grad():
        net(state, t + 0.5, block=level, cache=cache)  # another time changes every level: a full pass
    assert cache.misses == 2
    few = PrefixCache(max_fraction=0.1)  # recompute at most a tenth of the nodes, else run the whole network
    check_sequence(net, [(state, level), (GraphState(x=state.x, e=e, mask=state.mask), level)], few)
    assert (few.hits, few.misses) == (0, 2)


def test_growing_graphs_block_by_block_as_the_sampler_does():
    """Blocks appear in empty slots, the newest block changes, two levels change at once, one graph stops."""
    net = cached_model()
    full = make_state(seed=6)
    level = make_blocks(full.mask)
    calls = []
    for top in range(4):
        mask = full.mask & (level <= top)
        calls.append((GraphState(x=full.x, e=full.e, mask=mask).masked(), torch.where(mask, level, -1)))
        for seed in range(2):  # the newest block redrawn
            calls.append((redraw_top(calls[-1][0], calls[-1][1], seed), calls[-1][1]))
    lv = calls[-1][1]
    x, e = random_like(full, 9)
    two = (lv >= 2).unsqueeze(-1)
    moved = GraphState(x=torch.where(two, x, full.x), e=torch.where((two.unsqueeze(2) | two.unsqueeze(1)), e, full.e),
                       mask=calls[-1][0].mask).masked()
    calls.append((moved, lv))  # blocks 2 and 3 both change
    stop = calls[-1][0].mask.clone()
    stop[0] = False  # graph 0 is gone (its slots empty)
    calls.append((GraphState(x=moved.x, e=moved.e, mask=stop).masked(), torch.where(stop, lv, -1)))
    cache = check_sequence(net, calls)
    assert cache.misses == 1 and cache.hits == len(calls) - 1


def test_reindex_follows_dropped_samples_and_moved_slots():
    net = cached_model(max_nodes=12)
    state = make_state(seed=7)
    level = make_blocks(state.mask)
    b, n = state.mask.shape
    t = torch.zeros(b, dtype=F64)
    keep = torch.tensor([2, 0, 3])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    slots = torch.cat([perm.expand(len(keep), n), torch.full((len(keep), 2), -1)], 1)  # two new empty slots

    def lay(v, fill):
        out = v[keep.unsqueeze(1), slots.clamp(min=0)]
        return out.masked_fill((slots < 0).view(*slots.shape, *([1] * (out.dim() - 2))), fill)
    x2 = lay(state.x, 0.0)
    e2 = state.e[keep.view(-1, 1, 1), slots.clamp(min=0).unsqueeze(2), slots.clamp(min=0).unsqueeze(1)]
    e2 = e2 * ((slots >= 0).unsqueeze(2) & (slots >= 0).unsqueeze(1)).unsqueeze(-1).to(F64)
    moved = GraphState(x=x2, e=e2, mask=lay(state.mask, False))
    level2 = lay(level, -1)
    cache = PrefixCache()
    with torch.no_grad():
        net(state, t, block=level, cache=cache)
        cache.reindex(keep, slots)
        got = net(moved, t[keep], block=level2, cache=cache)
        want = net(moved, t[keep], block=level2)
    assert close(got.x, want.x) and close(got.e, want.e) and close(got.y, want.y)
    assert (cache.hits, cache.recomputed) == (1, 0)


def test_the_cache_stays_out_of_training_gradients_and_structural_features():
    state = make_state(seed=5)
    level = make_blocks(state.mask)
    t = torch.zeros(state.mask.shape[0], dtype=F64)
    for net, grad in ((cached_model().train(), False), (cached_model(), True),
                      (cached_model(kinds=("cycles",)), False)):
        cache = PrefixCache()
        with torch.set_grad_enabled(grad):
            for _ in range(2):
                net(state, t, block=level, cache=cache)
        assert (cache.hits, cache.misses, cache.entry) == (0, 0, None)
    cache = PrefixCache()
    with torch.no_grad():  # no block levels: no causal structure to reuse
        cached_model()(state, t, cache=cache)
    assert cache.entry is None


class CountingDenoiser(PPGNTransformerDenoiser):
    """Keeps every cache it is handed, to count what the sampler reused."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.caches, self.calls = [], 0

    def forward(self, state, t, cond=None, *, block=None, cache=None):
        self.calls += 1
        if cache is not None and all(c is not cache for c in self.caches):
            self.caches.append(cache)
        return super().forward(state, t, cond, block=block, cache=cache)


@pytest.mark.parametrize("guidance", [0.0, 1.5])
def test_pard_sampling_gives_the_same_graphs_with_and_without_the_cache(guidance):
    features = ("a",) if guidance else ()
    proc = BlockAutoregressive(schema(graph_features=features), T=10, max_block=3, max_blocks=6)
    torch.manual_seed(0)
    den = CountingDenoiser(**proc.denoiser_kwargs(), n_layers=2, hidden=16, n_heads=2).eval()
    b, steps = 8, 4
    kw = {"cond": torch.ones(b, 1), "guidance": guidance} if guidance else {}
    outs, n_calls = [], []
    for use in (True, False):
        den.calls = 0
        prior = proc.prior(torch.ones(b), generator=SampleNoise.for_run(0, 0, b))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an untrained size head may hit max_blocks
            out = block_ancestral(proc, den, prior, steps=steps, noise=SampleNoise.for_run(0, 0, b),
                                  prefix_cache=use, **kw)
        outs.append((proc.decode(out), proc.last_stats["network_calls"].clone()))
        n_calls.append(den.calls)
    (a, calls_a), (c, calls_c) = outs
    assert torch.equal(calls_a, calls_c) and int((a.n_nodes > 0).sum()) >= 2
    assert torch.equal(a.mask, c.mask) and torch.equal(a.x.argmax(-1), c.x.argmax(-1))
    assert torch.equal(a.e.argmax(-1), c.e.argmax(-1))
    hits = sum(cc.hits for cc in den.caches)
    misses = sum(cc.misses for cc in den.caches)
    # one full pass per condition input (the first size call, on the start node alone); every later call was
    # answered from the cache
    n_cond = 2 if guidance else 1
    assert len(den.caches) == n_cond and misses == n_cond and hits == n_calls[0] - n_cond
