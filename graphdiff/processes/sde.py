"""Forward SDEs of score-based diffusion (Song et al. 2021, "Score-Based Generative Modeling through SDEs").

Each SDE ``dx = f(x, t) dt + g(t) dW`` on ``t in [0, T=1]`` provides what training and the reverse-time samplers
need: the drift and diffusion, the Gaussian marginal ``p_t(x | x_0)``, the prior at ``t = 1``, a one-step
discretisation (reverse-diffusion predictor), the exact transition of the linear part (S4 solver) and the
Langevin step-size factor ``alpha``. ``t`` is always a ``[B]`` tensor; results broadcast over the trailing dims.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..checks import check_keys, suggest
from ..errors import ConfigError


def _bc(v: Tensor, like: Tensor) -> Tensor:
    """Reshape a ``[B]`` tensor to broadcast against ``like`` (``[B, ...]``)."""
    return v.reshape(-1, *([1] * (like.dim() - 1)))


class SDE:
    """Base class. Subclasses define ``sde``, ``marginal``, ``prior_std`` and ``transition``."""

    name = "sde"
    T = 1.0

    def __init__(self, beta_min: float, beta_max: float, num_scales: int = 1000):
        if not 0 < beta_min < beta_max:
            raise ConfigError(f"{self.name} SDE needs 0 < beta_min < beta_max, got {beta_min}, {beta_max}")
        if num_scales < 1:
            raise ConfigError(f"{self.name} SDE num_scales must be >= 1, got {num_scales}")
        self.beta_min, self.beta_max, self.num_scales = float(beta_min), float(beta_max), int(num_scales)

    # ---- to be defined by subclasses ----------------------------------------------------------------
    def sde(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Drift ``f(x, t)`` (shape of x) and diffusion ``g(t)`` (``[B]``)."""
        raise NotImplementedError

    def marginal(self, x0: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean (shape of x0) and std (``[B]``) of ``p_t(x | x_0)``."""
        raise NotImplementedError

    @property
    def prior_std(self) -> float:
        raise NotImplementedError

    def transition(self, x: Tensor, t: Tensor, h: float) -> tuple[Tensor, Tensor]:
        """Mean and std (``[B]``) of the reverse-time linear part ``dx = f dt + g dW`` run from ``t`` to ``t - h``."""
        raise NotImplementedError

    # ---- shared ----------------------------------------------------------------------------------------
    def scales_output(self) -> bool:
        """Whether the network predicts ``-noise`` (score = output / std) rather than the score itself."""
        return True

    def discretize(self, x: Tensor, t: Tensor, h: float) -> tuple[Tensor, Tensor]:
        """Forward increment ``f_i`` and noise scale ``G_i`` of one step of size ``h`` ending at ``t`` (Euler)."""
        f, g = self.sde(x, t)
        return f * h, g * math.sqrt(h)

    def langevin_alpha(self, t: Tensor, h: float) -> Tensor:
        """``alpha_i`` of the Langevin corrector step size (1 except for VP)."""
        return torch.ones_like(t)

    def to_dict(self) -> dict:
        return {"type": self.name, "beta_min": self.beta_min, "beta_max": self.beta_max,
                "num_scales": self.num_scales}


class VPSDE(SDE):
    """Variance preserving: ``dx = -beta(t)/2 x dt + sqrt(beta(t)) dW``, beta linear in t (Song et al. eq. 11)."""

    name = "VP"

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def beta_integral(self, t0: Tensor, t1: Tensor) -> Tensor:
        """``int_{t0}^{t1} beta(s) ds``."""
        return (t1 - t0) * (self.beta_min + 0.5 * (t0 + t1) * (self.beta_max - self.beta_min))

    def sde(self, x, t):
        b = self.beta(t)
        return -0.5 * _bc(b, x) * x, torch.sqrt(b)

    def marginal(self, x0, t):
        log_mean = -0.5 * self.beta_integral(torch.zeros_like(t), t)
        return _bc(torch.exp(log_mean), x0) * x0, torch.sqrt(-torch.expm1(2.0 * log_mean))

    @property
    def prior_std(self):
        return 1.0

    def discretize(self, x, t, h):
        # DDPM step with the exact integral of beta over the step: x_{i} = sqrt(1 - b_i) x_{i-1} + sqrt(b_i) z.
        b = self.beta_integral(t - h, t)
        return _bc(torch.exp(-0.5 * b) - 1.0, x) * x, torch.sqrt(-torch.expm1(-b))

    def langevin_alpha(self, t, h):
        return torch.exp(-self.beta_integral(t - h, t))

    def transition(self, x, t, h):
        b = self.beta_integral(t - h, t)
        return _bc(torch.exp(0.5 * b), x) * x, torch.sqrt(-torch.expm1(-b))


class SubVPSDE(VPSDE):
    """Sub-VP: VP drift, diffusion ``sqrt(beta(t) (1 - exp(-2 int_0^t beta)))`` (Song et al. eq. 17)."""

    name = "subVP"

    def sde(self, x, t):
        b = self.beta(t)
        shrink = -torch.expm1(-2.0 * self.beta_integral(torch.zeros_like(t), t))
        return -0.5 * _bc(b, x) * x, torch.sqrt(b * shrink)

    def marginal(self, x0, t):
        log_mean = -0.5 * self.beta_integral(torch.zeros_like(t), t)
        return _bc(torch.exp(log_mean), x0) * x0, -torch.expm1(2.0 * log_mean)

    def discretize(self, x, t, h):
        return SDE.discretize(self, x, t, h)

    def langevin_alpha(self, t, h):
        return torch.ones_like(t)

    def transition(self, x, t, h):
        b = self.beta_integral(t - h, t)
        _, g = self.sde(x, t)
        return _bc(torch.exp(0.5 * b), x) * x, g * math.sqrt(h)


class VESDE(SDE):
    """Variance exploding: ``sigma(t) = sigma_min (sigma_max / sigma_min)^t``, ``dx = sqrt(d sigma^2/dt) dW``.

    Following GDSS's configuration files, ``beta_min`` / ``beta_max`` are ``sigma_min`` / ``sigma_max``."""

    name = "VE"

    def sigma(self, t: Tensor) -> Tensor:
        return self.beta_min * (self.beta_max / self.beta_min) ** t

    def sde(self, x, t):
        g = self.sigma(t) * math.sqrt(2.0 * math.log(self.beta_max / self.beta_min))
        return torch.zeros_like(x), g

    def marginal(self, x0, t):
        return x0, self.sigma(t)

    @property
    def prior_std(self):
        return self.beta_max

    def scales_output(self) -> bool:
        return False

    def discretize(self, x, t, h):
        prev = torch.where(t - h > 0, self.sigma((t - h).clamp(min=0)), torch.zeros_like(t))
        return torch.zeros_like(x), torch.sqrt((self.sigma(t) ** 2 - prev**2).clamp(min=0))

    def transition(self, x, t, h):
        _, g = self.discretize(x, t, h)
        return x, g


SDES = {"VP": VPSDE, "VE": VESDE, "subVP": SubVPSDE}


def build_sde(spec: dict, where: str = "sde") -> SDE:
    """An SDE from ``{"type": "VP"|"VE"|"subVP", "beta_min": .., "beta_max": .., "num_scales": ..}``."""
    spec = dict(spec)
    kind = spec.pop("type", "VP")
    if kind not in SDES:
        raise ConfigError(f"{where}.type: unknown SDE {kind!r}{suggest(kind, SDES)}; choose from {sorted(SDES)}")
    allowed = ("beta_min", "beta_max", "num_scales")
    check_keys(spec, allowed, where)
    return SDES[kind](**spec)
