"""The 1-D convolution baseline on path-graph series states: time order from positions, padding, parameter match."""

from dataclasses import replace

import pytest
import torch

from graphdiff.adapters import TimeSeriesPath
from graphdiff.config import load_preset
from graphdiff.errors import SchemaError
from graphdiff.nn import Conv1dDenoiser, ConvDenoiser, build_denoiser

SERIES = {"taylor": 384, "wineind": 48, "airpassengers": 48, "sunspots": 144, "msft": 65, "elec_equip": 60}


def _state(b=3, length=20, season=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TimeSeriesPath(length, 1, season, prediction_length=5).to_state(torch.rand(b, length, generator=g) + 1)


def test_the_image_cnn_does_not_fit_a_path_but_cnn1d_does():
    s = _state()
    with pytest.raises(SchemaError, match="full grid"):  # pos = (time, season phase): not a full grid
        ConvDenoiser(x_dim=1, max_nodes=20, levels=2)(s, torch.zeros(3))
    out = Conv1dDenoiser(x_dim=1, max_nodes=20, hidden=8, levels=3, blocks=2)(s, torch.zeros(3))
    assert out.x.shape == (3, 20, 1) and torch.isfinite(out.x).all()


@pytest.mark.parametrize("pos_freqs", [0, 4])
def test_nodes_are_put_in_time_order_from_positions(pos_freqs):
    torch.manual_seed(0)
    net = Conv1dDenoiser(x_dim=1, max_nodes=20, hidden=8, levels=2, blocks=2, pos_freqs=pos_freqs, cond_dim=2)
    s = replace(_state(), y=torch.rand(3, 2))
    t = torch.tensor([-1.0, 0.0, 0.5])
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    out = net(s, t).x
    torch.testing.assert_close(net(s.permute(perm), t).x, out[:, perm], atol=1e-5, rtol=1e-5)
    # a convolution, not a per-node map: moving one value changes its neighbours' outputs
    x = s.x.clone()
    x[:, 10] += 1.0
    moved = net(replace(s, x=x), t).x
    assert (moved[:, 9] - out[:, 9]).abs().max() > 1e-4 and (moved[:, 11] - out[:, 11]).abs().max() > 1e-4


def test_values_in_padded_slots_never_reach_real_steps():
    torch.manual_seed(0)
    net = Conv1dDenoiser(x_dim=1, max_nodes=20, hidden=8, levels=2, blocks=1)
    s = _state()
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[:, 13:] = False
    a = replace(s, mask=mask)
    b = replace(s, mask=mask, x=torch.where(mask.unsqueeze(-1), s.x, torch.randn_like(s.x) * 100))
    oa, ob = net(a, torch.zeros(3)).x, net(b, torch.zeros(3)).x
    torch.testing.assert_close(oa, ob)
    assert (oa[~mask] == 0).all()


def test_bad_shapes_are_schema_errors():
    with pytest.raises(SchemaError, match="odd kernel"):
        Conv1dDenoiser(x_dim=1, max_nodes=8, kernel=4)
    s = _state()
    with pytest.raises(SchemaError, match="distinct time positions"):
        Conv1dDenoiser(x_dim=1, max_nodes=20, hidden=8)(replace(s, pos=torch.zeros_like(s.pos)), torch.zeros(3))


@pytest.mark.parametrize("series", sorted(SERIES))
def test_cnn_presets_match_the_graph_denoiser_parameters(series):
    def count(preset):
        model = dict(load_preset(preset).model)
        return sum(p.numel() for p in build_denoiser(model.pop("name"), x_dim=1, max_nodes=SERIES[series],
                                                     **model).parameters())

    grid, cnn = count(f"edm-tsdiff-{series}"), count(f"edm-tsdiff_cnn-{series}")
    assert load_preset(f"edm-tsdiff_cnn-{series}").dataset == series
    assert abs(cnn - grid) / grid < 0.10, (grid, cnn)
