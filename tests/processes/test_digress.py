"""DiGress: transition matrices, the exact posterior against brute-force Bayes, the loss, and ancestral sampling
with an exact-posterior oracle denoiser (which must reproduce the data's category frequencies)."""

import pytest
import torch
from torch import nn

import graphdiff.samplers as samplers
from graphdiff.errors import ConfigError
from graphdiff.processes.digress import DiscreteDiffusion, cosine_alpha_bar, posterior, transition_matrix
from graphdiff.samplers import SampleNoise
from graphdiff.samplers.digress import ancestral
from graphdiff.state import GraphState
from tests.processes.test_categorical import (PI_E, PI_X, TinyDenoiser, adam_steps, iid_batch, seeded_loss,
                                              small_schema)


class DiGressOracle(nn.Module):
    """The exact ``p(x0 | x_t)`` when every node is i.i.d. PI_X and every pair i.i.d. PI_E: Bayes with the
    forward kernel, ``p(x0 = j | x_t = i) ∝ PI[j] Qbar_t[j, i]``, per entry."""

    def __init__(self, proc, cond_shift=None):
        super().__init__()
        self.p = proc
        self.dummy = nn.Parameter(torch.zeros(1))
        self.cond_shift = cond_shift

    def forward(self, state, t, cond=None):
        step = int(round(float(t[0]) * self.p.T))
        outs = []
        for v, pi, which in ((state.x, PI_X, "x"), (state.e, PI_E, "e")):
            lik = v.double() @ self.p.Qbar(step, which).T  # lik[..., j] = Qbar_t[j, x_t]
            outs.append((pi.log() + lik[..., : len(pi)].clamp(min=1e-30).log()).float())
        if self.cond_shift is not None and cond is not None:  # a conditional model: cond raises class 0 logits
            outs[0][..., 0] += self.cond_shift * cond[:, 0].view(-1, 1)
        return GraphState(x=outs[0], e=outs[1], mask=state.mask)


def frequencies(state, n=10):
    x = state.node_types()[state.mask]
    up = torch.ones(n, n, dtype=torch.bool).triu(1)
    e = state.edge_types()[:, :n, :n][:, up]
    fx = torch.bincount(x, minlength=3).double() / x.numel()
    return fx, torch.bincount(e.reshape(-1), minlength=3).double() / e.numel()


# ---- transition matrices -----------------------------------------------------------------------------
@pytest.mark.parametrize("transition", ["marginal", "uniform", "absorbing"])
def test_qbar_rows_sum_to_one_and_converge_to_the_limit(transition):
    proc = DiscreteDiffusion(small_schema(), transition=transition, T=50)
    for which, m in (("x", proc.m_x), ("e", proc.m_e)):
        for t in (0, 1, 10, 25, 49, 50):
            Q = proc.Qbar(t, which)
            assert torch.allclose(Q.sum(-1), torch.ones(len(m), dtype=torch.float64), atol=1e-12)
            assert (Q >= 0).all()
        assert torch.equal(proc.Qbar(0, which), torch.eye(len(m), dtype=torch.float64))
        assert torch.allclose(proc.Qbar(50, which), m.expand(len(m), -1), atol=1e-12)
        gaps = [float((proc.Qbar(t, which) - m).abs().max()) for t in (10, 25, 40, 50)]
        assert gaps == sorted(gaps, reverse=True) and gaps[0] > 0.1
        # closed form = product of one-step matrices; Qbar_s Q_{t|s} = Qbar_t
        prod = torch.eye(len(m), dtype=torch.float64)
        for t in range(1, 31):
            prod = prod @ proc.Q(t, which)
        assert torch.allclose(prod, proc.Qbar(30, which), atol=1e-10)
        assert torch.allclose(proc.Qbar(12, which) @ proc.Q_between(30, 12, which), proc.Qbar(30, which), atol=1e-12)


def test_cosine_schedule_is_monotone_from_one_to_zero():
    ab = cosine_alpha_bar(500)
    assert ab[0] == 1 and ab[-1] == 0 and (ab[1:] <= ab[:-1]).all() and 0.4 < float(ab[250]) < 0.6


# ---- posterior ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_posterior_equals_brute_force_bayes(seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    K = int(torch.randint(2, 6, (1,), generator=g))
    m = torch.distributions.Dirichlet(torch.ones(K)).sample().double() if seed else torch.full((K,), 1.0 / K)
    alphas = torch.rand(7, generator=g, dtype=torch.float64) * 0.5 + 0.45
    Qs = [transition_matrix(float(a), m) for a in alphas]  # one-step Q_1..Q_7
    s, t = int(torch.randint(0, 4, (1,), generator=g)), 6
    Qbar_s = torch.linalg.multi_dot([torch.eye(K, dtype=torch.float64)] + Qs[:s] + [torch.eye(K, dtype=torch.float64)])
    Q_ts = torch.linalg.multi_dot([torch.eye(K, dtype=torch.float64)] + Qs[s:t] + [torch.eye(K, dtype=torch.float64)])
    Qbar_t = Qbar_s @ Q_ts
    eye = torch.eye(K, dtype=torch.float64)
    for j in range(K):  # x0
        for i in range(K):  # x_t
            # Bayes: q(x_s = k | x_t = i, x0 = j) ∝ q(x_t = i | x_s = k) q(x_s = k | x0 = j)
            joint = torch.tensor([Q_ts[k, i] * Qbar_s[j, k] for k in range(K)], dtype=torch.float64)
            ref = joint / joint.sum()
            got = posterior(eye[j], eye[i], Qbar_s, Q_ts, Qbar_t)
            assert torch.allclose(got, ref, atol=1e-12), (K, s, j, i)
    # the mixture over p(x0 | x_t) (DiGress eq. 4)
    px0 = torch.distributions.Dirichlet(torch.ones(K)).sample((3,)).double()
    xt = eye[torch.tensor([0, K - 1, 1 % K])]
    got = posterior(px0, xt, Qbar_s, Q_ts, Qbar_t)
    for r in range(3):
        ref = sum(px0[r, j] * posterior(eye[j], xt[r], Qbar_s, Q_ts, Qbar_t) for j in range(K))
        assert torch.allclose(got[r], ref, atol=1e-12)


def test_absorbing_posterior_keeps_unmasked_states():
    proc = DiscreteDiffusion(small_schema(), transition="absorbing", T=20)
    eye = torch.eye(4, dtype=torch.float64)
    px0 = torch.tensor([[0.2, 0.3, 0.5, 0.0]] * 2, dtype=torch.float64)
    p = posterior(px0, eye[[1, 3]], proc.Qbar(5, "x"), proc.Q_between(10, 5, "x"), proc.Qbar(10, "x"))
    assert torch.allclose(p[0], eye[1])  # unmasked: stays
    assert p[1, 3] > 0 and torch.allclose(p[1, :3] / p[1, :3].sum(), px0[1, :3])  # masked: unmask towards x0


# ---- loss --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("transition", ["marginal", "absorbing"])
def test_loss_is_finite_per_graph_and_a_small_denoiser_lowers_it(transition):
    s = small_schema()
    proc = DiscreteDiffusion(s, transition=transition, T=100)
    batch = iid_batch(s, [10, 6, 8, 10, 3, 10, 9, 7], seed=0)
    torch.manual_seed(0)
    den = TinyDenoiser(**proc.denoiser_kwargs())
    loss = proc.loss(den, batch, generator=torch.Generator().manual_seed(0))
    assert loss.shape == (8,) and torch.isfinite(loss).all()
    assert torch.equal(loss, proc.loss(den, batch, generator=torch.Generator().manual_seed(0)))
    first = seeded_loss(proc, den, batch, range(100, 110))
    adam_steps(proc, den, batch, 80, 1e-2)
    late = seeded_loss(proc, den, batch, range(100, 110))
    assert late < 0.8 * first, (first, late)


def test_loss_uses_graph_conditions_and_rejects_missing_ones():
    s = small_schema(graph_features=("a",))
    proc = DiscreteDiffusion(s, T=10, cond_drop=0.5)
    seen = []

    class Spy(TinyDenoiser):
        def forward(self, state, t, cond=None):
            seen.append(cond)
            return super().forward(state, t, cond)

    den = Spy(**proc.denoiser_kwargs())
    y = torch.arange(64, dtype=torch.float32).view(64, 1) + 1
    batch = iid_batch(s, [4] * 64, y=y)
    assert proc.loss(den, batch, generator=torch.Generator().manual_seed(0)).shape == (64,)
    c = seen[-1]
    assert c.shape == (64, 2) and 10 < int(c[:, 1].sum()) < 54
    assert torch.equal(c[:, 0], y[:, 0] * c[:, 1])
    with pytest.raises(ConfigError, match="batch.y"):
        proc.loss(den, iid_batch(s, [4, 4]))


# ---- sampling with the exact posterior ---------------------------------------------------------------
@pytest.mark.parametrize("transition,T,steps", [("marginal", 100, 100), ("marginal", 100, 20),
                                                ("uniform", 100, 20), ("absorbing", 100, 20)])
def test_ancestral_sampling_with_the_oracle_reproduces_the_data(transition, T, steps):
    proc = DiscreteDiffusion(small_schema(), transition=transition, T=T)
    oracle = DiGressOracle(proc)
    n = torch.full((100,), 10)
    noise = SampleNoise.for_run(0, 0, 100)
    out = ancestral(proc, oracle, proc.prior(n, generator=noise), steps=steps, noise=noise)
    assert torch.equal(out.e, out.e.transpose(1, 2))
    dec = proc.decode(out)
    fx, fe = frequencies(dec)
    assert torch.allclose(fx, PI_X, atol=0.05), (fx, PI_X)
    assert torch.allclose(fe, PI_E, atol=0.03), (fe, PI_E)
    if transition == "absorbing":
        assert not (out.x[out.mask].argmax(-1) == 3).any()


def test_sampling_entry_point_steps_guidance_and_per_sample_streams(monkeypatch):
    monkeypatch.setitem(samplers.SAMPLERS, "digress", {"ancestral": ancestral})
    s = small_schema(graph_features=("a",))
    proc = DiscreteDiffusion(s, T=30)
    oracle = DiGressOracle(proc, cond_shift=2.0)
    n = torch.tensor([10, 4, 7, 10, 9, 2])
    y = torch.ones(6, 1)
    run = lambda **kw: samplers.sample(proc, oracle, n, steps=15, sampler="ancestral", seed=5, **kw)  # noqa: E731
    plain = run(cond=y)
    assert torch.equal(run(cond=y, guidance=0.0).x, plain.x)
    guided = run(cond=y, guidance=3.0)
    assert guided.x.shape == plain.x.shape and not torch.equal(guided.x, plain.x)
    # sample i is the same drawn alone (a per-entry denoiser sees nothing of the other graphs)
    alone = samplers.sample(proc, oracle, n[3:4], steps=15, sampler="ancestral", noise=SampleNoise.for_run(5, 3, 1),
                            cond=y[3:4])
    assert torch.equal(alone.x[0], plain.x[3]) and torch.equal(alone.e[0], plain.e[3])
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        ancestral(proc, oracle, proc.prior(n, generator=SampleNoise.for_run(0, 0, 6)), steps=0,
                  noise=SampleNoise.for_run(0, 0, 6))
    with pytest.raises(ConfigError, match="steps must be <= process.T"):
        proc.timesteps(31)
    assert proc.timesteps(30) == list(range(30, -1, -1)) and proc.timesteps(4) == [30, 22, 15, 8, 0]


def test_guidance_shifts_conditional_frequencies():
    s = small_schema(graph_features=("a",))
    proc = DiscreteDiffusion(s, T=30)
    oracle = DiGressOracle(proc, cond_shift=1.0)
    n = torch.full((60,), 10)
    fr = []
    for w in (0.0, 2.0):
        noise = SampleNoise.for_run(1, 0, 60)
        out = ancestral(proc, oracle, proc.prior(n, generator=noise), steps=15, noise=noise, cond=torch.ones(60, 1),
                        guidance=w)
        fr.append(frequencies(proc.decode(out))[0][0].item())
    assert fr[1] > fr[0] + 0.05, fr


def test_process_dict_round_trip():
    proc = DiscreteDiffusion(small_schema(), transition="uniform", T=40, lambda_edge=2.0, cond_drop=0.2)
    d = proc.to_dict()
    assert d == {"name": "digress", "transition": "uniform", "T": 40, "schedule": "cosine", "lambda_edge": 2.0,
                 "cond_drop": 0.2}
    again = DiscreteDiffusion(small_schema(), **{k: v for k, v in d.items() if k != "name"})
    assert torch.equal(again.alpha_bar, proc.alpha_bar)
    with pytest.raises(ConfigError, match=r"process.T must be a positive integer, got 0"):
        DiscreteDiffusion(small_schema(), T=0)
    with pytest.raises(ConfigError, match="process.schedule: 'linear'"):
        DiscreteDiffusion(small_schema(), schedule="linear")
