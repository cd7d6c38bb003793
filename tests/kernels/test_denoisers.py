"""The denoisers give the same outputs and parameter gradients through either kernel path (Triton on a GPU when there
is one, else under the interpreter on CPU; tiny sizes). Tolerance ``atol = rtol = 1e-4``: fp32 reorderings passed
through a few layers."""

from __future__ import annotations

import torch

from graphdiff.nn import EQGATDenoiser, GraphTransformerDenoiser
from graphdiff.state import GraphState

def both_paths(make_net, state, t):
    results = []
    for mode in ("reference", "triton"):
        torch.manual_seed(0)
        net = make_net(mode).to(state.mask.device)
        out = net(state, t)
        loss = out.x.square().sum() + out.e.square().sum() + (0 if out.pos is None else out.pos.square().sum())
        grads = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True)
        results.append((out, grads))
    return results


def assert_same(results):
    (out_r, grads_r), (out_t, grads_t) = results
    torch.testing.assert_close(out_t.x, out_r.x, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_t.e, out_r.e, atol=1e-4, rtol=1e-4)
    if out_r.pos is not None:
        torch.testing.assert_close(out_t.pos, out_r.pos, atol=1e-4, rtol=1e-4)
    for g_t, g_r in zip(grads_t, grads_r):
        assert (g_t is None) == (g_r is None)
        if g_r is not None:
            torch.testing.assert_close(g_t, g_r, atol=1e-4, rtol=1e-4)


def small_state(device, pos=False):
    g = torch.Generator().manual_seed(3)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    x = torch.randn(2, 5, 3, generator=g).softmax(-1)
    e = torch.randn(2, 5, 5, 2, generator=g)
    e = (e + e.transpose(1, 2)).softmax(-1)
    state = GraphState(x=x, e=e, mask=mask, pos=torch.randn(2, 5, 3, generator=g) if pos else None)
    return state.to(device)


def test_graph_transformer_is_the_same_through_either_path(device):
    make = lambda mode: GraphTransformerDenoiser(node_dim=3, edge_dim=2, max_nodes=5, n_layers=2, hidden_x=8,
                                                 hidden_e=4, hidden_y=4, n_heads=2, ff_x=8, ff_e=8, ff_y=8,
                                                 extra_features=None, kernels=mode)
    assert_same(both_paths(make, small_state(device), torch.tensor([0.2, 0.9], device=device)))


def test_eqgat_is_the_same_through_either_path(device):
    make = lambda mode: EQGATDenoiser(node_dim=3, edge_dim=2, max_nodes=5, n_layers=1, hidden=8, vectors=2,
                                      edge_hidden=4, heads=2, num_rbf=4, kernels=mode)
    assert_same(both_paths(make, small_state(device, pos=True), torch.tensor([0.2, 0.9], device=device)))
