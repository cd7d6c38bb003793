"""DeFoG's CTMC sampler: an exact-posterior oracle reproduces the data's category frequencies; steps, time distortion,
eta and omega are chosen at sampling time and each changes what one fixed denoiser draws; guidance and per-sample
streams."""

import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import graphdiff.samplers as samplers
from graphdiff.errors import ConfigError
from graphdiff.processes.defog import DiscreteFlowMatching, conditional_path
from graphdiff.samplers import SampleNoise
from graphdiff.samplers.defog import ctmc
from graphdiff.state import GraphState
from tests.processes.test_categorical import PI_E, PI_X, TinyDenoiser, iid_batch, small_schema
from tests.processes.test_digress import frequencies
from tests.samplers.batches import SPLITS, draw_in_batches


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


# ---- the sampling knobs ------------------------------------------------------------------------------
KNOBS = ("steps", "time_distortion", "eta", "omega")


def test_the_knobs_are_chosen_at_sampling_time_and_each_changes_the_samples():
    s = small_schema()
    proc = DiscreteFlowMatching(s)
    # not the process's: it neither takes nor keeps them, and trains without them
    assert not set(KNOBS) & set(inspect.signature(DiscreteFlowMatching).parameters)
    settings = proc.to_dict()
    assert not set(KNOBS) & set(settings)
    torch.manual_seed(0)
    den = TinyDenoiser(**proc.denoiser_kwargs())  # one fixed denoiser for every draw below
    loss = proc.loss(den, iid_batch(s, [10, 6], seed=1), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss).all()
    n = torch.tensor([10, 7, 9, 10])

    def draw(steps=6, **knobs):
        return samplers.sample(proc, den, n, steps=steps, sampler="ctmc", seed=2, **knobs)

    base = draw()
    again = draw()
    assert torch.equal(again.x, base.x) and torch.equal(again.e, base.e)  # the same knobs: the same graphs
    for knobs in ({"steps": 3}, {"time_distortion": "identity"}, {"eta": 2.0}, {"omega": 0.5}):
        out = draw(**knobs)
        assert not (torch.equal(out.x, base.x) and torch.equal(out.e, base.e)), knobs
        repeat = draw(**knobs)
        assert torch.equal(repeat.x, out.x) and torch.equal(repeat.e, out.e), knobs
    assert proc.to_dict() == settings  # sampling wrote nothing into the process


class SureOfOneCategory(nn.Module):
    """A fixed denoiser sure of one clean category per entry, whatever it is given: node ``i`` -> ``i % 3``, pair
    ``(i, j)`` -> ``(i + j) % 3``."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    @staticmethod
    def targets(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.arange(n)
        return i % 3, (i[:, None] + i[None, :]) % 3

    def forward(self, state, t, cond=None):
        b, n = state.mask.shape
        tx, te = self.targets(n)
        x = 20.0 * F.one_hot(tx, 3).float().expand(b, n, 3)
        e = 20.0 * F.one_hot(te, 3).float().expand(b, n, n, 3)
        return GraphState(x=x, e=e, mask=state.mask)


@pytest.mark.parametrize("limit", ["marginal", "uniform", "absorbing"])
def test_target_guidance_moves_the_marginals_towards_the_predicted_categories(limit):
    """With omega = 0 the share of entries already at their predicted category follows the path
    ``t + (1 - t) p_0(target)``; omega > 0 moves more of them there at every intermediate time (more for a larger
    omega); the last step lands every entry on it whatever omega."""
    proc = DiscreteFlowMatching(small_schema(), limit=limit)
    den, n = SureOfOneCategory(), torch.full((60,), 10)
    tx, te = SureOfOneCategory.targets(10)
    iu = torch.triu_indices(10, 10, 1)
    te = te[iu[0], iu[1]]
    shares = {}
    for omega in (0.0, 0.5, 2.0):
        seen = {}
        samplers.sample(proc, den, n, steps=10, sampler="ctmc", seed=0, decode=False, omega=omega,
                        callback=lambda k, t, st, seen=seen: seen.__setitem__(k, (t, st)))
        shares[omega] = [(t, (st.x.argmax(-1) == tx).float().mean().item(),
                          (st.e[:, iu[0], iu[1]].argmax(-1) == te).float().mean().item())
                         for t, st in (seen[1], seen[3], seen[9])]
    for k in range(2):
        t, at_x, at_e = shares[0.0][k]
        assert abs(at_x - (t + (1 - t) * proc.m_x[tx].mean().item())) < 0.05, (t, at_x)
        assert abs(at_e - (t + (1 - t) * proc.m_e[te].mean().item())) < 0.03, (t, at_e)
        for lo, hi in ((0.0, 0.5), (0.5, 2.0)):
            assert shares[hi][k][1] > shares[lo][k][1] + 0.03, (k, shares)
            assert shares[hi][k][2] > shares[lo][k][2] + 0.03, (k, shares)
    assert all(shares[omega][2][1:] == (1.0, 1.0) for omega in shares)


def test_sample_i_is_the_same_whatever_the_batch_size():
    proc = DiscreteFlowMatching(small_schema())
    torch.manual_seed(0)
    den = TinyDenoiser(**proc.denoiser_kwargs())
    n = torch.tensor([5, 3, 10, 5, 7])

    def draw(sizes, noise):
        return samplers.sample(proc, den, sizes, steps=4, sampler="ctmc", noise=noise, eta=0.5, omega=0.2)

    whole = draw_in_batches(draw, n, 3, [5])
    assert not torch.equal(whole[0].e, whole[3].e)  # two graphs of 5 nodes: their own streams
    for sizes in SPLITS:
        for a, b in zip(whole, draw_in_batches(draw, n, 3, sizes)):
            assert torch.equal(a.x, b.x) and torch.equal(a.e, b.e), sizes
