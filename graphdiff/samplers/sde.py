"""Reverse-time samplers for systems of SDEs (GDSS), as short pure functions.

Each takes a process (``sdes``, ``components``, ``assemble``, ``scores``, ``draw``), a denoiser, the prior
state and per-sample noise streams, and returns the final *mean* state (GDSS's ``noise_removal``). The time grid
runs from ``t = 1`` down to ``eps`` in ``steps`` equal steps. ``callback(i, t, state)`` is called after each step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..processes.sde import _bc
from ..progress import maybe
from ..state import GraphState
from .noise import SampleNoise


def _grid(steps: int, eps: float, device) -> Tensor:
    return torch.linspace(1.0, eps, steps + 1, device=device, dtype=torch.float64)


def _norm(v: Tensor) -> Tensor:
    return v.reshape(v.shape[0], -1).norm(dim=-1)


def _langevin(process, comps, s, mask, vt, h, noise, snr, scale_eps):
    """Annealed Langevin step with per-sample step size ``2 alpha (snr |z| / |s|)^2`` (Song et al. Alg. 5)."""
    out = {}
    for k, sde in process.sdes.items():
        z = process.draw(k, noise, mask)
        alpha = sde.langevin_alpha(vt, h)
        step = 2.0 * alpha * (snr * _norm(z) / _norm(s[k]).clamp(min=1e-12)) ** 2
        out[k] = comps[k] + _bc(step, s[k]) * s[k] + _bc(torch.sqrt(2.0 * step), z) * z * scale_eps
    return out


@torch.no_grad()
def euler_maruyama(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise, eps: float = 1e-4,
                   callback=None, progress: bool = False) -> GraphState:
    """Euler-Maruyama on the reverse SDE ``dx = [f - g^2 score] dt + g dW`` (one network call per step)."""
    mask, comps = state.mask, process.components(state)
    ts, means = _grid(steps, eps, state.device), dict(comps)
    for i in maybe(range(steps), progress, "em"):
        h = float(ts[i] - ts[i + 1])
        vt = torch.full((mask.shape[0],), float(ts[i]), device=state.device)
        s = process.scores(denoiser, comps, mask, vt)
        for k, sde in process.sdes.items():
            f, g = sde.sde(comps[k], vt)
            means[k] = comps[k] - (f - _bc(g**2, s[k]) * s[k]) * h
            comps[k] = means[k] + _bc(g, s[k]) * math.sqrt(h) * process.draw(k, noise, mask)
        if callback is not None:
            callback(i, float(ts[i + 1]), process.assemble(comps, mask))
    return process.assemble(means, mask)


@torch.no_grad()
def predictor_corrector(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise,
                        predictor: str = "reverse", snr: float = 0.2, scale_eps: float = 0.7, n_corrector: int = 1,
                        eps: float = 1e-4, callback=None, progress: bool = False) -> GraphState:
    """Predictor-corrector sampling (Song et al. Alg. 1-2; GDSS's "PC"): ``n_corrector`` Langevin steps, then a
    reverse-diffusion (``predictor="reverse"``) or Euler-Maruyama (``"euler"``) predictor step."""
    if predictor not in ("reverse", "euler"):
        from ..errors import ConfigError

        raise ConfigError(f"sample.predictor must be 'reverse' or 'euler', got {predictor!r}")
    mask, comps = state.mask, process.components(state)
    ts, means = _grid(steps, eps, state.device), dict(comps)
    for i in maybe(range(steps), progress, "pc"):
        h = float(ts[i] - ts[i + 1])
        vt = torch.full((mask.shape[0],), float(ts[i]), device=state.device)
        for _ in range(n_corrector):
            s = process.scores(denoiser, comps, mask, vt)
            comps = _langevin(process, comps, s, mask, vt, h, noise, snr, scale_eps)
        s = process.scores(denoiser, comps, mask, vt)
        for k, sde in process.sdes.items():
            if predictor == "reverse":
                f, big_g = sde.discretize(comps[k], vt, h)
                means[k] = comps[k] - f + _bc(big_g**2, s[k]) * s[k]
            else:
                f, g = sde.sde(comps[k], vt)
                means[k] = comps[k] - (f - _bc(g**2, s[k]) * s[k]) * h
                big_g = g * math.sqrt(h)
            comps[k] = means[k] + _bc(big_g, s[k]) * process.draw(k, noise, mask)
        if callback is not None:
            callback(i, float(ts[i + 1]), process.assemble(comps, mask))
    return process.assemble(means, mask)


@torch.no_grad()
def s4(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise, snr: float = 0.15,
       scale_eps: float = 0.7, eps: float = 1e-4, callback=None, progress: bool = False) -> GraphState:
    """GDSS's S4 solver (Symmetric Splitting for Systems of SDEs, Sec. 3.3): one score evaluation per step,
    reused by a Langevin correction and by the score half of a symmetric (Strang) splitting whose linear half
    ``dx = f dt + g dW`` is solved exactly over two half steps."""
    mask, comps = state.mask, process.components(state)
    ts, means = _grid(steps, eps, state.device), dict(comps)
    for i in maybe(range(steps), progress, "s4"):
        h = float(ts[i] - ts[i + 1])
        vt = torch.full((mask.shape[0],), float(ts[i]), device=state.device)
        s = process.scores(denoiser, comps, mask, vt)
        if snr > 0:
            comps = _langevin(process, comps, s, mask, vt, h, noise, snr, scale_eps)
        for k, sde in process.sdes.items():
            m, sd = sde.transition(comps[k], vt, h / 2)
            x = m + _bc(sd, m) * process.draw(k, noise, mask)
            _, g = sde.sde(x, vt)
            x = x + _bc(g**2, s[k]) * s[k] * h
            m, sd = sde.transition(x, vt - h / 2, h / 2)
            means[k] = m
            comps[k] = m + _bc(sd, m) * process.draw(k, noise, mask)
        if callback is not None:
            callback(i, float(ts[i + 1]), process.assemble(comps, mask))
    return process.assemble(means, mask)


@torch.no_grad()
def probability_flow_heun(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise | None = None,
                          eps: float = 1e-4, callback=None, progress: bool = False) -> GraphState:
    """Heun's method on the probability-flow ODE ``dx/dt = f - g^2 score / 2`` (Song et al. eq. 13; Karras et al.
    Alg. 1). Deterministic given the prior; two network calls per step except the last (Euler)."""
    mask, comps = state.mask, process.components(state)
    ts = _grid(steps, eps, state.device)

    def drift(c, t):
        vt = torch.full((mask.shape[0],), t, device=state.device)
        s = process.scores(denoiser, c, mask, vt)
        out = {}
        for k, sde in process.sdes.items():
            f, g = sde.sde(c[k], vt)
            out[k] = f - 0.5 * _bc(g**2, s[k]) * s[k]
        return out

    for i in maybe(range(steps), progress, "ode"):
        t, t_next = float(ts[i]), float(ts[i + 1])
        h = t - t_next
        d1 = drift(comps, t)
        pred = {k: comps[k] - h * d1[k] for k in comps}
        if i < steps - 1:
            d2 = drift(pred, t_next)
            comps = {k: comps[k] - h * 0.5 * (d1[k] + d2[k]) for k in comps}
        else:
            comps = pred
        if callback is not None:
            callback(i, t_next, process.assemble(comps, mask))
    return process.assemble(comps, mask)


SDE_SAMPLERS = {"em": euler_maruyama, "pc": predictor_corrector, "s4": s4, "ode": probability_flow_heun}
# network calls per step (for throughput tables): pc = n_corrector + 1, ode = 2 (1 on the last step)
