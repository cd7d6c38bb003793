"""DiGress: discrete denoising diffusion on node and edge categories.

Vignac, Krawczuk, Siraudin, Wang, Cevher & Frossard, "DiGress: Discrete Denoising diffusion for graph
generation", ICLR 2023, on top of D3PM (Austin et al., NeurIPS 2021). Every node and every unordered node pair
carries a category that is noised independently by a Markov chain with transition matrices
``Q_t = alpha_t I + (1 - alpha_t) 1 m^T`` towards a limit distribution ``m`` (uniform, the data marginals
(DiGress Sec. 4.1) or absorbing); ``Qbar_t = Q_1 ... Q_t = alpha_bar_t I + (1 - alpha_bar_t) 1 m^T`` in closed form,
``alpha_bar`` on the cosine schedule of Nichol & Dhariwal (2021). A denoiser predicts the clean categories
``p_theta(x0 | x_t)``, trained with cross entropy (node CE + ``lambda_edge`` edge CE), and the reverse step mixes
the exact posteriors ``q(x_s | x_t, x0)`` by that prediction (DiGress eq. 4). Steps may be skipped: between
training steps ``t > s`` the chain moves by ``Q_{t|s} = alpha_{t|s} I + (1 - alpha_{t|s}) 1 m^T`` with
``alpha_{t|s} = alpha_bar_t / alpha_bar_s`` (so that ``Qbar_s Q_{t|s} = Qbar_t``).

Time convention: ``t = 0`` is data, ``t = T`` noise; the denoiser sees ``t / T`` as a ``[B]`` float.
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

SCHEDULES = ("cosine",)
_TINY = 1e-300


def cosine_alpha_bar(T: int, s: float = 0.008) -> Tensor:
    """``alpha_bar_t`` for ``t = 0..T`` on the cosine schedule (``alpha_bar_0 = 1``, ``alpha_bar_T = 0``).

    Shapes:
        returns ``[T + 1]`` float64.
    """
    # Nichol & Dhariwal 2021, eq. 17: alpha_bar(t) = f(t) / f(0), f(t) = cos^2(((t / T + s) / (1 + s)) pi / 2)
    t = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    ab = (f / f[0]).clamp(0.0, 1.0)
    ab[-1] = 0.0
    return ab


def transition_matrix(alpha: float, m: Tensor) -> Tensor:
    """``alpha I + (1 - alpha) 1 m^T``: row ``i`` is the distribution of the next state given state ``i``.

    Shapes:
        m: ``[K]``; returns ``[K, K]`` (float64).
    """
    # DiGress Sec. 4.1: Q_t = alpha_t I + beta_t 1 m^T (marginal / uniform / absorbing by the choice of m)
    m = m.to(torch.float64)
    k = m.shape[0]
    return alpha * torch.eye(k, dtype=torch.float64, device=m.device) + (1.0 - alpha) * m.unsqueeze(0).expand(k, k)


def posterior(px0: Tensor, xt: Tensor, Qbar_s: Tensor, Q_ts: Tensor, Qbar_t: Tensor) -> Tensor:
    """``p(x_s | x_t) = sum_x0 q(x_s | x_t, x0) p(x0 | x_t)`` for one-hot ``x_t`` and any ``s < t``.

    ``q(x_s = k | x_t = i, x0 = j) = Q_{t|s}[k, i] Qbar_s[j, k] / Qbar_t[j, i]``; clean categories that cannot
    reach ``x_t`` (``Qbar_t[j, i] = 0``) are dropped. Rows whose mixture vanishes (an impossible ``x_t``, a padded
    slot) are returned as ``x_t`` itself.

    Args:
        px0: clean-category probabilities (with 0 on states that are not data, e.g. [MASK]).
        xt: one-hot current states.
        Qbar_s, Q_ts, Qbar_t: ``Qbar_s``, ``Q_{t|s}`` and ``Qbar_t`` (``Qbar_0 = I``).

    Shapes:
        px0, xt: ``[..., K]``; matrices ``[K, K]``; returns ``[..., K]`` (float64).
    """
    px0, xt = px0.to(torch.float64), xt.to(torch.float64)
    # D3PM eq. 3 / DiGress eq. 4: x_t Q_{t|s}^T ⊙ x0 Qbar_s / (x0 Qbar_t x_t^T), mixed over p(x0 | x_t)
    den = xt @ Qbar_t.T
    w = torch.where(den > 0, px0 / den.clamp(min=_TINY), torch.zeros_like(px0))
    p = (xt @ Q_ts.T) * (w @ Qbar_s)
    z = p.sum(-1, keepdim=True)
    return torch.where(z > 0, p / z.clamp(min=_TINY), xt)


class DiscreteDiffusion(CategoricalProcess):
    """DiGress discrete diffusion on node and edge categories.

    Args:
        schema: the dataset schema (categories, marginals, max nodes, node-count histogram, graph features).
        transition: the limit distribution ``m``: ``"marginal"`` (DiGress's default), ``"uniform"`` or
            ``"absorbing"`` (nodes to an extra [MASK] state, edges to "none").
        T: number of diffusion steps of training.
        schedule: ``"cosine"`` (the schedule of ``alpha_bar``).
        lambda_edge: weight of the edge cross entropy (DiGress uses 5).
        cond_drop: probability of dropping a graph's condition in training (classifier-free guidance).

    Shapes:
        state: ``x [B, N, Kx (+1 [MASK])]`` one-hot, ``e [B, N, N, Ke]`` one-hot and symmetric, ``mask [B, N]``.
    """

    name = "digress"

    def __init__(self, schema: Schema, *, transition: str = "marginal", T: int = 500, schedule: str = "cosine",
                 lambda_edge: float = 5.0, cond_drop: float = 0.1):
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ConfigError(f"process.T must be a positive integer, got {T!r}")
        if schedule not in SCHEDULES:
            raise ConfigError(f"process.schedule: {schedule!r} is not one of {SCHEDULES}")
        super().__init__(schema, limit=transition, lambda_edge=lambda_edge, cond_drop=cond_drop,
                         field="process.transition")
        self.T = int(T)
        self.schedule = schedule
        self.alpha_bar = cosine_alpha_bar(self.T)

    @property
    def transition(self) -> str:
        return self.limit

    def to_dict(self) -> dict:
        return {"name": self.name, "transition": self.transition, "T": self.T, "schedule": self.schedule,
                "lambda_edge": self.lambda_edge, "cond_drop": self.cond_drop}

    # ---- transition matrices ------------------------------------------------------------------------
    def _m(self, which: str) -> Tensor:
        if which not in ("x", "e"):
            raise ValueError(f"which must be 'x' or 'e', got {which!r}")
        return self.m_x if which == "x" else self.m_e

    def Qbar(self, t: int, which: str = "x") -> Tensor:
        """``Qbar_t = alpha_bar_t I + (1 - alpha_bar_t) 1 m^T`` for nodes (``"x"``) or edges (``"e"``).

        Shapes:
            returns ``[K, K]`` float64.
        """
        return transition_matrix(float(self.alpha_bar[t]), self._m(which))

    def Q(self, t: int, which: str = "x") -> Tensor:
        """One-step ``Q_t`` (``alpha_t = alpha_bar_t / alpha_bar_{t-1}``)."""
        return self.Q_between(t, t - 1, which)

    def Q_between(self, t: int, s: int, which: str = "x") -> Tensor:
        """``Q_{t|s}``, the transition from step ``s`` to step ``t > s``.

        Shapes:
            returns ``[K, K]`` float64.
        """
        # Qbar_s^{-1} Qbar_t for the alpha form: alpha_{t|s} = alpha_bar_t / alpha_bar_s
        ab_s = float(self.alpha_bar[s])
        alpha = float(self.alpha_bar[t]) / ab_s if ab_s > 0 else 0.0
        return transition_matrix(alpha, self._m(which))

    def timesteps(self, steps: int) -> list[int]:
        """A strided subsequence ``T = t_0 > t_1 > ... > t_steps = 0`` of the training steps."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {steps!r}")
        if steps > self.T:
            raise ConfigError(f"steps must be <= process.T = {self.T}, got {steps}")
        return [int(v) for v in torch.linspace(self.T, 0, steps + 1, dtype=torch.float64).round().tolist()]

    # ---- forward noise ------------------------------------------------------------------------------
    def noise_probs(self, x0: Tensor, e0: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``q(x_t | x0) = x0 Qbar_t`` per node and per pair.

        Shapes:
            x0: ``[B, N]`` long; e0: ``[B, N, N]`` long; t: ``[B]`` long; returns ``[B, N, Kx(+1)]``,
            ``[B, N, N, Ke]`` (float64).
        """
        ab = self.alpha_bar.to(x0.device)[t]
        # DiGress Sec. 3.1: q(x_t | x) = x Qbar_t = alpha_bar_t x + (1 - alpha_bar_t) m
        px = ab.view(-1, 1, 1) * F.one_hot(x0, self.node_states) + (1 - ab).view(-1, 1, 1) * self.m_x.to(x0.device)
        pe = ab.view(-1, 1, 1, 1) * F.one_hot(e0, self.ke) + (1 - ab).view(-1, 1, 1, 1) * self.m_e.to(x0.device)
        return px, pe

    # ---- training -----------------------------------------------------------------------------------
    def loss(self, denoiser, batch: GraphState, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-graph x0-prediction cross entropy at a uniform step ``t`` in ``{1..T}``.

        Shapes:
            returns ``[B]``.
        """
        x0, e0 = self.categories(batch)
        mask, dev = batch.mask, batch.device
        dtype = batch.x.dtype if batch.x.is_floating_point() else torch.float32
        gdev = generator.device if generator is not None else dev
        t = torch.randint(1, self.T + 1, (batch.batch_size,), generator=generator, device=gdev).to(dev)
        px, pe = self.noise_probs(x0, e0, t)
        noisy = self.sample_state(px, pe, mask, generator, dtype)
        cond = self._train_cond(batch, generator)
        return self._noisy_loss(denoiser, noisy, (t.to(dtype) / self.T), x0, e0, cond)

    # ---- reverse step -------------------------------------------------------------------------------
    def reverse_probs(self, px0: Tensor, pe0: Tensor, state: GraphState, t: int, s: int) -> tuple[Tensor, Tensor]:
        """``p_theta(x_s | x_t)`` per node and per pair from the clean-data prediction (DiGress eq. 4).

        Shapes:
            px0: ``[B, N, Kx]``; pe0: ``[B, N, N, Ke]``; returns ``[B, N, Kx(+1)]``, ``[B, N, N, Ke]`` (float64).
        """
        out = []
        for p0, xt, which in ((self.pad_x0(px0), state.x, "x"), (pe0, state.e, "e")):
            mats = [m.to(xt.device) for m in (self.Qbar(s, which), self.Q_between(t, s, which),
                                               self.Qbar(t, which))]
            out.append(posterior(p0, xt, *mats))
        return out[0], out[1]
