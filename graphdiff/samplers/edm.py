"""Samplers of EDM and PFGM++ (Karras et al. 2022, Algorithms 1 and 2): Euler and Heun on the probability-flow ODE
``dx / dsigma = (x - D(x; sigma)) / sigma`` over the schedule ``process.sigmas(steps)``, optionally with "churn"
(fresh noise raising sigma before each step). PFGM++ under the alignment ``r = sigma sqrt(D)`` integrates the same
ODE from its own prior (Xu et al. 2023, Sec. 4).

The process provides ``keys``, ``components``, ``assemble``, ``draw``, ``sigmas`` and ``denoise``. ``steer`` (used by
observation guidance, :mod:`graphdiff.guidance.self_guidance`) replaces each denoiser evaluation:
``steer(denoise, comps, sigma, mask) -> comps`` where ``denoise(comps) -> comps`` is the plain ``D(.; sigma)``.
"""

from __future__ import annotations

import math

import torch

from ..progress import maybe
from ..state import GraphState
from .noise import SampleNoise


def _denoiser_fn(process, denoiser, mask, cond, guidance, steer):
    def fn(comps, sigma: float):
        vs = torch.full((mask.shape[0],), sigma, device=mask.device)
        plain = lambda c: process.denoise(denoiser, c, mask, vs, cond=cond, guidance=guidance)  # noqa: E731
        return plain(comps) if steer is None else steer(plain, comps, vs, mask)
    return fn


def _run(process, denoiser, state: GraphState, steps: int, noise: SampleNoise, second_order: bool, cond, guidance,
         steer, S_churn: float, S_min: float, S_max: float, S_noise: float, callback, progress, name):
    mask = state.mask
    comps = process.components(state)
    sig = [float(s) for s in process.sigmas(steps)]
    den = _denoiser_fn(process, denoiser, mask, cond, guidance, steer)
    for i in maybe(range(steps), progress, name):
        s, s_next = sig[i], sig[i + 1]
        gamma = min(S_churn / steps, math.sqrt(2) - 1) if S_min <= s <= S_max else 0.0
        if gamma > 0:  # Alg. 2 lines 4-6: raise sigma with fresh noise
            s_hat = s * (1 + gamma)
            comps = {k: v + math.sqrt(s_hat**2 - s**2) * S_noise * process.draw(k, noise, mask)
                     for k, v in comps.items()}
            s = s_hat
        d = {k: (comps[k] - v) / s for k, v in den(comps, s).items()}
        nxt = {k: comps[k] + (s_next - s) * d[k] for k in comps}
        if second_order and s_next > 0:  # Heun's correction (Alg. 1 lines 9-11)
            d2 = {k: (nxt[k] - v) / s_next for k, v in den(nxt, s_next).items()}
            nxt = {k: comps[k] + (s_next - s) * 0.5 * (d[k] + d2[k]) for k in comps}
        comps = nxt
        if callback is not None:
            callback(i, s_next, process.assemble(comps, mask, y=cond))
    return process.assemble(comps, mask, y=cond)


@torch.no_grad()
def heun(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise, cond=None, guidance: float = 0.0,
         steer=None, S_churn: float = 0.0, S_min: float = 0.0, S_max: float = float("inf"), S_noise: float = 1.0,
         callback=None, progress: bool = False) -> GraphState:
    """Heun's second-order method (Karras et al. Alg. 1; Alg. 2 with ``S_churn > 0``): ``2 steps - 1`` network calls."""
    return _run(process, denoiser, state, steps, noise, True, cond, guidance, steer, S_churn, S_min, S_max, S_noise,
                callback, progress, "heun")


@torch.no_grad()
def euler(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise, cond=None, guidance: float = 0.0,
          steer=None, S_churn: float = 0.0, S_min: float = 0.0, S_max: float = float("inf"), S_noise: float = 1.0,
          callback=None, progress: bool = False) -> GraphState:
    """Euler's method on the same ODE: one network call per step."""
    return _run(process, denoiser, state, steps, noise, False, cond, guidance, steer, S_churn, S_min, S_max, S_noise,
                callback, progress, "euler")


EDM_SAMPLERS = {"heun": heun, "euler": euler}

__all__ = ["EDM_SAMPLERS", "heun", "euler"]
