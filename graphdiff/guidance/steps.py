"""What the per-step guides share (SVDD, noise search, regressor guidance): one reverse step of the discrete
processes as next-state probabilities, the denoiser's clean guess, and the checked set-up of a guided run (for GDSS
too; its steps are :class:`graphdiff.guidance.steppers.SDEStepper`'s)."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..samplers.noise import SampleNoise
from ..state import GraphState

PROCESSES = ("defog", "digress", "gdss", "eqgat_diff")
SAMPLER_KNOBS = {"defog": ("time_distortion", "eta", "omega"), "digress": (),
                 "gdss": ("predictor", "snr", "scale_eps", "n_corrector", "eps"), "eqgat_diff": ()}


def _transition(process, denoiser, state: GraphState, k: int, times, steps: int, knobs: dict):
    """Next-state probabilities of one reverse step and the clean prediction it used."""
    b = state.batch_size
    if process.name == "defog":
        t, t_next = times[k], times[k + 1]
        tt = torch.full((b,), t, device=state.device, dtype=torch.float32)
        log_px, log_pe = process.predict(denoiser, state, tt, cond=knobs.get("cond"),
                                         guidance=knobs.get("guidance", 0.0))
        if k == steps - 1:
            return process.final_probs(log_px.exp(), log_pe.exp(), state, t), log_px, t_next
        px, pe = process.step_probs(log_px.exp(), log_pe.exp(), state, t, t_next - t, eta=knobs.get("eta", 0.0),
                                    omega=knobs.get("omega", 0.0))
        return (px, pe), log_px, t_next
    t, s = times[k], times[k + 1]
    tt = torch.full((b,), t / process.T, device=state.device, dtype=torch.float32)
    log_px, log_pe = process.predict(denoiser, state, tt, cond=knobs.get("cond"), guidance=knobs.get("guidance", 0.0))
    px, pe = process.reverse_probs(log_px.exp(), log_pe.exp(), state, t, s)
    return (px, pe), log_px, s / process.T


def _clean_guess(process, denoiser, state: GraphState, t_model: float, knobs: dict) -> GraphState:
    """The argmax of the denoiser's clean prediction at ``state`` (SVDD-PM's value input), decoded."""
    tt = torch.full((state.batch_size,), t_model, device=state.device, dtype=torch.float32)
    log_px, log_pe = process.predict(denoiser, state, tt, cond=knobs.get("cond"), guidance=knobs.get("guidance", 0.0))
    guess = process.onehot(log_px.argmax(-1), log_pe.argmax(-1), state.mask, state.x.dtype)
    return process.decode(guess)


def reweighted(p: torch.Tensor, grad: torch.Tensor, scale: float) -> torch.Tensor:
    """DiGress's first-order guidance of next-state probabilities: ``p * exp(-scale * grad)`` renormalised over the
    last axis; impossible categories stay impossible."""
    logp = torch.where(p > 0, p.clamp(min=1e-300).log() - scale * grad.to(p.dtype), torch.full_like(p, -torch.inf))
    out = torch.softmax(logp, -1)
    return torch.where(torch.isfinite(logp).any(-1, keepdim=True), out, p)


def guidance_gradients(reg, state: GraphState, t: torch.Tensor, goal, sign: float):
    """The gradients of regressor guidance's loss (``(g - goal)^2``, or ``sign * g`` without a goal, ``g`` the
    regressor ``reg``'s normalised prediction) at ``state``: ``dL/dx``, ``dL/de`` (symmetrised: a pair's two entries
    are one variable) and ``dL/dpos`` (``None`` for a state without coordinates); zeros where ``g`` does not read."""
    with torch.enable_grad():
        x = state.x.detach().float().requires_grad_(True)
        e = state.e.detach().float().requires_grad_(True)
        leaves = [x, e]
        if state.pos is not None:
            leaves.append(state.pos.detach().float().requires_grad_(True))
        g = reg.normalised(GraphState(x=x, e=e, mask=state.mask, pos=leaves[2] if len(leaves) > 2 else None), t)
        loss = (g - goal) ** 2 if goal is not None else sign * g
        grads = torch.autograd.grad(loss.sum(), leaves, allow_unused=True)
    gx, ge, *gp = (torch.zeros_like(v) if d is None else d for v, d in zip(leaves, grads))
    return gx, ge + ge.transpose(1, 2), gp[0] if gp else None


def search_setup(pipe, n: int, steps, seed, knobs: dict, who: str):
    """What the per-step searches share: checked ``n`` and options, the model's step count, seed and sampler
    knobs, the time grid, and the molecule sizes drawn as ``pipe.sample`` draws them (seed for seed)."""
    process = pipe.process
    if process.name not in PROCESSES:
        raise ConfigError(f"{who} is implemented for the processes {PROCESSES}, not {process.name!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"number of samples must be a positive integer, got {n!r}")
    for key in ("sampler", "generator", "n_nodes", "callback", "num_steps"):  # pipe.sample's, not the search's
        if knobs.pop(key, None) is not None:
            raise ConfigError(f"{who}: {key} is not supported (it runs the model's own sampler, sizes drawn)")
    allowed = set(SAMPLER_KNOBS[process.name]) | {"cond", "guidance", "batch_size", "progress"}
    unknown = sorted(set(knobs) - allowed)
    if unknown:
        from ..checks import suggest

        raise ConfigError(f"{who}: unknown option {unknown[0]!r}{suggest(unknown[0], allowed)} (neither one of "
                          f"{who}'s own options nor a {process.name} sampler knob: "
                          f"{', '.join(SAMPLER_KNOBS[process.name]) or 'none'})")
    cfg = pipe.config.sample
    steps = int(steps or cfg.steps or 100)
    seed = cfg.seed if seed is None else int(seed)
    knobs = {**{k: v for k, v in cfg.knobs.items() if k in SAMPLER_KNOBS[process.name]}, **knobs}
    if process.name == "gdss":
        from ..samplers.sde import _grid

        times = [float(t) for t in _grid(steps, float(knobs.pop("eps", 1e-4)), "cpu")]
    elif process.name == "defog":
        times = process.time_grid(steps, knobs.get("time_distortion", "polydec"))
    else:
        times = process.timesteps(steps)
    sizes = SampleNoise.for_run(seed, 0, n, pipe.device).node_counts(pipe.schema.node_count_probs())
    return steps, seed, knobs, times, sizes


__all__ = ["PROCESSES", "guidance_gradients", "reweighted", "search_setup"]
