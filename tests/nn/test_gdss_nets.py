"""GDSS score networks: equivariance, padding isolation, symmetry, gradients, config errors and the helpers."""

import pytest
import torch

from graphdiff import GraphState, SchemaError
from graphdiff.nn import (
    DENOISERS,
    MLP,
    DenseGCNConv,
    GDSSDenoiser,
    ScoreNetworkA,
    ScoreNetworkX,
    ScoreNetworkX_GMH,
    build_denoiser,
    timestep_embedding,
)
from graphdiff.nn.equivariance import assert_mask_isolated, assert_permutation_equivariant

X_DIM = 3
SMALL_A = dict(nhid=8, adim=8, num_heads=2, num_layers=3, num_linears=2, c_init=2, c_hid=4, c_final=3)
SMALL_GMH = dict(nhid=8, adim=8, num_heads=2, depth=2, c_init=2, c_hid=4, c_final=3)


def make_state(sizes=(6, 4, 1, 0), n=7, fx=X_DIM, seed=0, scattered=True, dtype=torch.float64):
    """Continuous GDSS-like state: real nodes at random slots (or in front), symmetric weighted adjacency."""
    g = torch.Generator().manual_seed(seed)
    b = len(sizes)
    mask = torch.zeros(b, n, dtype=torch.bool)
    for i, k in enumerate(sizes):
        slots = torch.randperm(n, generator=g)[:k] if scattered else torch.arange(k)
        mask[i, slots] = True
    x = torch.randn(b, n, fx, generator=g, dtype=dtype)
    a = torch.rand(b, n, n, generator=g, dtype=dtype)
    a = torch.triu(a, 1)
    a = a + a.transpose(1, 2)
    return GraphState(x=x, e=a.unsqueeze(-1), mask=mask).masked()


def times(b, seed=1):
    return torch.rand(b, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def x_fn(net):
    def fn(s, t=None):
        return GraphState(x=net(s.x, s.e[..., 0], s.mask, t), e=torch.zeros_like(s.e), mask=s.mask)

    return fn


def a_fn(net):
    def fn(s, t=None):
        return GraphState(x=torch.zeros_like(s.x), e=net(s.x, s.e[..., 0], s.mask, t).unsqueeze(-1), mask=s.mask)

    return fn


def nets(time_cond):
    torch.manual_seed(0)
    return {
        "x_gcn": x_fn(ScoreNetworkX(in_dim=X_DIM, depth=2, nhid=8, time_cond=time_cond).double()),
        "x_gmh": x_fn(ScoreNetworkX_GMH(in_dim=X_DIM, **SMALL_GMH, time_cond=time_cond).double()),
        "x_gmh_mlp": x_fn(ScoreNetworkX_GMH(in_dim=X_DIM, **SMALL_GMH, conv="MLP", time_cond=time_cond).double()),
        "a": a_fn(ScoreNetworkA(in_dim=X_DIM, **SMALL_A, time_cond=time_cond).double()),
        "a_mlp": a_fn(ScoreNetworkA(in_dim=X_DIM, **SMALL_A, conv="MLP", time_cond=time_cond).double()),
        "a_one_layer": a_fn(ScoreNetworkA(in_dim=X_DIM, **{**SMALL_A, "num_layers": 1}, time_cond=time_cond).double()),
        "a_v1": a_fn(ScoreNetworkA(in_dim=X_DIM, **SMALL_A, variant="graphdiff-v1", time_cond=time_cond).double()),
        "a_v1_mlp": a_fn(ScoreNetworkA(in_dim=X_DIM, **SMALL_A, conv="MLP", variant="graphdiff-v1",
                                       time_cond=time_cond).double()),
        "x_gmh_v1": x_fn(ScoreNetworkX_GMH(in_dim=X_DIM, **SMALL_GMH, variant="graphdiff-v1",
                                           time_cond=time_cond).double()),
        "denoiser": GDSSDenoiser(
            x_net={"type": "gmh", **SMALL_GMH, "time_cond": time_cond},
            adj_net={**SMALL_A, "time_cond": time_cond}, x_dim=X_DIM, max_nodes=7,
        ).double(),
    }


NET_NAMES = list(nets(False))


@pytest.mark.parametrize("time_cond", [False, True])
@pytest.mark.parametrize("name", NET_NAMES)
def test_permutation_equivariant(name, time_cond):
    fn = nets(time_cond)[name]
    for seed, scattered in ((0, True), (1, False)):
        s = make_state(seed=seed, scattered=scattered)
        gen = torch.Generator().manual_seed(seed)
        assert_permutation_equivariant(fn, s, t=times(len(s)), atol=1e-10, generator=gen)


@pytest.mark.parametrize("time_cond", [False, True])
@pytest.mark.parametrize("name", NET_NAMES)
def test_padding_isolated(name, time_cond):
    fn = nets(time_cond)[name]
    s = make_state(seed=2)
    assert_mask_isolated(fn, s, t=times(len(s)), atol=1e-10, generator=torch.Generator().manual_seed(3))


def test_float32_equivariance_within_default_tolerance():
    torch.manual_seed(0)
    den = GDSSDenoiser(x_net={"type": "gcn", "nhid": 8}, adj_net=SMALL_A, x_dim=X_DIM, max_nodes=7)
    s = make_state(dtype=torch.float32)
    assert_permutation_equivariant(den, s, t=times(len(s)).float(), generator=torch.Generator().manual_seed(0))
    assert_mask_isolated(den, s, t=times(len(s)).float(), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("conv", ["GCN", "MLP"])
def test_adjacency_score_symmetric_zero_diagonal_and_padding(conv):
    net = ScoreNetworkA(in_dim=X_DIM, **SMALL_A, conv=conv).double()
    s = make_state()
    out = net(s.x, s.e[..., 0], s.mask)
    assert out.shape == s.e.shape[:3]
    assert torch.equal(out, out.transpose(1, 2))
    assert torch.all(torch.diagonal(out, dim1=1, dim2=2) == 0)
    assert torch.all(out[~s.pair_mask()] == 0)
    assert out[s.pair_mask()].abs().sum() > 0


def test_node_scores_zero_at_padding():
    s = make_state()
    for net in (ScoreNetworkX(in_dim=X_DIM).double(), ScoreNetworkX_GMH(in_dim=X_DIM).double()):
        out = net(s.x, s.e[..., 0], s.mask)
        assert out.shape == s.x.shape
        assert torch.all(out[~s.mask] == 0)


def test_denoiser_output_state():
    den = GDSSDenoiser(x_net={"type": "gcn"}, adj_net={}, x_dim=X_DIM, max_nodes=7).double()
    s = make_state()
    out = den(s, times(len(s)))
    assert isinstance(out, GraphState)
    assert out.x.shape == s.x.shape and out.e.shape == s.e.shape
    assert torch.equal(out.mask, s.mask)
    assert out.is_symmetric()
    with pytest.raises(SchemaError, match="max_nodes"):
        GDSSDenoiser(x_net={}, adj_net={}, x_dim=X_DIM, max_nodes=5).double()(s, times(len(s)))


@pytest.mark.parametrize("time_cond", [False, True])
def test_gradients_reach_every_parameter(time_cond):
    torch.manual_seed(0)
    for x_type in ("gcn", "gmh"):
        extra = SMALL_GMH if x_type == "gmh" else {"nhid": 8}
        den = GDSSDenoiser(
            x_net={"type": x_type, **extra, "time_cond": time_cond}, adj_net={**SMALL_A, "time_cond": time_cond},
            x_dim=X_DIM, max_nodes=7,
        ).double()
        s = make_state()
        out = den(s, times(len(s)))
        (out.x.pow(2).sum() + out.e.pow(2).sum()).backward()
        missing = [n for n, p in den.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
        assert not missing, missing


def test_time_conditioning_changes_output_and_default_ignores_t():
    s = make_state()
    torch.manual_seed(0)
    cond = GDSSDenoiser(
        x_net={"time_cond": True}, adj_net={"time_cond": True}, x_dim=X_DIM, max_nodes=7
    ).double()
    a, b = cond(s, torch.zeros(len(s), dtype=torch.float64)), cond(s, torch.full((len(s),), 0.5, dtype=torch.float64))
    assert not torch.allclose(a.x, b.x) and not torch.allclose(a.e, b.e)
    plain = GDSSDenoiser(x_net={}, adj_net={}, x_dim=X_DIM, max_nodes=7).double()
    assert torch.equal(plain(s, torch.zeros(len(s))).e, plain(s, torch.ones(len(s))).e)
    with pytest.raises(ValueError, match="time_cond"):
        ScoreNetworkX(in_dim=X_DIM, time_cond=True).double()(s.x, s.e[..., 0], s.mask, None)


def test_unknown_keys_name_the_closest_valid_one():
    with pytest.raises(SchemaError) as err:
        GDSSDenoiser(x_net={"type": "gcn", "nhidd": 8}, adj_net={}, x_dim=X_DIM, max_nodes=7)
    msg = str(err.value)
    assert "'nhidd'" in msg and "'nhid'" in msg and "\n" not in msg
    with pytest.raises(SchemaError, match="'num_layer'.*'num_layers'"):
        GDSSDenoiser(x_net={}, adj_net={"num_layer": 2}, x_dim=X_DIM, max_nodes=7)
    with pytest.raises(SchemaError, match="'adimm'.*valid keys: .*nhid"):  # no close match: lists the keys
        GDSSDenoiser(x_net={"type": "gcn", "adimm": 8}, adj_net={}, x_dim=X_DIM, max_nodes=7)
    with pytest.raises(SchemaError, match="'gmhh'.*'gmh'"):
        GDSSDenoiser(x_net={"type": "gmhh"}, adj_net={}, x_dim=X_DIM, max_nodes=7)
    with pytest.raises(SchemaError, match="in_dim"):
        GDSSDenoiser(x_net={"in_dim": 4}, adj_net={}, x_dim=X_DIM, max_nodes=7)
    with pytest.raises(SchemaError, match="num_heads"):
        ScoreNetworkA(in_dim=X_DIM, nhid=10, num_heads=4)
    with pytest.raises(SchemaError, match="conv"):
        ScoreNetworkA(in_dim=X_DIM, conv="gcn")


def test_registry():
    assert DENOISERS["gdss"] is GDSSDenoiser
    den = build_denoiser("gdss", x_net={}, adj_net={}, x_dim=X_DIM, max_nodes=7)
    assert isinstance(den, GDSSDenoiser)
    with pytest.raises(SchemaError, match="'digress'.*gdss"):
        build_denoiser("digress")


def test_helpers_catch_broken_functions():
    s = make_state()
    pos = torch.arange(s.max_nodes, dtype=s.x.dtype).view(1, -1, 1)

    def adds_position(state):
        return GraphState(x=state.x + pos, e=state.e, mask=state.mask)

    with pytest.raises(AssertionError, match="real-node permutation.*max deviation"):
        assert_permutation_equivariant(adds_position, s, generator=torch.Generator().manual_seed(0))

    def leaks_padding(state):
        total = state.x.sum(1, keepdim=True)  # sums padded slots too
        return GraphState(x=state.x + total, e=state.e, mask=state.mask)

    assert_permutation_equivariant(leaks_padding, s, generator=torch.Generator().manual_seed(0))
    with pytest.raises(AssertionError, match="padded slots leak"):
        assert_mask_isolated(leaks_padding, s, generator=torch.Generator().manual_seed(0))

    def copies_first_row(state):  # every row of e becomes row 0: breaks equivariance on e only
        first = state.e[:, :1].expand_as(state.e)
        return GraphState(x=state.x, e=first, mask=state.mask)

    with pytest.raises(AssertionError, match="e "):
        assert_permutation_equivariant(copies_first_row, s, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="padded"):
        assert_mask_isolated(leaks_padding, make_state(sizes=(7, 7)))


def test_layers():
    # no edges, no padding: GCN is a plain linear map
    conv = DenseGCNConv(3, 5).double()
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    out = conv(x, torch.zeros(2, 4, 4, dtype=torch.float64))
    assert torch.allclose(out, x @ conv.weight + conv.bias)
    # a full graph of 2 nodes averages them: D^-1/2 (A+I) D^-1/2 = 1/2 everywhere
    a = torch.ones(1, 2, 2, dtype=torch.float64)
    out = conv(x[:1, :2], a)
    h = x[:1, :2] @ conv.weight
    assert torch.allclose(out, h.mean(1, keepdim=True).expand_as(h) + conv.bias)
    mlp = MLP(3, 7, 2, 3, "elu")
    assert mlp(torch.randn(4, 5, 3)).shape == (4, 5, 2) and len(mlp.linears) == 3
    assert len(MLP(3, 7, 2, 1).linears) == 1
    emb = timestep_embedding(torch.tensor([0.0, 0.5, 1.0]), 9)
    assert emb.shape == (3, 9) and torch.all(emb[:, -1] == 0)
    assert torch.allclose(emb[0, :4], torch.ones(4))


def test_convolutions_sharing_an_adjacency_run_as_one_product():
    """``gcn_apply`` (one normalisation, the weights side by side) equals each convolution on its own, padding and
    a conv without bias included; a precomputed normalisation gives the layer's own output."""
    from graphdiff.nn.layers import gcn_apply, gcn_normalize

    g = torch.Generator().manual_seed(0)
    convs = [DenseGCNConv(3, 5).double(), DenseGCNConv(3, 2, bias=False).double(), DenseGCNConv(3, 4).double()]
    for c in convs:
        if c.bias is not None:
            torch.nn.init.normal_(c.bias, generator=g)
    x = torch.randn(3, 6, 3, dtype=torch.float64, generator=g)
    adj = torch.randn(3, 6, 6, dtype=torch.float64, generator=g)
    adj = adj + adj.transpose(1, 2)
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([[6], [4], [1]])
    a_hat = gcn_normalize(adj, mask)
    fused = gcn_apply(convs, x, a_hat, mask)
    for c, out in zip(convs, fused):
        alone = c(x, adj, mask)
        assert torch.allclose(out, alone, atol=1e-12) and torch.equal(c(x, adj, mask, normalized=a_hat), alone)
        assert torch.all(out[~mask] == 0)


def test_variants_have_their_own_layouts():
    gdss = ScoreNetworkA(in_dim=X_DIM, **{**SMALL_A, "num_linears": 2})
    v1 = ScoreNetworkA(in_dim=X_DIM, **{**SMALL_A, "num_linears": 2}, variant="graphdiff-v1")
    assert len(gdss.final.linears) == 3 and len(v1.final.linears) == 2  # GDSS's final pair MLP always has 3 layers
    c_in, nhid = SMALL_A["c_init"], SMALL_A["nhid"]
    # GDSS: node output = 2-layer MLP over the concatenated channels; v1: one linear map of their mean
    assert gdss.layers[0].x_out.linears[0].weight.shape == (nhid, c_in * nhid)
    assert len(gdss.layers[0].x_out.linears) == 2 and v1.layers[0].x_out.weight.shape == (nhid, nhid)
    mlp_conv = ScoreNetworkA(in_dim=X_DIM, **SMALL_A, conv="MLP")
    att = mlp_conv.layers[0].attn[0]
    assert len(att.q.linears) == 2 and isinstance(att.v, DenseGCNConv)  # tanh MLP queries, GCN values
    assert att.scale == pytest.approx(SMALL_A["nhid"] ** 0.5)
    assert v1.layers[0].attn[0].scale == pytest.approx((SMALL_A["nhid"] // SMALL_A["num_heads"]) ** 0.5)
    gmh = ScoreNetworkX_GMH(in_dim=X_DIM, **SMALL_GMH, num_linears=3)
    assert len(gmh.layers[0].adj_mlp.linears) == 3  # GDSS reads num_linears; v1 fixes it at 2
    with pytest.raises(SchemaError, match="graphdiff-v1.*has 2"):
        ScoreNetworkX_GMH(in_dim=X_DIM, **SMALL_GMH, num_linears=3, variant="graphdiff-v1")
    with pytest.raises(SchemaError, match="did you mean 'gdss'"):
        ScoreNetworkA(in_dim=X_DIM, variant="gdsss")


def test_symmetric_pair_mlp_is_the_mlp_on_every_pair():
    """The pair MLPs run on one triangle and are mirrored: on symmetric channels that is the MLP on every pair (the
    diagonal zero without ``diagonal``); on an asymmetric input the value at ``i < j`` is the one read."""
    from graphdiff.nn.gdss_pairs import symmetric_pair_mlp

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    mlp = MLP(5, 7, 3, 3, "elu").double()
    sym = []
    for c in (2, 3):
        t = torch.randn(4, 6, 6, c, generator=g, dtype=torch.float64)
        sym.append(t + t.transpose(1, 2))
    full = mlp(torch.cat(sym, -1))
    assert torch.allclose(symmetric_pair_mlp(mlp, sym, diagonal=True), full, atol=1e-12)
    off = symmetric_pair_mlp(mlp, sym, diagonal=False)
    eye = torch.eye(6, dtype=torch.bool)
    assert torch.allclose(off[:, ~eye], full[:, ~eye], atol=1e-12) and torch.all(off[:, eye] == 0)
    first = symmetric_pair_mlp(mlp, sym, diagonal=False, channels_first=True)
    assert first.is_contiguous() and torch.equal(first, off.permute(0, 3, 1, 2))
    skew = [torch.randn(2, 5, 5, 5, generator=g, dtype=torch.float64)]
    out = symmetric_pair_mlp(mlp, skew, diagonal=True)
    i, j = torch.triu_indices(5, 5)
    assert torch.equal(out, out.transpose(1, 2)) and torch.allclose(out[:, i, j], mlp(skew[0])[:, i, j], atol=1e-12)


@pytest.mark.parametrize("compute_x,compute_adj", [(True, True), (False, True), (True, False)])
def test_gcn_attention_layer_runs_its_channels_together_as_one_at_a_time(compute_x, compute_adj):
    """A GCN attention layer computes every channel's attention in one batched pass: the node and adjacency
    outputs equal those built from each channel's own GraphMultiHeadAttention."""
    from graphdiff.nn.gdss import AttentionLayer

    torch.manual_seed(0)
    layer = AttentionLayer(in_dim=5, attn_dim=8, out_dim=6, c_in=3, c_out=2, num_heads=4, conv="GCN",
                           compute_x=compute_x, compute_adj=compute_adj).double()
    s = make_state()
    adj = torch.rand(s.mask.shape[0], 3, s.mask.shape[1], s.mask.shape[1], dtype=torch.float64)
    adj = adj + adj.transpose(-1, -2)
    x = torch.randn(*s.mask.shape, 5, dtype=torch.float64)
    x_new, adj_new = layer(x, adj, s.mask)
    per = [attn(x, adj[:, c], s.mask) for c, attn in enumerate(layer.attn)]
    if compute_x:
        h = torch.cat([v for v, _ in per], -1)
        want = torch.tanh(layer.x_out(h)) * s.mask.unsqueeze(-1)
        assert torch.allclose(x_new, want, atol=1e-12) and x_new.abs().sum() > 0
    else:
        assert x_new is None and all(v is None for v, _ in per)
    if compute_adj:
        feats = torch.cat([torch.stack([m for _, m in per], -1), adj.permute(0, 2, 3, 1)], -1)
        want = 2.0 * layer.adj_mlp(feats).permute(0, 3, 1, 2)
        want = want * (s.mask.unsqueeze(-1) & s.mask.unsqueeze(-2)).unsqueeze(1)
        assert torch.allclose(adj_new, want, atol=1e-10) and adj_new.abs().sum() > 0
    else:
        assert adj_new is None


@pytest.mark.parametrize("heads,n", [(1, 5), (2, 7), (4, 9)])
def test_block_head_dots_equal_the_einsum(heads, n):
    from graphdiff.nn.gdss_pairs import block_head_dots, head_dots

    g = torch.Generator().manual_seed(heads)
    q, k = (torch.randn(3, n, heads * 3, generator=g, dtype=torch.float64) for _ in range(2))
    ref = torch.einsum("bihd,bjhd->bhij", q.view(3, n, heads, 3), k.view(3, n, heads, 3))
    assert torch.allclose(block_head_dots(q, k, heads), ref, atol=1e-12)
    assert torch.equal(head_dots(q, k, heads), block_head_dots(q, k, heads))  # head size 3: the block product
    wide = [torch.randn(3, n, heads * 12, generator=g, dtype=torch.float64) for _ in range(2)]  # head size 12
    ein = torch.einsum("bihd,bjhd->bhij", *(w.view(3, n, heads, 12) for w in wide))
    assert torch.equal(head_dots(*wide, heads), ein)


@pytest.mark.parametrize("conv", ["GCN", "MLP"])
@pytest.mark.parametrize("kind", ["adj", "adj_triangle", "x_gmh", "x_gcn"])
def test_networks_under_compile_equal_eager(conv, kind, monkeypatch):
    """Under torch.compile the networks take other forms of the same function (the block head product, pair MLPs
    on every pair up to EVERY_PAIR_MAX_NODES slots and on the triangle above, tanh through sigmoid, bias adds apart
    from the products); traced by dynamo with the eager backend (no code generation) each network gives the eager
    outputs."""
    import graphdiff.nn.gdss_pairs as pairs

    if kind == "adj_triangle":  # the compiled triangle form, as on graphs larger than the threshold
        monkeypatch.setattr(pairs, "EVERY_PAIR_MAX_NODES", 0)
        kind = "adj"
    torch._dynamo.reset()
    torch.manual_seed(0)
    if kind == "adj":
        net = ScoreNetworkA(in_dim=X_DIM, **SMALL_A, conv=conv).double()
    elif kind == "x_gmh":
        net = ScoreNetworkX_GMH(in_dim=X_DIM, **SMALL_GMH, conv=conv).double()
    else:
        net = ScoreNetworkX(in_dim=X_DIM, depth=2, nhid=8).double()
    s = make_state()
    eager = net(s.x, s.e[..., 0], s.mask)
    traced = torch.compile(net, backend="eager", dynamic=False)(s.x, s.e[..., 0], s.mask)
    assert torch.allclose(traced, eager, atol=1e-12) and not torch.equal(eager, torch.zeros_like(eager))


def test_triangle_pair_mlps_train_as_the_full_ones(monkeypatch):
    """Loss and parameter gradients of the adjacency network are those of the MLPs applied to every pair (then
    symmetrised), so training is unchanged by the triangle evaluation."""
    import graphdiff.nn.gdss as gdss

    def every_pair(mlp, channels, diagonal, channels_first=False):
        out = mlp(torch.cat(channels, -1))
        out = 0.5 * (out + out.transpose(1, 2))
        out = out if diagonal else out * (1 - torch.eye(out.shape[1], dtype=out.dtype)).unsqueeze(-1)
        return out.permute(0, 3, 1, 2).contiguous() if channels_first else out

    s = make_state()
    grads = []
    for fn in (gdss.symmetric_pair_mlp, every_pair):
        monkeypatch.setattr(gdss, "symmetric_pair_mlp", fn)
        torch.manual_seed(0)
        net = ScoreNetworkA(in_dim=X_DIM, **SMALL_A).double()
        loss = (net(s.x, s.e[..., 0], s.mask) ** 2).sum()
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in net.parameters()]))
    (l1, g1), (l2, g2) = grads
    assert torch.allclose(l1, l2, atol=1e-12) and l1 > 0
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(g1, g2))


@pytest.mark.parametrize("b,n", [(0, 5), (2, 0), (0, 0), (2, 1)])
def test_networks_take_empty_batches_and_one_node_graphs(b, n):
    """No graph, graphs of no slot and one-node graphs give outputs of the right (possibly empty) shape."""
    x = torch.randn(b, n, X_DIM)
    adj = torch.rand(b, n, n)
    adj = adj + adj.transpose(1, 2)
    mask = torch.ones(b, n, dtype=torch.bool)
    assert ScoreNetworkA(in_dim=X_DIM, **SMALL_A)(x, adj, mask).shape == (b, n, n)
    assert ScoreNetworkX_GMH(in_dim=X_DIM, **SMALL_GMH)(x, adj, mask).shape == (b, n, X_DIM)
    if b * n:
        assert torch.equal(ScoreNetworkA(in_dim=X_DIM, **SMALL_A)(x, adj, mask), torch.zeros(b, n, n)) == (n == 1)


def test_attention_layer_with_no_output_returns_none():
    from graphdiff.nn.gdss import AttentionLayer

    layer = AttentionLayer(in_dim=X_DIM, attn_dim=4, out_dim=4, c_in=2, c_out=2, num_heads=2, compute_x=False,
                           compute_adj=False)
    s = make_state()
    assert layer(s.x.float(), torch.rand(s.mask.shape[0], 2, s.mask.shape[1], s.mask.shape[1]), s.mask) == (None, None)
