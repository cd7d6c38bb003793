"""PARD's PPGN transformer denoiser: the causal PPGN product and prefix pooling against brute force, permutation
equivariance and padding isolation with and without blocks, causality of every output (nodes, pairs, size logits),
the PPGN path, output layout, input checks and gradients."""

import networkx as nx
import pytest
import torch

from graphdiff import GraphState
from graphdiff.errors import ConfigError, SchemaError
from graphdiff.nn.equivariance import assert_mask_isolated, assert_permutation_equivariant
from graphdiff.nn.ppgn import PPGNTransformerDenoiser, block_causal_matmul, causal_pool
from graphdiff.nn.transformer import masked_pool

from .test_features import batch, generic_graphs, generic_spectrum

NODE_DIM, EDGE_DIM, N_SLOTS, N_BLOCKS, MAX_BLOCK = 4, 3, 9, 4, 5
SMALL = dict(n_layers=2, hidden=8, n_heads=2, rrwp_steps=3, max_block=MAX_BLOCK)
F64 = torch.float64


def make_state(seed=0, n=N_SLOTS, dtype=F64):
    """Noisy one-hot graphs at scattered slots: random node and edge types on generic random graphs, plus a
    one-node and an empty graph."""
    graphs = generic_graphs(3, seed, sizes=range(6, 9), k=5) + [nx.empty_graph(1), nx.empty_graph(0)]
    adj, mask, _ = batch(graphs, n=n, seed=seed, dtype=dtype)
    assert generic_spectrum(adj, mask, 5)
    g = torch.Generator().manual_seed(seed)
    types = torch.triu(torch.randint(1, EDGE_DIM, adj.shape, generator=g), 1)
    types = (types + types.transpose(1, 2)) * adj.long()
    x = torch.nn.functional.one_hot(torch.randint(0, NODE_DIM, mask.shape, generator=g), NODE_DIM).to(dtype)
    e = torch.nn.functional.one_hot(types, EDGE_DIM).to(dtype)
    return GraphState(x=x, e=e, mask=mask).masked()


def make_blocks(mask, n_blocks=N_BLOCKS):
    """Block index per real node from its rank among the real slots (every block non-empty when there are enough
    nodes), -1 at padded slots."""
    rank = mask.long().cumsum(1) - 1
    n_real = mask.sum(1, keepdim=True).clamp(min=1)
    return torch.where(mask, rank * n_blocks // n_real, -1)


def times(b, seed=1):
    return torch.rand(b, generator=torch.Generator().manual_seed(seed), dtype=F64)


def model(kinds=(), cond_dim=0, seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(node_dim=NODE_DIM, edge_dim=EDGE_DIM, cond_dim=cond_dim, max_nodes=N_SLOTS, extra_features=kinds,
                **SMALL)
    return PPGNTransformerDenoiser(**{**args, **kw}).double().eval()


def with_block_channel(state, block):
    """Carry ``block`` as a last node channel so that the equivariance helpers permute it with the nodes."""
    return GraphState(x=torch.cat([state.x, block.to(state.x.dtype).unsqueeze(-1)], -1), e=state.e, mask=state.mask)


def block_carrying(net, cond=None):
    def fn(state, t):
        blk = state.x[..., -1].round().long()
        return net(GraphState(x=state.x[..., :-1], e=state.e, mask=state.mask), t, cond, block=blk)

    return fn


def levels(state, block):
    """Node and pair levels (``-1`` off real nodes / real pairs) of a block assignment."""
    lv = torch.where(state.mask, block, -1)
    pair = torch.maximum(lv.unsqueeze(2), lv.unsqueeze(1)).masked_fill(~state.pair_mask(True), -1)
    return lv, pair


# ---- building blocks ----------------------------------------------------------------------------------------------


def test_block_causal_matmul_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 6, 6, 2, generator=g, dtype=F64)
    b = torch.randn(3, 6, 6, 2, generator=g, dtype=F64)
    level = torch.randint(-1, 3, (3, 6), generator=g)
    got = block_causal_matmul(a, b, level)
    top = torch.maximum(level.unsqueeze(2), level.unsqueeze(1))  # [B, i, j]
    ok = (level.view(3, 1, 1, 6) >= 0) & (level.view(3, 1, 1, 6) <= top.unsqueeze(-1))  # [B, i, j, k]
    want = torch.einsum("bikc,bkjc,bijk->bijc", a, b, ok.to(F64))
    assert torch.allclose(got, want, atol=1e-12)
    assert torch.allclose(block_causal_matmul(a, b), torch.einsum("bikc,bkjc->bijc", a, b), atol=1e-12)


def test_causal_pool_is_masked_pool_of_every_prefix():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 7, 2, generator=g, dtype=F64)
    level = torch.tensor([[0, 1, 1, 2, -1, 0, 2], [2, 2, -1, 1, 1, 2, -1], [-1] * 7])  # graph 1: level 0 empty
    out = causal_pool(h, level, 3, eps=1e-12)
    assert out.shape == (3, 3, 8)
    for c in range(3):
        want = masked_pool(h, (level >= 0) & (level <= c), eps=1e-12)
        assert torch.allclose(out[:, c], want, atol=1e-9), c
    assert torch.all(out[1, 0] == 0) and torch.all(out[2] == 0)


# ---- symmetry and padding -----------------------------------------------------------------------------------------


def test_equivariant_and_padding_isolated_without_block():
    net = model(("cycles", "spectral", "rrwp"), cond_dim=2)
    s = make_state()
    cond = torch.randn(len(s), 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    fn = lambda state, t: net(state, t, cond)  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    assert_permutation_equivariant(fn, s, t=times(len(s)), atol=1e-9, generator=gen)
    assert_mask_isolated(fn, s, t=times(len(s)), atol=1e-9, generator=gen)


@pytest.mark.parametrize("kinds", [(), ("cycles", "rrwp")], ids=["none", "cycles+rrwp"])
def test_equivariant_and_padding_isolated_with_block(kinds):
    """Spectral features of small prefix graphs can have sign-ambiguous eigenvectors, so they are left out here."""
    net = model(kinds, cond_dim=2)
    s = make_state(seed=1)
    cond = torch.randn(len(s), 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    fn = block_carrying(net, cond)
    carried = with_block_channel(s, make_blocks(s.mask))
    gen = torch.Generator().manual_seed(0)
    assert_permutation_equivariant(fn, carried, t=times(len(s)), atol=1e-9, generator=gen)
    assert_mask_isolated(fn, carried, t=times(len(s)), atol=1e-9, generator=gen)
    # the size logits (one row per block, not per node) are invariant
    perm = torch.stack([torch.randperm(N_SLOTS, generator=gen) for _ in range(len(s))])
    base, moved = fn(carried, times(len(s))), fn(carried.permute(perm), times(len(s)))
    assert base.y is not None and torch.allclose(base.y, moved.y, atol=1e-9)


# ---- causality ----------------------------------------------------------------------------------------------------


def perturb(state, block, k, only):
    """Random node and edge types on the nodes of block k and the pairs whose max block is k (``only``), or on all
    of blocks >= k."""
    lv, pair = levels(state, block)
    sel_n = (lv == k) if only else (lv >= k)
    sel_e = (pair == k) if only else (pair >= k)
    g = torch.Generator().manual_seed(100 + k)
    x = torch.nn.functional.one_hot(torch.randint(0, NODE_DIM, lv.shape, generator=g), NODE_DIM).to(F64)
    types = torch.triu(torch.randint(0, EDGE_DIM, pair.shape, generator=g), 1)
    e = torch.nn.functional.one_hot(types + types.transpose(1, 2), EDGE_DIM).to(F64)
    new = GraphState(x=torch.where(sel_n.unsqueeze(-1), x, state.x), e=torch.where(sel_e.unsqueeze(-1), e, state.e),
                     mask=state.mask).masked()
    assert not torch.equal(new.x, state.x) and not torch.equal(new.e, state.e)
    return new


@pytest.mark.parametrize("only", [True, False], ids=["block-k", "blocks>=k"])
def test_outputs_of_earlier_blocks_ignore_later_blocks(only):
    net = model(("cycles", "spectral", "rrwp"), cond_dim=1, n_layers=3)
    s = make_state(seed=2)
    block = make_blocks(s.mask)
    lv, pair = levels(s, block)
    t, cond = times(len(s)), torch.ones(len(s), 1, dtype=F64)
    base = net(s, t, cond, block=block)
    for k in range(1, N_BLOCKS):
        out = net(perturb(s, block, k, only), t, cond, block=block)
        early_n, early_e = (lv >= 0) & (lv < k), (pair >= 0) & (pair < k)
        assert torch.allclose(out.x[early_n], base.x[early_n], atol=1e-10, rtol=0), k
        assert torch.allclose(out.e[early_e], base.e[early_e], atol=1e-10, rtol=0), k
        size, base_size = net.size_logits(out), net.size_logits(base)
        assert torch.allclose(size[:, :k], base_size[:, :k], atol=1e-10, rtol=0), k
        # the perturbed block itself does see the change
        late_n = lv == k
        assert not torch.allclose(out.x[late_n], base.x[late_n]), k
        assert not torch.allclose(size[:3, k], base_size[:3, k]), k


def test_later_blocks_do_read_earlier_blocks():
    net = model(n_layers=2)
    s = make_state(seed=2)
    block = make_blocks(s.mask)
    lv, pair = levels(s, block)
    t = times(len(s))
    base = net(s, t, block=block)
    # change only the nodes of block 0 and the pairs inside block 0
    out = net(perturb(s, block, 0, only=True), t, block=block)
    one_n, one_e = lv == 1, pair == 1
    assert (out.x[one_n] - base.x[one_n]).abs().amin() > 0  # every node of block 1 changes
    assert not torch.allclose(out.e[one_e], base.e[one_e])
    assert not torch.allclose(net.size_logits(out)[:3, 1], net.size_logits(base)[:3, 1])


# ---- PPGN ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_block", [False, True])
def test_edge_output_depends_on_two_hop_paths_through_ppgn(with_block):
    """With one layer, attention and the edge update only read the pair itself and its endpoints' input features,
    so a change on (i, k) reaches the logits of (i, j) only through the PPGN product sum_k E_ik E_kj."""
    g = nx.path_graph(4)  # 0-1-2-3; pair (0, 2) is not an edge, path 0-1-2 is
    adj, mask, _ = batch([g], n=5, scattered=False)
    e = torch.nn.functional.one_hot(adj.long(), EDGE_DIM).to(F64)
    x = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2, 3, 0]]), NODE_DIM).to(F64)
    s = GraphState(x=x, e=e, mask=mask).masked()
    flipped = s.e.clone()
    flipped[0, 0, 1] = flipped[0, 1, 0] = torch.nn.functional.one_hot(torch.tensor(2), EDGE_DIM).to(F64)
    s2 = GraphState(x=s.x, e=flipped, mask=mask)
    block = torch.tensor([[0, 0, 1, 1, -1]]) if with_block else None
    t = torch.full((1,), 0.5, dtype=F64)
    for ppgn_every, expect_change in ((1, True), (0, False)):
        net = model(n_layers=1, ppgn_every=ppgn_every)
        d = (net(s2, t, block=block).e[0, 0, 2] - net(s, t, block=block).e[0, 0, 2]).abs().max()
        assert (d > 1e-6) == expect_change, (ppgn_every, float(d))


# ---- layout and checks --------------------------------------------------------------------------------------------


def test_output_shapes_symmetry_masking_and_size_layout():
    net = model(("cycles", "rrwp"), node_out=5, edge_out=2)
    s = make_state(seed=3)
    block = make_blocks(s.mask, 3)
    block[1] = torch.where(s.mask[1], 0, -1)  # graph 1 has a single block: its rows 1, 2 are padding
    out = net(s, times(len(s)), block=block)
    assert isinstance(out, GraphState) and torch.equal(out.mask, s.mask)
    assert out.x.shape == (*s.mask.shape, 5) and out.e.shape == (*s.e.shape[:3], 2)
    assert torch.equal(out.e, out.e.transpose(1, 2))
    assert torch.all(torch.diagonal(out.e, dim1=1, dim2=2) == 0)
    assert torch.all(out.x[~s.mask] == 0) and torch.all(out.e[~s.pair_mask()] == 0)
    n_rows = int(block.max()) + 1
    assert out.y.shape == (len(s), n_rows * (MAX_BLOCK + 1))
    size = net.size_logits(out)
    assert size.shape == (len(s), n_rows, MAX_BLOCK + 1)
    assert torch.all(size[1, 1:] == 0) and torch.all(size[4] == 0)  # past the last block; the empty graph
    assert torch.all(size[0].abs().sum(-1) > 0) and size[3, 0].abs().sum() > 0
    # block=None is block 0 everywhere, without size logits
    plain, zeros = net(s, times(len(s))), net(s, times(len(s)), block=torch.where(s.mask, 0, -1))
    assert plain.y is None and zeros.y.shape == (len(s), MAX_BLOCK + 1)
    assert torch.allclose(plain.x, zeros.x, atol=1e-12) and torch.allclose(plain.e, zeros.e, atol=1e-12)
    with pytest.raises(SchemaError, match="no size logits"):
        net.size_logits(plain)
    assert model(size_head=False)(s, times(len(s)), block=block).y is None
    f32 = PPGNTransformerDenoiser(node_dim=NODE_DIM, edge_dim=EDGE_DIM, max_nodes=N_SLOTS, n_layers=1)
    o32 = f32(make_state(dtype=torch.float32), times(5).float(), block=make_blocks(make_state().mask))
    assert o32.e.dtype == torch.float32 and o32.y.shape == (5, N_BLOCKS * (N_SLOTS + 1))


def test_wrong_inputs_raise_one_line_errors():
    net = model(cond_dim=2)
    s = make_state()
    t = times(len(s))
    block = make_blocks(s.mask)
    with pytest.raises(SchemaError, match=r"^cond has 3 columns, the model was built with cond_dim=2$"):
        net(s, t, torch.zeros(len(s), 3, dtype=F64))
    with pytest.raises(SchemaError, match="cond has 2 rows"):
        net(s, t, torch.zeros(2, 2, dtype=F64))
    with pytest.raises(SchemaError, match=f"x has 5 channels, the model was built with node_dim={NODE_DIM}"):
        net(GraphState(x=torch.zeros(*s.mask.shape, 5, dtype=F64), e=s.e, mask=s.mask), t)
    with pytest.raises(SchemaError, match=f"e has 2 channels, the model was built with edge_dim={EDGE_DIM}"):
        net(GraphState(x=s.x, e=s.e[..., :2], mask=s.mask), t)
    with pytest.raises(SchemaError, match=f"max_nodes={N_SLOTS}"):
        net(s.pad_to(N_SLOTS + 1), t)
    with pytest.raises(SchemaError, match="t must be"):
        net(s, t[:2])
    with pytest.raises(SchemaError, match=r"block must be \[B, N\]"):
        net(s, t, block=block[:, :3])
    with pytest.raises(SchemaError, match="integer block indices"):
        net(s, t, block=block.double())
    bad = block.clone()
    bad[0, s.mask[0].nonzero()[0, 0]] = -1
    with pytest.raises(SchemaError, match=r"block indices of real nodes must be in \[0, max_nodes=9\)"):
        net(s, t, block=bad)
    with pytest.raises(SchemaError, match="got 0..9"):
        net(s, t, block=torch.where(block == 1, 9, block))
    for kw, msg in ((dict(n_heads=3), "n_heads=3"), (dict(ppgn_every=3), "ppgn_every"), (dict(hidden=0), "hidden"),
                    (dict(kinds=("spectrum",)), "'spectrum'"), (dict(max_block=0), "max_block")):
        with pytest.raises(ConfigError, match=msg):
            model(**kw)


def test_gradients_reach_every_parameter():
    net = model(("cycles", "rrwp"), cond_dim=2, n_layers=3, ppgn_every=1).train()
    s = make_state()
    out = net(s, times(len(s)), torch.randn(len(s), 2, dtype=F64), block=make_blocks(s.mask))
    (out.x.pow(2).sum() + out.e.pow(2).sum() + out.y.pow(2).sum()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not missing, missing
    assert sum(layer.ppgn for layer in model(n_layers=4, ppgn_every=2).layers) == 2
