"""Ancestral sampling of DiGress (discrete diffusion on node and edge categories), as a pure function.

Vignac et al., ICLR 2023, Alg. 2, with step skipping: ``steps`` may be fewer than the ``T`` training steps; the
chain then visits a strided subsequence ``T = t_0 > ... > t_steps = 0`` and moves between ``t`` and ``s < t`` with
the exact posterior built from ``Qbar_s`` and ``Q_{t|s}`` (``alpha_{t|s} = alpha_bar_t / alpha_bar_s``).

The last step (``s = 0``) *samples* ``x_0`` from the mixture of posteriors, which at ``s = 0`` is
``p_theta(x_0 | x_1)`` restricted to the categories that can produce ``x_1`` (all of them for the uniform and
marginal limits; an unmasked node keeps its category for the absorbing limit). It takes no argmax. With the
absorbing limit, a [MASK] node left at the end (only when the model gives no mass to any compatible category) is
replaced by the model's argmax. ``callback(i, t, state)`` is called after each step with ``t = s / T``.
"""

from __future__ import annotations

import torch

from ..progress import maybe
from ..state import GraphState
from .noise import SampleNoise


@torch.no_grad()
def ancestral(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise, callback=None,
              progress: bool = False, cond=None, guidance: float = 0.0) -> GraphState:
    """Reverse DiGress chain from the prior ``state`` in ``steps`` (strided) steps.

    Args:
        process: a :class:`~graphdiff.processes.digress.DiscreteDiffusion`.
        denoiser: ``denoiser(state_t, t / T, cond) -> GraphState`` of clean-category logits.
        state: the prior state (``process.prior``).
        steps: number of reverse steps, ``1 <= steps <= T``.
        noise: per-sample streams.
        cond: ``[B, Fy]`` graph-level conditions (``None``: unconditional).
        guidance: classifier-free guidance weight ``w`` (``(1 + w) log p(x0 | y) - w log p(x0)``).

    Returns:
        the final process state (one-hot; ``process.decode`` gives the data state).

    Shapes:
        state: ``x [B, N, Kx(+1)]``, ``e [B, N, N, Ke]``, ``mask [B, N]``.
    """
    ts = process.timesteps(steps)
    b, T = state.batch_size, process.T
    log_px = None
    for i in maybe(range(steps), progress, "digress"):
        t, s = ts[i], ts[i + 1]
        tt = torch.full((b,), t / T, device=state.device, dtype=torch.float32)
        log_px, log_pe = process.predict(denoiser, state, tt, cond=cond, guidance=guidance)
        # DiGress eq. 4: p(x_s | x_t) = sum_x0 q(x_s | x_t, x0) p_theta(x0 | x_t)
        px, pe = process.reverse_probs(log_px.exp(), log_pe.exp(), state, t, s)
        state = process.sample_state(px, pe, state.mask, noise, state.x.dtype)
        if callback is not None:
            callback(i, s / T, state)
    return process.fill_masks(state, log_px)


DISCRETE_SAMPLERS = {"ancestral": ancestral}
