"""Forward SDEs: marginals, discretisations and transitions agree with their definitions."""

import math

import pytest
import torch

from graphdiff.errors import ConfigError
from graphdiff.processes.sde import SubVPSDE, VESDE, VPSDE, build_sde

T = torch.tensor([0.05, 0.3, 0.7, 1.0], dtype=torch.float64)


def test_vp_marginal_preserves_unit_variance():
    sde = VPSDE(0.1, 20.0)
    mean, std = sde.marginal(torch.ones(4, 1, dtype=torch.float64), T)
    assert torch.allclose(mean[:, 0] ** 2 + std**2, torch.ones(4, dtype=torch.float64))
    # at t=1 with beta_max=20 the data is forgotten
    assert mean[-1, 0] < 0.01


def test_vp_marginal_matches_simulated_forward_sde():
    sde = VPSDE(0.1, 20.0)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000,), 2.0, dtype=torch.float64)
    x, n = x0.clone(), 2000
    for i in range(n):
        t = torch.full((1,), (i + 0.5) / n * 0.5, dtype=torch.float64)
        f, gg = sde.sde(x, t)
        x = x + f / n * 0.5 + gg * math.sqrt(0.5 / n) * torch.randn(x.shape, generator=g, dtype=torch.float64)
    mean, std = sde.marginal(x0[:1], torch.tensor([0.5], dtype=torch.float64))
    assert abs(x.mean() - mean[0]) < 0.02
    assert abs(x.std() - std[0]) < 0.02


def test_ve_and_subvp_marginals():
    ve = VESDE(0.01, 50.0)
    m, s = ve.marginal(torch.ones(4, 1, dtype=torch.float64), T)
    assert torch.equal(m, torch.ones(4, 1, dtype=torch.float64))
    assert torch.allclose(s, 0.01 * 5000.0**T)
    assert ve.prior_std == 50.0 and not ve.scales_output()
    vp, sub = VPSDE(0.1, 20.0), SubVPSDE(0.1, 20.0)
    _, s_vp = vp.marginal(torch.ones(4, 1, dtype=torch.float64), T)
    _, s_sub = sub.marginal(torch.ones(4, 1, dtype=torch.float64), T)
    assert (s_sub <= s_vp + 1e-12).all()


@pytest.mark.parametrize("cls,args", [(VPSDE, (0.1, 20.0)), (VESDE, (0.01, 50.0)), (SubVPSDE, (0.1, 20.0))])
def test_discretize_tends_to_euler(cls, args):
    sde = cls(*args)
    x = torch.randn(4, 3, dtype=torch.float64)
    h = 1e-4
    f, g = sde.discretize(x, T, h)
    fe, ge = sde.sde(x, T)
    assert torch.allclose(f, fe * h, rtol=1e-2, atol=1e-9)
    assert torch.allclose(g, ge * math.sqrt(h), rtol=1e-2)


def test_vp_transition_undoes_forward_mean_shrinkage():
    sde = VPSDE(0.1, 20.0)
    x = torch.ones(4, 1, dtype=torch.float64)
    h = 0.05
    m_t, _ = sde.marginal(x, T)
    m_prev, _ = sde.marginal(x, T - h)
    back, std = sde.transition(m_t, T, h)
    assert torch.allclose(back, m_prev)
    assert (std > 0).all()


def test_build_sde_errors_name_the_key():
    with pytest.raises(ConfigError, match="did you mean 'VP'"):
        build_sde({"type": "VPP"})
    with pytest.raises(ConfigError, match="beta_max"):
        build_sde({"type": "VE", "beta_maks": 1.0})
    with pytest.raises(ConfigError, match="0 < beta_min < beta_max"):
        build_sde({"type": "VP", "beta_min": 2.0, "beta_max": 1.0})
