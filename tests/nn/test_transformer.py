"""Graph transformer denoiser: equivariance and padding isolation for every set of extra features, symmetric
logits, conditioning, input checks, gradients and a tiny overfit."""

import itertools

import networkx as nx
import pytest
import torch

from graphdiff import GraphState
from graphdiff.errors import ConfigError, SchemaError
from graphdiff.nn.equivariance import assert_mask_isolated, assert_permutation_equivariant
from graphdiff.nn.transformer import GraphTransformerDenoiser, masked_pool

from .test_features import batch, generic_graphs, generic_spectrum

NODE_DIM, EDGE_DIM, K = 4, 3, 2
SMALL = dict(n_layers=2, hidden_x=8, hidden_e=4, hidden_y=4, n_heads=2, ff_x=8, ff_e=4, ff_y=4, spectral_k=K,
             rrwp_steps=3)
SUBSETS = [kinds for r in range(4) for kinds in itertools.combinations(("cycles", "spectral", "rrwp"), r)]


def make_state(seed=0, n=9, dtype=torch.float64):
    """Noisy one-hot graphs at scattered slots: random node types and edge types on a generic random graph."""
    graphs = generic_graphs(3, seed, sizes=range(5, 9), k=K) + [nx.empty_graph(1), nx.empty_graph(0)]
    adj, mask, _ = batch(graphs, n=n, seed=seed, dtype=dtype)
    assert generic_spectrum(adj, mask, K)
    g = torch.Generator().manual_seed(seed)
    types = torch.randint(1, EDGE_DIM, adj.shape, generator=g)
    types = torch.triu(types, 1)
    types = (types + types.transpose(1, 2)) * adj.long()
    x = torch.nn.functional.one_hot(torch.randint(0, NODE_DIM, mask.shape, generator=g), NODE_DIM).to(dtype)
    e = torch.nn.functional.one_hot(types, EDGE_DIM).to(dtype)
    return GraphState(x=x, e=e, mask=mask).masked()


def times(b, seed=1):
    return torch.rand(b, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def model(kinds, cond_dim=0, seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(node_dim=NODE_DIM, edge_dim=EDGE_DIM, cond_dim=cond_dim, max_nodes=9, extra_features=kinds, **SMALL)
    return GraphTransformerDenoiser(**{**args, **kw}).double()


@pytest.mark.parametrize("kinds", SUBSETS, ids=lambda k: "+".join(k) or "none")
def test_permutation_equivariant_and_padding_isolated(kinds):
    net = model(kinds, cond_dim=2)
    s = make_state()
    cond = torch.randn(len(s), 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    fn = lambda state, t: net(state, t, cond)  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    assert_permutation_equivariant(fn, s, t=times(len(s)), atol=1e-9, generator=gen)
    assert_mask_isolated(fn, s, t=times(len(s)), atol=1e-9, generator=gen)


def test_output_shapes_symmetry_and_masking():
    net = model(("cycles", "spectral", "rrwp"), node_out=5, edge_out=2)
    s = make_state(seed=3)
    out = net(s, times(len(s)))
    assert isinstance(out, GraphState) and torch.equal(out.mask, s.mask)
    assert out.x.shape == (*s.mask.shape, 5) and out.e.shape == (*s.e.shape[:3], 2)
    assert torch.equal(out.e, out.e.transpose(1, 2))
    assert torch.all(torch.diagonal(out.e, dim1=1, dim2=2) == 0)
    assert torch.all(out.x[~s.mask] == 0) and torch.all(out.e[~s.pair_mask()] == 0)
    assert out.e[s.pair_mask()].abs().sum() > 0
    # a scalar t is broadcast; float32 works with default sizes too
    scalar = net(s, torch.tensor(0.3, dtype=torch.float64)).x
    assert torch.equal(scalar, net(s, torch.full((len(s),), 0.3, dtype=torch.float64)).x)
    big = GraphTransformerDenoiser(node_dim=NODE_DIM, edge_dim=EDGE_DIM, max_nodes=9, n_layers=1)
    assert big(make_state(dtype=torch.float32), times(5).float()).e.dtype == torch.float32


def test_time_and_condition_change_the_output():
    net = model(("cycles",), cond_dim=2)
    s = make_state()
    t = times(len(s))
    base = net(s, t)
    assert torch.equal(base.x, net(s, t, torch.zeros(len(s), 2, dtype=torch.float64)).x)  # None means zeros
    moved = net(s, t, torch.ones(len(s), 2, dtype=torch.float64))
    assert not torch.allclose(base.x[s.mask], moved.x[s.mask])
    assert not torch.allclose(base.e[s.pair_mask()], moved.e[s.pair_mask()])
    later = net(s, t + 0.5)
    assert not torch.allclose(base.x[s.mask], later.x[s.mask])


def test_wrong_widths_raise_one_line_schema_errors():
    net = model((), cond_dim=2)
    s = make_state()
    t = times(len(s))
    with pytest.raises(SchemaError, match=r"^cond has 3 columns, the model was built with cond_dim=2$"):
        net(s, t, torch.zeros(len(s), 3, dtype=torch.float64))
    with pytest.raises(SchemaError, match="cond has 1 columns, the model was built with cond_dim=0"):
        model(())(s, t, torch.zeros(len(s), 1, dtype=torch.float64))
    with pytest.raises(SchemaError, match="cond has 2 rows"):
        net(s, t, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(SchemaError, match=f"x has 5 channels, the model was built with node_dim={NODE_DIM}"):
        net(GraphState(x=torch.zeros(*s.mask.shape, 5, dtype=torch.float64), e=s.e, mask=s.mask), t)
    with pytest.raises(SchemaError, match=f"e has 2 channels, the model was built with edge_dim={EDGE_DIM}"):
        net(GraphState(x=s.x, e=s.e[..., :2], mask=s.mask), t)
    with pytest.raises(SchemaError, match="max_nodes=9"):
        net(s.pad_to(10), t)
    with pytest.raises(SchemaError, match="t must be"):
        net(s, t[:2])
    with pytest.raises(ConfigError, match="n_heads=3"):
        model((), n_heads=3)
    with pytest.raises(ConfigError, match="'spectrum'"):
        model(("spectrum",))
    with pytest.raises(ConfigError, match="n_layers"):
        model((), n_layers=0)


def test_gradients_reach_every_parameter():
    net = model(("cycles", "spectral", "rrwp"), cond_dim=2)
    s = make_state()
    cond = torch.randn(len(s), 2, dtype=torch.float64)
    out = net(s, times(len(s)), cond)
    (out.x.pow(2).sum() + out.e.pow(2).sum()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not missing, missing


def test_masked_pool():
    h = torch.tensor([[[1.0], [3.0], [100.0]], [[5.0], [0.0], [0.0]], [[2.0], [2.0], [2.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False], [False, False, False]])
    out = masked_pool(h, mask, eps=0.0)
    assert torch.allclose(out[0], torch.tensor([2.0, 1.0, 3.0, 1.0]))
    assert torch.allclose(out[1], torch.tensor([5.0, 5.0, 5.0, 0.0]))
    assert torch.all(out[2] == 0)


def test_tiny_overfit_reproduces_edges_from_noisy_graphs():
    """Two fixed 8-node graphs (a cycle and a star, nodes labelled by their index as node type), four fixed noisy
    copies of each (20% of pairs flipped): after 100 Adam steps the denoiser returns the clean edges from the noisy
    copies (about 95% of pairs), well above the noisy input (79%) and the all-no-edge guess (73%)."""
    torch.manual_seed(0)
    n, flip, copies = 8, 0.2, 4
    graphs = [nx.cycle_graph(n), nx.star_graph(n - 1)]
    clean = torch.stack([torch.tensor(nx.to_numpy_array(h, nodelist=range(n)), dtype=torch.float32) for h in graphs])
    off = ~torch.eye(n, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    target = clean.repeat_interleave(copies, 0)
    flips = torch.triu((torch.rand(target.shape, generator=gen) < flip).float(), 1)
    noisy = (target + flips + flips.transpose(1, 2)) % 2
    e = torch.nn.functional.one_hot(noisy.long(), 2).float() * off.unsqueeze(-1)
    state = GraphState(x=torch.eye(n).expand(len(e), n, n), e=e, mask=torch.ones(len(e), n, dtype=torch.bool))
    t = torch.full((len(e),), flip)
    net = GraphTransformerDenoiser(node_dim=n, edge_dim=2, max_nodes=n, n_layers=2, hidden_x=16, hidden_e=8,
                                   hidden_y=8, n_heads=2, ff_x=16, ff_e=16, ff_y=16, extra_features=("cycles",))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    labels = target[:, off].long().reshape(-1)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(net(state, t).e[:, off].reshape(-1, 2), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = net(state, t).e.argmax(-1)[:, off].reshape(-1)
    acc = (pred == labels).float().mean()
    input_acc = (noisy[:, off].reshape(-1) == labels).float().mean()
    chance = (labels == 0).float().mean()
    assert acc > 0.9 and acc > input_acc + 0.1 and acc > chance + 0.15, (acc, input_acc, chance)


def test_linear_adds_its_bias_apart_only_under_compile_and_keeps_nn_linear_state():
    """``graphdiff.nn.layers.Linear`` is ``nn.Linear`` eager (same parameters, state dict, outputs); traced by
    dynamo it adds the bias after the product, the same values up to rounding; the transformer denoisers use it."""
    from graphdiff.nn.layers import Linear

    torch.manual_seed(0)
    ref = torch.nn.Linear(5, 3).double()
    lin = Linear(5, 3).double()
    lin.load_state_dict(ref.state_dict())
    assert isinstance(lin, torch.nn.Linear) and list(lin.state_dict()) == ["weight", "bias"]
    x = torch.randn(4, 7, 5, dtype=torch.float64)
    assert torch.equal(lin(x), ref(x))
    torch._dynamo.reset()
    traced = torch.compile(lin, backend="eager", dynamic=False)(x)
    assert torch.allclose(traced, ref(x), atol=1e-12) and traced.abs().sum() > 0
    net = GraphTransformerDenoiser(node_dim=NODE_DIM, edge_dim=EDGE_DIM, max_nodes=9, n_layers=1)
    assert any(isinstance(m, Linear) for m in net.modules())
    # under bf16 autocast the compiled form keeps nn.Linear's output dtype (the float32 bias does not promote it)
    lin32, x32 = lin.float(), x.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        eager = lin32(x32)
        torch._dynamo.reset()
        traced = torch.compile(lin32, backend="eager", dynamic=False)(x32)
    assert eager.dtype == traced.dtype == torch.bfloat16 and torch.allclose(traced.float(), eager.float(), atol=1e-2)
