"""Euler sampling of the 3D molecular flow (SemlaFlow class), as a pure function.

From the prior at ``t = 0`` to the data at ``t = 1`` on the grid ``t_k = f(k / steps)``: at each step the denoiser
predicts the clean molecule; coordinates take an Euler step along ``(pos_1_hat - pos_t) / (1 - t)``; atom types,
charges and bonds take DeFoG's CTMC step. The last step returns the predicted coordinates and draws the categories
from the prediction restricted to what can produce the current state. ``callback(k, t, state)`` after each step.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..progress import maybe
from ..state import GraphState
from .noise import SampleNoise


@torch.no_grad()
def euler_3d(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise, callback=None,
             progress: bool = False, cond=None, guidance: float = 0.0, time_distortion: str = "identity",
             eta: float = 0.0, omega: float = 0.0) -> GraphState:
    """Integrate the flow from the prior ``state`` in ``steps`` Euler steps.

    Args:
        process: a :class:`~graphdiff.processes.semlaflow.MolecularFlowMatching`.
        steps: Euler steps (>= 1).
        cond, guidance: graph-level conditions and the classifier-free guidance weight.
        time_distortion: the grid ``t_k = f(k / steps)`` (``"identity"``, ``"polydec"``, ...).
        eta, omega: DeFoG's stochasticity and target-guidance weights for the categories (>= 0).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    if not float(eta) >= 0 or not float(omega) >= 0:
        raise ConfigError(f"sample.eta and sample.omega must be >= 0, got {eta}, {omega}")
    grid = process.time_grid(steps, time_distortion)
    b, mask = state.batch_size, state.mask
    ka, kc = process.ka, process.kc
    for k in maybe(range(steps), progress, "semlaflow"):
        t, t_next = grid[k], grid[k + 1]
        tt = torch.full((b,), t, device=state.device, dtype=state.pos.dtype)
        pos1, la, lc, le = process.predict(denoiser, state, tt, cond=cond, guidance=guidance)
        xa, xc = state.x[..., :ka], state.x[..., ka: ka + kc]
        last = k == steps - 1
        if last:
            pos = pos1.to(state.pos.dtype)
            pa = process.final_categorical(la.exp(), xa, process.m_a, t)
            pc = process.final_categorical(lc.exp(), xc, process.m_c, t)
            pe = process.final_categorical(le.exp(), state.e, process.m_e, t)
        else:
            dt = t_next - t
            pos = process.step_pos(state.pos, pos1.to(state.pos.dtype), t, dt, mask)
            pa = process.step_categorical(la.exp(), xa, process.m_a, t, dt, eta=eta, omega=omega)
            pc = process.step_categorical(lc.exp(), xc, process.m_c, t, dt, eta=eta, omega=omega)
            pe = process.step_categorical(le.exp(), state.e, process.m_e, t, dt, eta=eta, omega=omega)
        state = process.sample_state(pa, pc, pe, pos, mask, noise, state.x.dtype)
        if callback is not None:
            callback(k, t_next, state)
    return state


FLOW_3D_SAMPLERS = {"euler": euler_3d}
