"""The noisy-graph regressor is invariant to node permutations and ignores padded slots."""

from __future__ import annotations

import torch

from graphdiff.nn.regressor import GraphRegressor
from graphdiff.state import GraphState


def test_permutation_invariant_and_padding_blind():
    torch.manual_seed(0)
    net = GraphRegressor(node_dim=4, edge_dim=3, max_nodes=7, n_targets=2, n_layers=2, hidden_x=8, hidden_e=8,
                         hidden_y=8, n_heads=2, ff_x=8, ff_e=8, ff_y=8, rrwp_steps=3).eval()
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 6)), 4).float()
    e_idx = torch.randint(0, 3, (2, 6, 6)).triu(1)
    e = torch.nn.functional.one_hot(e_idx + e_idx.transpose(1, 2), 3).float()
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    t = torch.tensor([0.3, 0.7])
    out = net(GraphState(x=x, e=e, mask=mask), t)
    assert out.shape == (2, 2)
    perm = torch.tensor([3, 0, 2, 1, 4, 5])  # keeps the second graph's padding at the end
    p = net(GraphState(x=x[:, perm], e=e[:, perm][:, :, perm], mask=mask[:, perm]), t)
    assert torch.allclose(out, p, atol=1e-5)
    x2 = x.clone()
    x2[1, 4:] = torch.randn(2, 4)  # padded slots of graph 1 change
    assert torch.allclose(net(GraphState(x=x2, e=e, mask=mask), t)[1], out[1], atol=1e-5)
