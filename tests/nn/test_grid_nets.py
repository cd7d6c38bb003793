"""Grid message-passing denoiser and its CNN baseline: node-permutation equivariance, padding isolation, shapes."""

import pytest
import torch
from dataclasses import replace

from graphdiff.adapters import ImageGrid
from graphdiff.errors import SchemaError
from graphdiff.nn import ConvDenoiser, GridDenoiser


def _state(b=3, h=4, w=6, conn=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ImageGrid(h, w, connectivity=conn).to_state(torch.rand(b, 1, h, w, generator=g))


@pytest.mark.parametrize("levels,messages,kinds", [(1, "kinds", 2), (3, "kinds", 2), (3, "directions", 8)])
def test_grid_denoiser_permutes_with_the_nodes(levels, messages, kinds):
    torch.manual_seed(0)
    net = GridDenoiser(x_dim=1, max_nodes=24, hidden=16, levels=levels, blocks=1, edge_kinds=kinds, cond_dim=2,
                       messages=messages)
    s = replace(_state(), y=torch.rand(3, 2))
    t = torch.tensor([-1.0, 0.0, 0.5])
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(1))
    out = net(s, t).x
    out_p = net(s.permute(perm), t).x  # values, edges and positions move together
    torch.testing.assert_close(out_p, out[:, perm], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out[:, 0], out[:, 1])  # positions make nodes distinguishable


def test_padded_slots_never_reach_real_nodes():
    torch.manual_seed(0)
    net = GridDenoiser(x_dim=1, max_nodes=24, hidden=16, levels=2, blocks=1)
    s = _state(conn=4)
    mask = torch.ones(3, 24, dtype=torch.bool)
    mask[:, 17:] = False
    a = replace(s, mask=mask)
    b = replace(s, mask=mask, x=torch.where(mask.unsqueeze(-1), s.x, torch.randn_like(s.x) * 100))
    oa, ob = net(a, torch.zeros(3)).x, net(b, torch.zeros(3)).x
    torch.testing.assert_close(oa[mask], ob[mask])
    assert float(oa.detach()[~mask].abs().max()) == 0.0


def test_cnn_baseline_reads_the_grid_from_positions():
    torch.manual_seed(0)
    net = ConvDenoiser(x_dim=1, max_nodes=24, hidden=8, levels=2, blocks=1)
    s = _state(conn=4)
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(2))
    out = net(s, torch.zeros(3)).x
    torch.testing.assert_close(net(s.permute(perm), torch.zeros(3)).x, out[:, perm], atol=1e-5, rtol=1e-5)
    with pytest.raises(SchemaError, match="full grid"):
        net(replace(s, pos=torch.rand(3, 24, 3)), torch.zeros(3))


def test_bad_inputs_are_schema_errors():
    net = GridDenoiser(x_dim=2, max_nodes=24, hidden=8, levels=1, blocks=1)
    with pytest.raises(SchemaError, match="wants x with 2 channels"):
        net(_state(), torch.zeros(3))
    with pytest.raises(SchemaError, match="levels >= 1"):
        GridDenoiser(x_dim=1, max_nodes=4, levels=0)


def test_directional_messages_tell_left_from_right():
    from graphdiff.nn.grid import _directions

    pos = torch.tensor([[0.0, 0, 0], [-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [1, 1, 0]])
    edges = torch.tensor([[0, 1], [0, 2], [0, 3], [0, 4], [0, 5]])
    assert _directions(pos, edges).tolist() == [0, 1, 2, 3, 7]  # up, down, left, right, then a diagonal
    torch.manual_seed(0)
    s = _state(b=1, h=1, w=3, conn=4)
    s = replace(s, x=torch.tensor([[[1.0], [0.0], [0.0]]]))  # a spike at the left end
    mirrored = replace(s, x=torch.tensor([[[0.0], [0.0], [1.0]]]))  # ... and at the right end
    for messages, differs in (("kinds", False), ("directions", True)):
        net = GridDenoiser(x_dim=1, max_nodes=3, hidden=8, levels=1, blocks=1, edge_kinds=4, pos_freqs=0,
                           messages=messages)
        mid = net(s, torch.zeros(1)).x[0, 1], net(mirrored, torch.zeros(1)).x[0, 1]
        assert (not torch.allclose(*mid)) == differs


def test_single_neighbour_gather_equals_the_dense_product(monkeypatch):
    from graphdiff.nn.grid import Level

    torch.manual_seed(0)
    net = GridDenoiser(x_dim=1, max_nodes=24, hidden=8, levels=2, blocks=1, edge_kinds=4, messages="directions")
    s = _state(conn=4)
    mask = torch.ones(3, 24, dtype=torch.bool)
    mask[0, 20:] = False
    s = replace(s, mask=mask)
    assert net.pyramid(s)[0].neighbours(4) is not None  # one neighbour per direction on a 4-neighbour grid
    fast = net(s, torch.zeros(3)).x
    monkeypatch.setattr(Level, "neighbours", lambda self, k: None)
    torch.testing.assert_close(net(s, torch.zeros(3)).x, fast)
