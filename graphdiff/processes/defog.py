"""DeFoG: discrete flow matching on node and edge categories.

Qin, Madeira, Thanou & Frossard, "DeFoG: Discrete Flow Matching for Graph Generation", ICML 2025, built on the
discrete flow models of Campbell, Yim, Barzilay, Rainforth & Jaakkola, "Generative Flows on Discrete State-Spaces"
(DFM), ICML 2024. Time runs from ``t = 0`` (noise) to ``t = 1`` (data). Every node and every unordered node pair
follows the linear interpolation ``p_{t|1}(x_t | x_1) = t delta(x_t, x_1) + (1 - t) p_0(x_t)`` between the limit
distribution ``p_0`` (uniform, marginal or absorbing) and its clean category ``x_1``; a denoiser predicts
``p_theta(x_1 | x_t)`` and is trained with cross entropy exactly like DiGress. Sampling (``samplers/defog.py``)
runs a continuous-time Markov chain whose rates are the conditional rates averaged over ``p_theta``:
``R_t(x -> j) = E_{x_1 ~ p_theta(.|x_t)}[R*_t(x, j | x_1) + eta R^DB_t(x, j | x_1) + omega R^TG_t(x, j | x_1)]``.
Steps, time distortion, ``eta`` and ``omega`` are sampling-time choices: one trained denoiser serves them all.

Time convention: the denoiser sees the (distorted) interpolation time ``t`` in ``[0, 1)`` as a ``[B]`` float.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..schema import Schema
from ..state import GraphState
from .categorical import CategoricalProcess

_TINY = 1e-300


# ---- time distortions ----------------------------------------------------------------------------------
# DeFoG Sec. 4 (time distortion): monotone maps f of [0, 1] onto itself, applied to training times or to the
# sampling grid; polydec spends more steps close to the data (t = 1), polyinc close to the noise.
DISTORTIONS = {
    "identity": lambda t: t,
    "polyinc": lambda t: t**2,
    "polydec": lambda t: 2 * t - t**2,
    "cos": lambda t: (1 - torch.cos(math.pi * t)) / 2,
    "revcos": lambda t: 2 * t - (1 - torch.cos(math.pi * t)) / 2,
}


def distort(t: Tensor, name: str, field: str = "time_distortion") -> Tensor:
    """Apply the time distortion ``name`` to times in ``[0, 1]``.

    Shapes:
        t: any; returns the same shape.
    """
    if name not in DISTORTIONS:
        raise ConfigError(f"{field}: {name!r} is not one of {tuple(DISTORTIONS)}")
    return DISTORTIONS[name](t).clamp(0.0, 1.0)


# ---- the conditional path and its rates ----------------------------------------------------------------
def conditional_path(t: float, m: Tensor, k1: int) -> tuple[Tensor, Tensor, Tensor]:
    """``p_{t|1}(z | x_1)``, its time derivative and its support for ``t`` in ``(0, 1)``.

    Args:
        t: the time.
        m: the limit distribution ``p_0`` over the ``K`` states.
        k1: the number of clean categories ``x_1`` (the first ``k1`` states; ``K - 1`` with a [MASK] state).

    Shapes:
        m: ``[K]``; returns ``P [K1, K]`` (row ``x_1``), ``dP [K1, K]`` and ``S [K1, K]`` bool.
    """
    m = m.to(torch.float64)
    eye = torch.eye(k1, m.shape[0], dtype=torch.float64, device=m.device)
    # Campbell et al. 2024 / DeFoG Sec. 3: p_{t|1}(z | x_1) = t delta(z, x_1) + (1 - t) p_0(z)
    P = t * eye + (1.0 - t) * m.unsqueeze(0)
    dP = eye - m.unsqueeze(0)
    S = (eye > 0) | (m.unsqueeze(0) > 0)
    return P, dP, S


def rate_table(t: float, m: Tensor, k1: int, eta: float = 0.0, omega: float = 0.0) -> Tensor:
    """Conditional rates ``R_t(x -> j | x_1)`` for every current state ``x``, clean category ``x_1`` and target ``j``.

    ``R* = ReLU(dP(j) - dP(x)) / (Z P(x))`` (Campbell et al. eq. 10, ``Z`` the size of the support of
    ``p_{t|1}(. | x_1)`` on ``(0, 1)``), ``R^DB = eta P(j)`` (DeFoG's detailed-balance term: ``P(x) R^DB(x, j) =
    P(j) R^DB(j, x)``, so it leaves ``p_{t|1}`` unchanged) and ``R^TG = omega delta(j, x_1) / (Z P(x))`` (DeFoG's
    target guidance, ``x != x_1``). Rates out of states with ``P(x) = 0`` or into states off the support are 0, and
    so is the diagonal ``j = x``.

    Shapes:
        m: ``[K]``; returns ``[K (x), K1 (x_1), K (j)]`` float64.
    """
    P, dP, S = conditional_path(t, m, k1)
    Z = S.sum(-1).to(torch.float64)
    px = P.T.unsqueeze(-1)  # [x, x_1, 1]: p_{t|1}(x | x_1)
    valid = (px > 0) & S.unsqueeze(0)
    denom = (Z.view(1, -1, 1) * px).clamp(min=_TINY)
    # Campbell et al. 2024 eq. 10: R*_t(x, j | x_1) = ReLU(d/dt p_t(j|x_1) - d/dt p_t(x|x_1)) / (Z_t p_t(x|x_1))
    R = F.relu(dP.unsqueeze(0) - dP.T.unsqueeze(-1)) / denom
    # DeFoG Sec. 4 (stochasticity): + eta R^DB_t(x, j | x_1) with R^DB = p_t(j | x_1), detailed balance
    if eta:
        R = R + eta * P.unsqueeze(0)
    # DeFoG Sec. 4 (target guidance): + omega delta(j, x_1) / (Z_t p_t(x | x_1)) for x != x_1
    if omega:
        eye = torch.eye(k1, m.shape[0], dtype=torch.float64, device=m.device)
        R = R + omega * eye.unsqueeze(0) / denom
    R = torch.where(valid, R, torch.zeros_like(R))
    k = m.shape[0]
    diag = torch.eye(k, dtype=torch.bool, device=m.device).unsqueeze(1)  # [x, 1, j]: j == x
    return R.masked_fill(diag, 0.0)


def expected_rates(p1: Tensor, xt: Tensor, table: Tensor) -> Tensor:
    """``R_t(x_t -> j) = sum_{x_1} p_theta(x_1 | x_t) R_t(x_t -> j | x_1)`` per entry.

    Shapes:
        p1: ``[..., K1]``; xt: ``[..., K]`` one-hot; table: ``[K, K1, K]``; returns ``[..., K]``.
    """
    idx = xt.argmax(-1)
    R = torch.zeros(xt.shape, dtype=torch.float64, device=xt.device)
    p1 = p1.to(torch.float64)
    for x in range(table.shape[0]):  # K is small: one [..., K1] @ [K1, K] product per current state
        sel = (idx == x).unsqueeze(-1)
        R = torch.where(sel, p1 @ table[x], R)
    return R


class DiscreteFlowMatching(CategoricalProcess):
    """DeFoG discrete flow matching on node and edge categories.

    Args:
        schema: the dataset schema (categories, marginals, max nodes, node-count histogram, graph features).
        limit: ``p_0``: ``"marginal"`` (DeFoG's default), ``"uniform"`` or ``"absorbing"`` (nodes to an extra
            [MASK] state, edges to "none").
        lambda_edge: weight of the edge cross entropy.
        cond_drop: probability of dropping a graph's condition in training (classifier-free guidance).
        train_distortion: time distortion of the training times ``t = f(u)``, ``u ~ U(0, 1)`` (``"identity"``,
            ``"polyinc"``, ``"polydec"``, ``"cos"``, ``"revcos"``).

    Shapes:
        state: ``x [B, N, Kx (+1 [MASK])]`` one-hot, ``e [B, N, N, Ke]`` one-hot and symmetric, ``mask [B, N]``.
    """

    name = "defog"

    def __init__(self, schema: Schema, *, limit: str = "marginal", lambda_edge: float = 5.0, cond_drop: float = 0.1,
                 train_distortion: str = "identity"):
        super().__init__(schema, limit=limit, lambda_edge=lambda_edge, cond_drop=cond_drop, field="process.limit")
        distort(torch.zeros(1), train_distortion, "process.train_distortion")
        self.train_distortion = train_distortion

    def to_dict(self) -> dict:
        return {"name": self.name, "limit": self.limit, "lambda_edge": self.lambda_edge, "cond_drop": self.cond_drop,
                "train_distortion": self.train_distortion}

    @staticmethod
    def time_grid(steps: int, time_distortion: str = "polydec") -> list[float]:
        """The sampling grid ``t_k = f(k / steps)``, ``k = 0..steps``, of the time distortion ``f``."""
        grid = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
        return distort(grid, time_distortion, "sample.time_distortion").tolist()

    # ---- forward path ---------------------------------------------------------------------------------
    def path_probs(self, x1: Tensor, e1: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``p_{t|1}(x_t | x_1) = t delta(x_t, x_1) + (1 - t) p_0(x_t)`` per node and per pair.

        Shapes:
            x1: ``[B, N]`` long; e1: ``[B, N, N]`` long; t: ``[B]``; returns ``[B, N, Kx(+1)]``, ``[B, N, N, Ke]``.
        """
        t = t.to(torch.float64)
        px = t.view(-1, 1, 1) * F.one_hot(x1, self.node_states) + (1 - t).view(-1, 1, 1) * self.m_x.to(x1.device)
        pe = t.view(-1, 1, 1, 1) * F.one_hot(e1, self.ke) + (1 - t).view(-1, 1, 1, 1) * self.m_e.to(x1.device)
        return px, pe

    # ---- training -------------------------------------------------------------------------------------
    def loss(self, denoiser, batch: GraphState, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-graph x1-prediction cross entropy at ``t = f(u)``, ``u ~ U(0, 1)``.

        Shapes:
            returns ``[B]``.
        """
        x1, e1 = self.categories(batch)
        mask, dev = batch.mask, batch.device
        dtype = batch.x.dtype if batch.x.is_floating_point() else torch.float32
        gdev = generator.device if generator is not None else dev
        u = torch.rand(batch.batch_size, generator=generator, device=gdev, dtype=torch.float64).to(dev)
        t = distort(u, self.train_distortion, "process.train_distortion")
        px, pe = self.path_probs(x1, e1, t)
        noisy = self.sample_state(px, pe, mask, generator, dtype)
        cond = self._train_cond(batch, generator)
        return self._noisy_loss(denoiser, noisy, t.to(dtype), x1, e1, cond)

    # ---- sampling steps -------------------------------------------------------------------------------
    def step_probs(self, px1: Tensor, pe1: Tensor, state: GraphState, t: float, dt: float, *, eta: float = 0.0,
                   omega: float = 0.0) -> tuple[Tensor, Tensor]:
        """Euler step of the CTMC: jump to ``j != x_t`` with probability ``clip(R_t(x_t -> j) dt, 0, 1)``, stay with
        the rest (clipped at 0; the draw renormalises).

        Shapes:
            px1: ``[B, N, Kx]``; pe1: ``[B, N, N, Ke]``; returns ``[B, N, Kx(+1)]``, ``[B, N, N, Ke]`` (float64).
        """
        out = []
        for p1, xt, m in ((px1, state.x, self.m_x), (pe1, state.e, self.m_e)):
            table = rate_table(t, m.to(xt.device), p1.shape[-1], eta, omega)
            # DeFoG Sec. 3 (CTMC sampling): p(x_{t+dt} = j | x_t) = delta(j, x_t) + R_t(x_t, j) dt
            jump = (expected_rates(p1, xt, table) * dt).clamp(0.0, 1.0)
            stay = (1.0 - jump.sum(-1, keepdim=True)).clamp(min=0.0)
            out.append(jump + xt.to(torch.float64) * stay)
        return out[0], out[1]

    def final_probs(self, px1: Tensor, pe1: Tensor, state: GraphState, t: float) -> tuple[Tensor, Tensor]:
        """Last step, to ``t = 1``: draw ``x_1`` from ``p_theta(x_1 | x_t)`` restricted to the ``x_1`` that can
        produce ``x_t`` (``p_{t|1}(x_t | x_1) > 0``; e.g. an unmasked node keeps its category).

        Shapes:
            px1: ``[B, N, Kx]``; pe1: ``[B, N, N, Ke]``; returns ``[B, N, Kx(+1)]``, ``[B, N, N, Ke]`` (float64).
        """
        out = []
        for p1, xt, m in ((px1, state.x, self.m_x), (pe1, state.e, self.m_e)):
            P, _, _ = conditional_path(t, m.to(xt.device), p1.shape[-1])
            compat = (xt.to(torch.float64) @ P.T) > 0
            p = p1.to(torch.float64) * compat
            z = p.sum(-1, keepdim=True)
            p = torch.where(z > 0, p, p1.to(torch.float64))
            out.append(F.pad(p, (0, xt.shape[-1] - p.shape[-1])))
        return out[0], out[1]
