"""EQGAT-diff: joint diffusion of 3D coordinates, atom types, formal charges and bonds.

Le, Cremer, Noé, Clevert & Schütt, "Navigating the Design Space of Equivariant Diffusion-Based Generative Models for
De Novo 3D Molecule Generation", ICLR 2024 (the MiDi family: Vignac et al., ECML 2023). Time is discrete,
``t = 0`` data and ``t = T`` noise; every modality has its own noise schedule, the "adaptive" cosine

    ``abar_nu(t) = cos^2(pi/2 ((t/T)^nu + s) / (1 + s)) / cos^2(pi/2 s / (1 + s))``

with a per-modality exponent ``nu`` (EQGAT-diff: 2.5 for coordinates, 1 for atom types and charges, 1.5 for bonds,
so that coordinates keep their signal longest):

- coordinates: ``pos_t = a_t pos_0 + sigma_t eps`` with ``a_t = abar_pos(t)``, ``sigma_t = sqrt(1 - a_t^2)`` and
  ``eps`` a standard normal projected to zero centre of mass (Hoogeboom et al. 2022);
- atom types, charges and bonds: DiGress's marginal transitions (:mod:`graphdiff.processes.digress`),
  ``Qbar_t = abar_t I + (1 - abar_t) 1 m^T`` with ``m`` the data marginals.

The denoiser predicts the clean data (coordinates and category logits); the loss is
``w(t) (3 l_pos + 0.4 l_atoms + 1 l_charges + 2 l_bonds)`` with the EQGAT-diff time weighting
``w(t) = clip(SNR(t), 0.05, 1.5)``, ``SNR(t) = abar_t / (1 - abar_t)`` of the atom-type schedule (its ``snr_t``
loss weighting). Reverse steps (:mod:`graphdiff.samplers.eqgat_diff`) use the Gaussian posterior
``q(pos_s | pos_t, pos_0)`` and DiGress's categorical posteriors with the predicted clean data; any ``steps <= T``
visits an evenly spaced subset of the ``T`` training times.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from ..state import GraphState
from .digress import posterior, transition_matrix
from .mixed3d import Mixed3DProcess, centre

WEIGHTINGS = ("snr_t", "uniform")


def adaptive_cosine(T: int, nu: float, s: float = 0.008) -> Tensor:
    """``abar_nu(t)`` for ``t = 0..T`` (``abar(0) = 1``; ``abar(T)`` is 0 up to float error, clamped at 0).

    Shapes:
        returns ``[T + 1]`` float64.
    """
    t = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos(0.5 * math.pi * (t ** float(nu) + s) / (1 + s)) ** 2
    return (f / f[0]).clamp(0.0, 1.0)


class EQGATDiffusion(Mixed3DProcess):
    """EQGAT-diff / MiDi-class mixed diffusion (see the module docstring).

    Args:
        schema: a molecule schema with explicit hydrogens.
        T: number of training times.
        nu_pos, nu_atoms, nu_bonds: exponents of the adaptive cosine schedules (charges share the atoms').
        weighting: ``"snr_t"`` (EQGAT-diff's ``clip(SNR(t), 0.05, 1.5)``) or ``"uniform"``.
        limit, lambda_*, cond_drop: see :class:`~graphdiff.processes.mixed3d.Mixed3DProcess`.
    """

    name = "eqgat_diff"

    def __init__(self, schema, *, T: int = 500, nu_pos: float = 2.5, nu_atoms: float = 1.0, nu_bonds: float = 1.5,
                 weighting: str = "snr_t", limit: str = "marginal", lambda_pos: float = 3.0,
                 lambda_atoms: float = 0.4, lambda_charges: float = 1.0, lambda_bonds: float = 2.0,
                 cond_drop: float = 0.1):
        super().__init__(schema, limit=limit, lambda_pos=lambda_pos, lambda_atoms=lambda_atoms,
                         lambda_charges=lambda_charges, lambda_bonds=lambda_bonds, cond_drop=cond_drop)
        if isinstance(T, bool) or not isinstance(T, int) or T < 2:
            raise ConfigError(f"process.T must be an integer >= 2, got {T!r}")
        for key, v in (("nu_pos", nu_pos), ("nu_atoms", nu_atoms), ("nu_bonds", nu_bonds)):
            if not float(v) > 0:
                raise ConfigError(f"process.{key} must be > 0, got {v}")
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"process.weighting: {weighting!r} is not one of {WEIGHTINGS}")
        self.T = T
        self.nu = (float(nu_pos), float(nu_atoms), float(nu_bonds))
        self.weighting = weighting
        self.abar_pos = adaptive_cosine(T, nu_pos)
        self.abar_x = adaptive_cosine(T, nu_atoms)
        self.abar_e = adaptive_cosine(T, nu_bonds)

    def to_dict(self) -> dict:
        return {**self._base_dict(), "T": self.T, "nu_pos": self.nu[0], "nu_atoms": self.nu[1],
                "nu_bonds": self.nu[2], "weighting": self.weighting}

    # ---- schedule -------------------------------------------------------------------------------------
    def signal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Coordinate signal and noise scales ``a_t``, ``sigma_t`` at integer times ``t`` (``[B]`` each)."""
        a = self.abar_pos.to(t.device)[t]
        return a, (1 - a ** 2).clamp(min=0).sqrt()

    def loss_weight(self, t: Tensor) -> Tensor:
        """``w(t)``, ``[B]`` float64."""
        if self.weighting == "uniform":
            return torch.ones(t.shape, dtype=torch.float64, device=t.device)
        ab = self.abar_x.to(t.device)[t]
        return (ab / (1 - ab).clamp(min=1e-12)).clamp(0.05, 1.5)

    def timesteps(self, steps: int) -> list[int]:
        """The ``steps + 1`` integer times ``T = t_0 > ... > t_steps = 0`` a sampler visits."""
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.T:
            raise ConfigError(f"steps must be an integer in 1..{self.T} (process.T), got {steps!r}")
        grid = torch.linspace(self.T, 0, steps + 1, dtype=torch.float64).round().long().tolist()
        return [int(t) for t in grid]

    # ---- forward process ------------------------------------------------------------------------------
    def noisy(self, batch: GraphState, t: Tensor, generator=None) -> tuple[GraphState, tuple]:
        """``x_t ~ q(x_t | x_0)`` for a data batch at integer times ``t [B]``; returns it and the clean indices
        ``(pos0, a0, c0, e0)``."""
        a0, c0, e0 = self.categories(batch)
        mask = batch.mask
        dtype = batch.pos.dtype if batch.pos.is_floating_point() else torch.float32
        pos0 = centre(batch.pos.to(dtype), mask)
        a_t, s_t = self.signal(t)
        eps = self.gaussian(mask, generator, dtype)
        pos_t = a_t.to(dtype).view(-1, 1, 1) * pos0 + s_t.to(dtype).view(-1, 1, 1) * eps
        pa, pc, pe = self.noisy_categories(a0, c0, e0, self.abar_x.to(t.device)[t], self.abar_e.to(t.device)[t])
        state = self.sample_state(pa, pc, pe, pos_t, mask, generator, dtype)
        return state, (pos0, a0, c0, e0)

    def loss(self, denoiser, batch: GraphState, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-molecule weighted loss at ``t ~ U{1..T}``.

        Shapes:
            returns ``[B]``.
        """
        gdev = generator.device if generator is not None else batch.device
        t = torch.randint(1, self.T + 1, (batch.batch_size,), generator=generator, device=gdev).to(batch.device)
        noisy, (pos0, a0, c0, e0) = self.noisy(batch, t, generator)
        cond = self._train_cond(batch, generator)
        out = denoiser(noisy, (t.float() / self.T).to(noisy.pos.dtype), cond)
        terms = self.loss_terms(out, pos0, a0, c0, e0, batch.mask)
        return self.loss_weight(t).to(terms[0].dtype) * self.weighted(terms)

    # ---- reverse step ---------------------------------------------------------------------------------
    def reverse_pos(self, pos_t: Tensor, pos0: Tensor, t: int, s: int, mask: Tensor, eps: Tensor) -> Tensor:
        """A draw of ``q(pos_s | pos_t, pos_0 = prediction)`` (``s = 0``: the prediction itself).

        With ``a_{t|s} = a_t / a_s`` and ``sigma_{t|s}^2 = sigma_t^2 - a_{t|s}^2 sigma_s^2``: mean
        ``a_{t|s} sigma_s^2 / sigma_t^2 pos_t + a_s sigma_{t|s}^2 / sigma_t^2 pos_0`` and standard deviation
        ``sigma_{t|s} sigma_s / sigma_t`` (Kingma et al. 2021, eq. 19-21), noise centred.
        """
        if s == 0:
            return centre(pos0, mask)
        c_t, c_0, var = self._posterior(t, s)
        return centre(c_t * pos_t + c_0 * pos0 + math.sqrt(var) * eps, mask)

    def _posterior(self, t: int, s: int) -> tuple[float, float, float]:
        """``q(pos_s | pos_t, pos_0)``'s mean coefficients of ``pos_t`` and ``pos_0`` and its variance (``s > 0``)."""
        a_t, a_s = float(self.abar_pos[t]), float(self.abar_pos[s])
        s2_t, s2_s = max(1 - a_t ** 2, 1e-12), max(1 - a_s ** 2, 0.0)
        a_ts = a_t / max(a_s, 1e-12)
        s2_ts = max(s2_t - a_ts ** 2 * s2_s, 0.0)
        return a_ts * s2_s / s2_t, a_s * s2_ts / s2_t, s2_ts * s2_s / s2_t

    def posterior_variance(self, t: int, s: int) -> float:
        """The variance ``sigma_{t|s}^2 sigma_s^2 / sigma_t^2`` of ``q(pos_s | pos_t, pos_0)`` per coordinate (0 at
        ``s = 0``)."""
        return 0.0 if s == 0 else self._posterior(t, s)[2]

    def reverse_categorical(self, p0: Tensor, xt: Tensor, abar: Tensor, m: Tensor, t: int, s: int) -> Tensor:
        """DiGress's ``p(x_s | x_t) = sum_x0 q(x_s | x_t, x0) p(x0 | x_t)`` for one modality.

        Shapes:
            p0, xt: ``[..., K]``; returns ``[..., K]`` float64.
        """
        m = m.to(xt.device)
        a_t, a_s = float(abar[t]), float(abar[s])
        Qbar_t = transition_matrix(a_t, m)
        Qbar_s = transition_matrix(a_s, m)
        Q_ts = transition_matrix(a_t / a_s if a_s > 0 else 0.0, m)
        return posterior(p0, xt, Qbar_s, Q_ts, Qbar_t)
