"""CTMC sampling of DeFoG (discrete flow matching on node and edge categories), as a pure function.

Qin et al., ICML 2025, Alg. 2 / Campbell et al., ICML 2024: Euler steps of the continuous-time Markov chain from
``t = 0`` (the limit distribution) to ``t = 1`` (data) on the grid ``t_k = f(k / steps)`` of a time distortion
``f``. At each step the denoiser gives ``p_theta(x_1 | x_t)``; the rate of a jump ``x_t -> j`` is the conditional
rate ``R* + eta R^DB + omega R^TG`` averaged over that prediction (an exact sum over the few categories, not a
single draw of ``x_1``); the jump probability is ``clip(rate * dt, 0, 1)`` and the stay probability what is left.
Nodes and unordered pairs are drawn independently (edges symmetric) from per-sample uniforms.

The last step, ending at ``t = 1``, *samples* ``x_1`` from ``p_theta(x_1 | x_t)`` restricted to the categories that
can produce ``x_t`` (the Euler rate diverges as ``1 / (1 - t)`` there); it takes no argmax. ``steps = 1`` is
therefore one-shot sampling from the denoiser at ``t = 0``. ``callback(k, t, state)`` is called after each step
with ``t = t_{k+1}``.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..progress import maybe
from ..state import GraphState
from .noise import SampleNoise


@torch.no_grad()
def ctmc(process, denoiser, state: GraphState, *, steps: int, noise: SampleNoise, callback=None,
         progress: bool = False, cond=None, guidance: float = 0.0, time_distortion: str = "polydec",
         eta: float = 0.0, omega: float = 0.0) -> GraphState:
    """Run DeFoG's CTMC from the prior ``state`` at ``t = 0`` to ``t = 1`` in ``steps`` Euler steps.

    Args:
        process: a :class:`~graphdiff.processes.defog.DiscreteFlowMatching`.
        denoiser: ``denoiser(state_t, t, cond) -> GraphState`` of clean-category logits.
        state: the prior state (``process.prior``).
        steps: number of Euler steps (>= 1).
        noise: per-sample streams.
        cond: ``[B, Fy]`` graph-level conditions (``None``: unconditional).
        guidance: classifier-free guidance weight ``w``.
        time_distortion: the sampling grid ``t_k = f(k / steps)``: ``"identity"``, ``"polyinc"``, ``"polydec"``,
            ``"cos"``, ``"revcos"``.
        eta: weight of the detailed-balance (stochasticity) rate, >= 0.
        omega: weight of the target-guidance rate, >= 0 (biases towards the predicted ``x_1``).

    Returns:
        the final process state (one-hot; ``process.decode`` gives the data state).

    Shapes:
        state: ``x [B, N, Kx(+1)]``, ``e [B, N, N, Ke]``, ``mask [B, N]``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    if not float(eta) >= 0:
        raise ConfigError(f"sample.eta must be >= 0, got {eta}")
    if not float(omega) >= 0:
        raise ConfigError(f"sample.omega must be >= 0, got {omega}")
    grid = process.time_grid(steps, time_distortion)
    b = state.batch_size
    log_px = None
    for k in maybe(range(steps), progress, "defog"):
        t, t_next = grid[k], grid[k + 1]
        tt = torch.full((b,), t, device=state.device, dtype=torch.float32)
        log_px, log_pe = process.predict(denoiser, state, tt, cond=cond, guidance=guidance)
        if k == steps - 1:
            px, pe = process.final_probs(log_px.exp(), log_pe.exp(), state, t)
        else:
            # DeFoG Sec. 3: Euler step with R_t = E_{x_1 ~ p_theta}[R_t(x_t, . | x_1)]
            px, pe = process.step_probs(log_px.exp(), log_pe.exp(), state, t, t_next - t, eta=eta, omega=omega)
        state = process.sample_state(px, pe, state.mask, noise, state.x.dtype)
        if callback is not None:
            callback(k, t_next, state)
    return process.fill_masks(state, log_px)


FLOW_SAMPLERS = {"ctmc": ctmc}
