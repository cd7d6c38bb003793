"""Ancestral sampling of EQGAT-diff (3D coordinates + atom types, charges and bonds), as a pure function.

From the prior at ``t = T`` the sampler visits ``steps`` evenly spaced training times down to 0. At each step the
denoiser predicts the clean molecule; coordinates move by a draw of the Gaussian posterior
``q(pos_s | pos_t, pos_0 = prediction)`` (centred noise) and every category by DiGress's posterior mixed over the
predicted clean categories (:meth:`graphdiff.processes.eqgat_diff.EQGATDiffusion.reverse_categorical`). The last
step (to ``t = 0``) returns the predicted coordinates and draws the categories from the predicted clean
distribution restricted to what can produce the current state. ``callback(k, t, state)`` runs after each step.
"""

from __future__ import annotations

import torch

from ..progress import maybe
from ..state import GraphState
from .noise import SampleNoise


@torch.no_grad()
def ancestral_3d(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise, callback=None,
                 progress: bool = False, cond=None, guidance: float = 0.0) -> GraphState:
    """Run EQGAT-diff's reverse chain from the prior ``state`` in ``steps`` steps.

    Args:
        process: an :class:`~graphdiff.processes.eqgat_diff.EQGATDiffusion`.
        denoiser: ``denoiser(state_t, t, cond) -> GraphState`` (logits and clean coordinates).
        steps: reverse steps, ``1 <= steps <= process.T``.
        noise: per-sample streams.
        cond: ``[B, Fy]`` graph-level conditions (``None``: unconditional).
        guidance: classifier-free guidance weight ``w``.

    Returns:
        the final process state (``process.decode`` gives atom tokens, bonds and coordinates).
    """
    times = process.timesteps(steps)
    b, mask = state.batch_size, state.mask
    ka, kc = process.ka, process.kc
    for k in maybe(range(steps), progress, "eqgat_diff"):
        t, s = times[k], times[k + 1]
        tt = torch.full((b,), t / process.T, device=state.device, dtype=state.pos.dtype)
        pos0, la, lc, le = process.predict(denoiser, state, tt, cond=cond, guidance=guidance)
        eps = process.gaussian(mask, noise, state.pos.dtype)
        pos = process.reverse_pos(state.pos, pos0.to(state.pos.dtype), t, s, mask, eps)
        xa, xc = state.x[..., :ka], state.x[..., ka: ka + kc]
        pa = process.reverse_categorical(la.exp(), xa, process.abar_x, process.m_a, t, s)
        pc = process.reverse_categorical(lc.exp(), xc, process.abar_x, process.m_c, t, s)
        pe = process.reverse_categorical(le.exp(), state.e, process.abar_e, process.m_e, t, s)
        state = process.sample_state(pa, pc, pe, pos, mask, noise, state.x.dtype)
        if callback is not None:
            callback(k, s / process.T, state)
    return state


EQGAT_DIFF_SAMPLERS = {"ancestral": ancestral_3d}
