"""The prefix cache of PARD's denoiser: calls that change only each graph's highest block level are answered by
recomputing that level and match the whole network; any other change runs the whole network; the cache stays out
of training, gradients and structural features; PARD's sampler gives the same graphs with and without it."""

import warnings

import torch

from graphdiff import GraphState
from graphdiff.nn.ppgn import PPGNTransformerDenoiser
from graphdiff.nn.ppgn_cache import PrefixCache
from graphdiff.processes.blockar import BlockAutoregressive
from graphdiff.samplers import SampleNoise
from graphdiff.samplers.blockar import block_ancestral

from ..processes.test_blockar import schema
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


def test_a_change_below_the_top_level_runs_the_whole_network_again():
    net = cached_model()
    state = make_state(seed=4)
    level = make_blocks(state.mask)
    t = torch.zeros(state.mask.shape[0], dtype=F64)
    cache = PrefixCache()
    low = torch.nonzero(state.mask[0] & (level[0] == 0))[:2, 0]  # two nodes of block 0 of graph 0
    e = state.e.clone()
    i, j = low.tolist()
    e[0, i, j] = e[0, j, i] = e[0, i, j].flip(-1)
    changed = GraphState(x=state.x, e=e, mask=state.mask)
    with torch.no_grad():
        net(state, t, block=level, cache=cache)
        got = net(changed, t, block=level, cache=cache)
        want = net(changed, t, block=level)
        net(changed, t * 0 + 0.5, block=level, cache=cache)  # another time: a miss, too
    assert (cache.hits, cache.misses) == (0, 3)
    assert torch.equal(got.e, want.e) and torch.equal(got.y, want.y)


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
        self.caches = []

    def forward(self, state, t, cond=None, *, block=None, cache=None):
        if cache is not None and all(c is not cache for c in self.caches):
            self.caches.append(cache)
        return super().forward(state, t, cond, block=block, cache=cache)


def test_pard_sampling_gives_the_same_graphs_with_and_without_the_cache():
    proc = BlockAutoregressive(schema(), T=10, max_block=3, max_blocks=6)
    torch.manual_seed(0)
    den = CountingDenoiser(**proc.denoiser_kwargs(), n_layers=2, hidden=16, n_heads=2).eval()
    b, steps = 4, 4
    outs = []
    for use in (True, False):
        prior = proc.prior(torch.ones(b), generator=SampleNoise.for_run(0, 0, b))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an untrained size head may hit max_blocks
            out = block_ancestral(proc, den, prior, steps=steps, noise=SampleNoise.for_run(0, 0, b),
                                  prefix_cache=use)
        outs.append((proc.decode(out), proc.last_stats["network_calls"].clone()))
    (a, calls_a), (c, calls_c) = outs
    assert torch.equal(calls_a, calls_c) and int(calls_a.sum()) > 2 * b
    assert torch.equal(a.mask, c.mask) and torch.equal(a.x.argmax(-1), c.x.argmax(-1))
    assert torch.equal(a.e.argmax(-1), c.e.argmax(-1))
    hits = sum(cc.hits for cc in den.caches)
    misses = sum(cc.misses for cc in den.caches)
    # every block's chain: one full call, then steps - 1 cached ones
    assert misses > 0 and hits == (steps - 1) * misses
