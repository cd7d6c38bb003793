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


@pytest.mark.parametrize("levels", [1, 3])
def test_grid_denoiser_permutes_with_the_nodes(levels):
    torch.manual_seed(0)
    net = GridDenoiser(x_dim=1, max_nodes=24, hidden=16, levels=levels, blocks=1, edge_kinds=2, cond_dim=2)
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
