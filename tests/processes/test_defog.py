"""DeFoG: the conditional rates against the Kolmogorov equation, time distortions, the loss, and CTMC sampling
with an exact-posterior oracle denoiser (which must reproduce the data's category frequencies)."""

import pytest
import torch
from torch import nn

import graphdiff.samplers as samplers
from graphdiff.errors import ConfigError
from graphdiff.processes.defog import DISTORTIONS, DiscreteFlowMatching, conditional_path, distort, rate_table
from graphdiff.samplers import SampleNoise
from graphdiff.samplers.defog import ctmc
from graphdiff.state import GraphState
from tests.processes.test_categorical import (PI_E, PI_X, TinyDenoiser, adam_steps, iid_batch, seeded_loss,
                                              small_schema)
from tests.processes.test_digress import frequencies


class DeFoGOracle(nn.Module):
    """The exact ``p(x_1 | x_t)`` when every node is i.i.d. PI_X and every pair i.i.d. PI_E:
    ``p(x_1 = j | x_t = i) ∝ PI[j] (t delta(i, j) + (1 - t) p_0(i))``, per entry."""

    def __init__(self, proc):
        super().__init__()
        self.p = proc
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, state, t, cond=None):
        outs = []
        for v, pi, m in ((state.x, PI_X, self.p.m_x), (state.e, PI_E, self.p.m_e)):
            P, _, _ = conditional_path(float(t[0]), m, len(pi))
            lik = v.double() @ P.T  # lik[..., j] = p_t(x_t | x_1 = j)
            outs.append((pi.log() + lik.clamp(min=1e-30).log()).float())
        return GraphState(x=outs[0], e=outs[1], mask=state.mask)


# ---- rates -------------------------------------------------------------------------------------------
LIMITS = {"uniform": (torch.full((3,), 1 / 3, dtype=torch.float64), 3),
          "marginal-with-zero": (torch.tensor([0.5, 0.0, 0.3, 0.2], dtype=torch.float64), 4),
          "absorbing": (torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64), 3)}


@pytest.mark.parametrize("eta", [0.0, 1.5])
@pytest.mark.parametrize("limit", list(LIMITS))
def test_conditional_rates_generate_the_conditional_path(limit, eta):
    """Kolmogorov forward equation per x_1: d/dt p_t(j) = sum_x p_t(x) R(x, j) - p_t(j) sum_k R(j, k)."""
    m, k1 = LIMITS[limit]
    for t in (0.0, 0.3, 0.8, 0.99):
        P, dP, _ = conditional_path(t, m, k1)
        R = rate_table(t, m, k1, eta=eta)
        assert (R >= 0).all() and torch.isfinite(R).all()
        for a in range(k1):
            inflow = P[a] @ R[:, a, :]
            outflow = P[a] * R[:, a, :].sum(-1)
            assert torch.allclose(inflow - outflow, dP[a], atol=1e-9), (limit, eta, t, a)
    # target guidance biases towards x_1: the equation no longer holds
    P, dP, _ = conditional_path(0.5, m, k1)
    R = rate_table(0.5, m, k1, omega=0.5)
    assert not torch.allclose(P[0] @ R[:, 0, :] - P[0] * R[:, 0, :].sum(-1), dP[0], atol=1e-3)


def test_uniform_rate_is_one_over_one_minus_t():
    m = torch.full((4,), 0.25, dtype=torch.float64)
    R = rate_table(0.6, m, 4)
    assert torch.allclose(R[2, 0, 0], torch.tensor(1 / 0.4, dtype=torch.float64))  # x != x_1 jumps to x_1
    assert R[2, 0, 1] == 0 and R[0, 0].abs().sum() == 0  # nowhere else; x = x_1 stays


def test_time_distortions():
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    for name in DISTORTIONS:
        f = distort(t, name)
        assert f[0] == 0 and abs(float(f[-1]) - 1) < 1e-12 and (f[1:] >= f[:-1]).all(), name
    assert distort(torch.tensor(0.5), "polydec") == 0.75 and distort(torch.tensor(0.5), "polyinc") == 0.25
    with pytest.raises(ConfigError, match="sample.time_distortion: 'poly' is not one of"):
        ctmc(DiscreteFlowMatching(small_schema()), None, None, steps=3, noise=None, time_distortion="poly")
    with pytest.raises(ConfigError, match="process.train_distortion: 'x'"):
        DiscreteFlowMatching(small_schema(), train_distortion="x")


# ---- loss --------------------------------------------------------------------------------------------
def test_loss_is_finite_per_graph_and_a_small_denoiser_lowers_it():
    s = small_schema()
    proc = DiscreteFlowMatching(s, train_distortion="polydec")
    batch = iid_batch(s, [10, 6, 8, 10, 3, 10, 9, 7], seed=1)
    torch.manual_seed(0)
    den = TinyDenoiser(**proc.denoiser_kwargs())
    loss = proc.loss(den, batch, generator=torch.Generator().manual_seed(0))
    assert loss.shape == (8,) and torch.isfinite(loss).all()
    assert torch.equal(loss, proc.loss(den, batch, generator=torch.Generator().manual_seed(0)))
    first = seeded_loss(proc, den, batch, range(100, 110))
    adam_steps(proc, den, batch, 80, 1e-2)
    assert seeded_loss(proc, den, batch, range(100, 110)) < 0.8 * first


# ---- sampling with the exact posterior ---------------------------------------------------------------
@pytest.mark.parametrize("limit,steps,eta,distortion", [
    ("marginal", 50, 0.0, "polydec"), ("marginal", 200, 0.0, "polydec"), ("marginal", 50, 2.0, "polydec"),
    ("marginal", 200, 5.0, "identity"), ("uniform", 50, 1.0, "cos"), ("absorbing", 50, 0.0, "polydec"),
    ("absorbing", 200, 2.0, "polyinc"), ("marginal", 1, 0.0, "polydec"),
])
def test_ctmc_sampling_with_the_oracle_reproduces_the_data(limit, steps, eta, distortion):
    proc = DiscreteFlowMatching(small_schema(), limit=limit)
    oracle = DeFoGOracle(proc)
    n = torch.full((100,), 10)
    noise = SampleNoise.for_run(0, 0, 100)
    out = ctmc(proc, oracle, proc.prior(n, generator=noise), steps=steps, noise=noise, eta=eta,
               time_distortion=distortion)
    assert torch.equal(out.e, out.e.transpose(1, 2))
    fx, fe = frequencies(proc.decode(out))
    assert torch.allclose(fx, PI_X, atol=0.05), (fx, PI_X)
    assert torch.allclose(fe, PI_E, atol=0.03), (fe, PI_E)
    if limit == "absorbing":
        assert not (out.x[out.mask].argmax(-1) == 3).any()


def test_target_guidance_runs_and_stays_valid():
    proc = DiscreteFlowMatching(small_schema())
    n = torch.full((20,), 10)
    noise = SampleNoise.for_run(0, 0, 20)
    out = ctmc(proc, DeFoGOracle(proc), proc.prior(n, generator=noise), steps=20, noise=noise, omega=0.5, eta=1.0)
    assert (out.x[out.mask].sum(-1) == 1).all() and (out.e.sum(-1) == 1).all()


def test_one_denoiser_samples_at_any_number_of_steps(monkeypatch):
    monkeypatch.setitem(samplers.SAMPLERS, "defog", {"ctmc": ctmc})
    s = small_schema()
    proc = DiscreteFlowMatching(s, limit="absorbing")
    torch.manual_seed(0)
    den = TinyDenoiser(**proc.denoiser_kwargs())
    batch = iid_batch(s, [10, 8, 9, 10], seed=2)
    opt = torch.optim.Adam(den.parameters(), lr=1e-2)
    for i in range(20):
        val = proc.loss(den, batch, generator=torch.Generator().manual_seed(i)).mean()
        opt.zero_grad()
        val.backward()
        opt.step()
    n = torch.tensor([10, 3, 7])
    seen = []
    for steps in (10, 50, 100, 500):
        raw = samplers.sample(proc, den, n, steps=steps, sampler="ctmc", seed=1, decode=False, eta=0.5,
                              callback=lambda i, t, st: seen.append(t))
        assert raw.x.shape == (3, 10, 4) and raw.e.shape == (3, 10, 10, 3)
        assert (raw.x[raw.mask].sum(-1) == 1).all() and (raw.x[~raw.mask] == 0).all()
        assert not (raw.x[raw.mask].argmax(-1) == 3).any()  # no [MASK] left
        assert (raw.e.sum(-1) == 1).all() and torch.equal(raw.e, raw.e.transpose(1, 2))
        dec = proc.decode(raw)
        assert torch.equal(dec.e, dec.e.transpose(1, 2)) and (dec.x[dec.mask].sum(-1) == 1).all()
        assert len(seen) == steps and abs(seen[-1] - 1.0) < 1e-12
        seen.clear()


def test_guidance_steps_and_per_sample_streams(monkeypatch):
    monkeypatch.setitem(samplers.SAMPLERS, "defog", {"ctmc": ctmc})
    s = small_schema(graph_features=("a",))
    proc = DiscreteFlowMatching(s)
    den = TinyDenoiser(**proc.denoiser_kwargs())
    n = torch.tensor([10, 4, 7, 10])
    y = torch.ones(4, 1)
    run = lambda **kw: samplers.sample(proc, den, n, steps=12, sampler="ctmc", seed=3, **kw)  # noqa: E731
    plain = run(cond=y)
    assert torch.equal(run(cond=y, guidance=0.0).e, plain.e)
    guided = run(cond=y, guidance=2.0)
    assert guided.x.shape == plain.x.shape and (guided.x[guided.mask].sum(-1) == 1).all()
    alone = samplers.sample(proc, den, n[3:4], steps=12, sampler="ctmc", noise=SampleNoise.for_run(3, 3, 1),
                            cond=y[3:4])
    torch.testing.assert_close(alone.x[0], plain.x[3], rtol=0, atol=0)
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        ctmc(proc, den, proc.prior(n, generator=SampleNoise.for_run(0, 0, 4)), steps=0,
             noise=SampleNoise.for_run(0, 0, 4))
    with pytest.raises(ConfigError, match="sample.eta must be >= 0"):
        ctmc(proc, den, None, steps=2, noise=None, eta=-1.0)
    with pytest.raises(ConfigError, match="cond: expected 1 graph features"):
        run(cond=torch.ones(4, 3))


def test_process_dict_round_trip():
    proc = DiscreteFlowMatching(small_schema(), limit="uniform", lambda_edge=1.0, cond_drop=0.0,
                                train_distortion="cos")
    d = proc.to_dict()
    assert d == {"name": "defog", "limit": "uniform", "lambda_edge": 1.0, "cond_drop": 0.0,
                 "train_distortion": "cos"}
    assert DiscreteFlowMatching(small_schema(), **{k: v for k, v in d.items() if k != "name"}).to_dict() == d
