"""Samplers: pure functions that run a process's reverse dynamics, and :func:`sample`, the one entry point."""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_kwargs, suggest
from ..errors import ConfigError
from ..state import GraphState
from .noise import SampleNoise, sample_seed
from .pard import BLOCK_SAMPLERS, block_ancestral
from .digress import DISCRETE_SAMPLERS, ancestral
from .defog import FLOW_SAMPLERS, ctmc
from .eqgat_diff import EQGAT_DIFF_SAMPLERS, ancestral_3d
from .semlaflow import FLOW_3D_SAMPLERS, euler_3d
from .edm import EDM_SAMPLERS, euler, heun
from .sde import SDE_SAMPLERS, euler_maruyama, predictor_corrector, probability_flow_heun, s4

# process name -> {sampler name -> function}
SAMPLERS: dict[str, dict] = {"gdss": SDE_SAMPLERS, "digress": DISCRETE_SAMPLERS, "defog": FLOW_SAMPLERS,
                             "pard": BLOCK_SAMPLERS, "eqgat_diff": EQGAT_DIFF_SAMPLERS, "semlaflow": FLOW_3D_SAMPLERS,
                             "edm": EDM_SAMPLERS, "pfgm": EDM_SAMPLERS,
                             "score_sde": SDE_SAMPLERS}


def sampler_fn(process, name: str):
    table = SAMPLERS.get(process.name, {})
    if name not in table:
        raise ConfigError(f"sampler {name!r} is not available for process {process.name!r}{suggest(name, table)}; "
                          f"choose from {sorted(table)}")
    return table[name]


@torch.no_grad()
def sample(process, denoiser, n_nodes: Tensor, *, steps: int, sampler: str, noise: SampleNoise | None = None,
           seed: int = 0, callback=None, progress: bool = False, decode: bool = True, **kwargs) -> GraphState:
    """Run ``sampler`` for ``steps`` steps from the prior of graphs with ``n_nodes`` nodes.

    Args:
        n_nodes: ``[B]`` long, graph sizes.
        noise: per-sample streams (default: samples ``0..B-1`` of ``seed``).
        kwargs: the sampler's own knobs (``snr``, ``scale_eps``, ``predictor``, ``eps``, ...).

    Returns:
        the decoded one-hot :class:`GraphState` (``decode=False``: the process's own final state).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    fn = sampler_fn(process, sampler)
    check_kwargs(fn, kwargs, f"sampler {sampler!r}",
                 skip=("process", "denoiser", "state", "steps", "noise", "callback", "progress"))
    device = next(denoiser.parameters()).device
    if noise is None:
        noise = SampleNoise.for_run(seed, 0, len(n_nodes), device)
    noise.device = device
    was_training = denoiser.training
    denoiser.eval()
    try:
        state = process.prior(n_nodes, generator=noise)
        out = fn(process, denoiser, state, steps=steps, noise=noise, callback=callback, progress=progress, **kwargs)
    finally:
        denoiser.train(was_training)
    return process.decode(out) if decode else out


__all__ = ["sample", "SAMPLERS", "SampleNoise", "sample_seed", "sampler_fn", "euler_maruyama", "predictor_corrector",
           "s4", "probability_flow_heun", "ancestral", "ctmc", "block_ancestral", "ancestral_3d",
           "euler_3d", "heun", "euler", "EDM_SAMPLERS"]
