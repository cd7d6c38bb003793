"""DeFoG: the conditional rates against the Kolmogorov equation, time distortions, the loss and the process's
settings (CTMC sampling: tests/samplers/test_defog.py)."""

import pytest
import torch

from graphdiff.errors import ConfigError
from graphdiff.processes.defog import DISTORTIONS, DiscreteFlowMatching, conditional_path, distort, rate_table
from graphdiff.samplers.defog import ctmc
from tests.processes.test_categorical import TinyDenoiser, adam_steps, iid_batch, seeded_loss, small_schema


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


def test_process_dict_round_trip():
    proc = DiscreteFlowMatching(small_schema(), limit="uniform", lambda_edge=1.0, cond_drop=0.0,
                                train_distortion="cos")
    d = proc.to_dict()
    assert d == {"name": "defog", "limit": "uniform", "lambda_edge": 1.0, "cond_drop": 0.0,
                 "train_distortion": "cos"}
    assert DiscreteFlowMatching(small_schema(), **{k: v for k, v in d.items() if k != "name"}).to_dict() == d
