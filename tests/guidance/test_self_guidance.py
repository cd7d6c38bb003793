"""TSDiff self-guidance on an exactly known model (a correlated Gaussian with its ideal denoiser)."""

import pytest
import torch

from graphdiff.errors import ConfigError
from graphdiff.guidance.self_guidance import observation_loss
from graphdiff.metrics.images import inpainting_mse
from graphdiff.state import GraphState
from tests.gaussian_oracle import factor_cov, gaussian_pipeline


def _problem(n=64):
    cov = factor_cov(8, common=0.8, own=0.1)
    truth = (torch.linalg.cholesky(cov) @ torch.randn(8, n, generator=torch.Generator().manual_seed(0))).T
    truth = truth.unsqueeze(-1)
    known = torch.zeros(n, 8, 1, dtype=torch.bool)
    known[:, :4] = True  # the first row of the 2 x 4 grid is observed
    return gaussian_pipeline(cov), truth, known


def test_self_guidance_cuts_inpainting_error_against_unguided():
    pipe, truth, known = _problem()
    errs = {}
    for scale in (0.0, 2.0):
        s = pipe.sample(len(truth), guide="self", observed=truth, observed_mask=known, steps=12, progress=False,
                        guide_options={"scale": scale})
        errs[scale] = inpainting_mse(s.x, truth, known)
        assert torch.equal(s.x[known], truth[known])  # observed values are kept
    # unguided: an independent draw, error ~ 2 Var = 1.3; guided: close to the conditional variance
    assert errs[0.0] > 0.9 and errs[2.0] < 0.35 * errs[0.0]
    assert pipe.last_guidance.cost["network_calls_per_sample"] == 23.0  # Heun: 2 * 12 - 1


def test_replacement_conditions_without_gradients_and_keeps_the_sampler_noise():
    """Replacement alone (scale 0) feeds the ideal denoiser the noised observation: its completions are close to the
    conditional ones (well below an unguided draw's error) with no backward pass; with nothing observed it changes
    nothing, because its noise comes from streams of its own."""
    pipe, truth, known = _problem()
    opts = dict(observed=truth, steps=12, progress=False, seed=3)
    errs = {}
    for name, go in (("unguided", {"scale": 0.0}), ("replace", {"scale": 0.0, "replace": True}),
                     ("replace+guide", {"scale": 2.0, "replace": True})):
        s = pipe.sample(len(truth), guide="self", observed_mask=known, guide_options=go, **opts)
        errs[name] = inpainting_mse(s.x, truth, known)
        assert pipe.last_guidance.cost["replace"] is go.get("replace", False)
    assert errs["replace"] < 0.4 * errs["unguided"] and errs["replace+guide"] < 0.4 * errs["unguided"]
    nothing = torch.zeros_like(known)
    a = pipe.sample(len(truth), guide="self", observed_mask=nothing, guide_options={"scale": 0.0}, **opts)
    b = pipe.sample(len(truth), guide="self", observed_mask=nothing, guide_options={"scale": 0.0, "replace": True},
                    **opts)
    torch.testing.assert_close(a.x, b.x)


def test_quantile_guidance_orders_the_completions():
    pipe, truth, known = _problem(16)
    outs = {}
    for q in (0.1, 0.9):
        s = pipe.sample(16, guide="self", observed=truth, observed_mask=known, steps=12, progress=False,
                        guide_options={"variant": "quantile", "quantile": q, "scale": 4.0})
        outs[q] = s.x[~known].mean()
    assert outs[0.9] > outs[0.1]


def test_refinement_improves_a_mean_imputation():
    pipe, truth, known = _problem(32)
    base = torch.zeros_like(truth)
    r = pipe.sample(32, guide="self", observed=truth, observed_mask=known, progress=False,
                    guide_options={"base": base, "iterations": 30, "step_size": 0.05})
    assert inpainting_mse(r.x, truth, known) < 0.5 * inpainting_mse(base, truth, known)
    assert torch.equal(r.x[known], truth[known])  # the observed values are pasted back, as without a base
    # a GraphState as the base is read as its node values (it used to be iterated without end)
    state = GraphState(x=base, e=r.e, mask=r.mask)
    again = pipe.sample(32, guide="self", observed=truth, observed_mask=known, progress=False,
                        guide_options={"base": state, "iterations": 30, "step_size": 0.05})
    assert torch.equal(again.x, r.x)
    loose = pipe.sample(32, guide="self", observed=truth, observed_mask=known, progress=False,
                        guide_options={"base": base, "iterations": 30, "step_size": 0.05, "keep_observed": False})
    assert torch.equal(loose.x[~known], r.x[~known]) and not torch.equal(loose.x[known], truth[known])


def test_refinement_noise_ladder_follows_sigma_data():
    """Data ten times narrower, with a process whose sigma_data says so: the default ladder (2 to 0.1 sigma_data)
    refines as well as at unit scale, and better than EDM's absolute 1.0 to 0.05, which spends most steps at noise
    far above the data's spread."""
    cov = factor_cov(8, common=0.8, own=0.1)
    _, truth, known = _problem(32)
    pipe = gaussian_pipeline(cov * 0.01, sigma_data=0.05)
    truth, base = truth * 0.1, torch.zeros_like(truth)
    opts = {"base": base, "iterations": 30, "step_size": 0.05}
    errs = {}
    for name, extra in (("default", {}), ("absolute", {"sigma_max": 1.0, "sigma_min": 0.05})):
        r = pipe.sample(32, guide="self", observed=truth, observed_mask=known, progress=False,
                        guide_options={**opts, **extra})
        errs[name] = inpainting_mse(r.x, truth, known) / inpainting_mse(base, truth, known)
    assert errs["default"] < 0.5 and errs["default"] < 0.8 * errs["absolute"]
    with pytest.raises(ConfigError, match="sigma_min <= sigma_max"):
        pipe.sample(4, guide="self", observed=truth[:4], observed_mask=known[:4], progress=False,
                    guide_options={"base": base[:4], "sigma_max": 0.01, "sigma_min": 0.1})


def test_pinball_loss_values():
    pred, obs, known = torch.zeros(2, 1, 1), torch.ones(2, 1, 1), torch.ones(2, 1, 1, dtype=torch.bool)
    out = observation_loss(pred, obs, known, "quantile", torch.tensor([0.1, 0.9]))
    torch.testing.assert_close(out, torch.tensor([0.1, 0.9]))


def test_errors_are_one_line():
    pipe, truth, known = _problem(4)
    with pytest.raises(ConfigError, match=r"observed must be \[4, 8, 1\]"):
        pipe.sample(4, guide="self", observed=torch.zeros(4, 7, 1), observed_mask=known, progress=False)
    with pytest.raises(ConfigError, match="needs observed="):
        pipe.sample(4, guide="self", progress=False)
    with pytest.raises(ConfigError, match="variant must be one of"):
        pipe.sample(4, guide="self", observed=truth, observed_mask=known, guide_options={"variant": "l1"},
                    progress=False)
