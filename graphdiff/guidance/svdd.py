"""SVDD: soft value-based decoding, derivative-free guidance by per-step candidate selection.

Li et al., "Derivative-Free Guidance in Continuous and Discrete Diffusion Models with Soft Value-Based Decoding",
2024. At every reverse step each sample proposes ``M`` candidate next states from the pretrained transition, scores
each by a value, and keeps one: the argmax (``alpha = 0``) or a draw with weights ``exp(value / alpha)``. The value
here is SVDD-PM's: the reward of the denoiser's clean prediction at the candidate (its argmax decoded), so any
non-differentiable reward works and nothing is trained. At the last step the candidates are clean samples and are
scored directly.

PARD runs the block-level variant of :mod:`graphdiff.guidance.svdd_blocks` (the value: the reward of the clean
graph so far). The per-step search is implemented for DeFoG (the CTMC of :mod:`graphdiff.samplers.defog`),
DiGress (the ancestral chain of :mod:`graphdiff.samplers.digress`), EQGAT-diff (3D,
:mod:`graphdiff.samplers.eqgat_diff`) and GDSS (the predictor-corrector sampler of :mod:`graphdiff.samplers.sde`,
the candidates differing in the predictor's noise, the value from Tweedie's clean estimate; see
:mod:`graphdiff.guidance.steppers`). Cost per returned sample: ``steps`` transition calls (GDSS: times one plus the
corrector steps) plus ``M`` value calls per step but the last, and ``M`` reward calls per step (at GDSS's last step
the candidates share the noise-free mean, so its selection changes nothing); network calls are counted.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..progress import maybe
from ..samplers.noise import SampleNoise
from ..state import GraphState
from .search import GuidedSamples, choose, counted_inference, score_states
from .steppers import make_stepper
from .steps import PROCESSES, search_setup

def svdd(pipe, n: int, reward, *, M: int = 10, alpha: float = 0.0, steps: int | None = None,
         seed: int | None = None, batch_size: int | None = None, progress: bool = False, value=None,
         **knobs) -> GuidedSamples:
    """SVDD-PM sampling of ``n`` samples with ``M`` candidates per step (see the module docstring).

    Args:
        reward: a callable on decoded samples (see :mod:`graphdiff.guidance.rewards`), higher is better.
        M: candidates per step (>= 1; 1 is the unguided sampler).
        alpha: temperature of the selection (0: argmax; > 0: draws with weights ``exp(value / alpha)``).
        steps, seed: as ``pipe.sample`` (default: the model's).
        batch_size: samples per chunk (each carries ``M`` candidates); default ``max(1, 1000 // M)``.
        value: ``None`` for SVDD-PM (the reward of the clean prediction); SVDD-MC: a value network, i.e. a
            :class:`~graphdiff.guidance.regressor.Regressor` (or its folder) trained on the process's noisy states
            to predict the reward (``graphdiff train-regressor --target REWARD``); it scores the candidates of every
            step but the last (no denoiser call, no reward call), the reward scores the last.
        knobs: the sampler's own knobs (``time_distortion``, ``eta``, ``omega``, ``cond``, ``guidance``).
    """
    denoiser = pipe.denoiser
    if isinstance(M, bool) or not isinstance(M, int) or M < 1:
        raise ConfigError(f"svdd: M must be a positive integer, got {M!r}")
    if not float(alpha) >= 0:
        raise ConfigError(f"svdd: alpha must be >= 0 (0 = argmax), got {alpha!r}")
    if pipe.process.name == "pard":  # blocks: the value is the reward of the clean graph so far
        if value is not None:
            raise ConfigError("svdd: PARD's block-level search scores clean prefixes with the reward; it takes no "
                              "value network")
        from .svdd_blocks import block_search

        return block_search(pipe, n, reward, K=1, M=M, alpha=alpha, steps=steps, seed=seed, batch_size=batch_size,
                            progress=progress, **knobs)
    steps, seed, knobs, times, _ = search_setup(pipe, n, steps, seed, knobs, "svdd")
    stepper = make_stepper(pipe, steps, times, knobs)
    if value is not None:
        from .regressor import PROCESSES as VALUE_PROCESSES
        from .regressor import Regressor

        if pipe.process.name not in VALUE_PROCESSES:
            raise ConfigError(f"svdd: a value network (SVDD-MC) is implemented for the processes {VALUE_PROCESSES}, "
                              f"not {pipe.process.name!r}; use the reward of the clean prediction (value=None)")

        value = value if isinstance(value, Regressor) else Regressor.load(value)
        value.check(pipe)
        value.net.to(pipe.device).eval()
    device = pipe.device
    noise = SampleNoise.for_run(seed, 0, n, device)
    sizes = noise.node_counts(pipe.schema.node_count_probs())  # the prior's streams start after the size draw
    rng = np.random.default_rng(seed)
    chunk = int(batch_size or max(1, 1000 // M))
    states, rewards, decoded = [], [], []
    with counted_inference(denoiser) as counter:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            sub = noise.subset(range(lo, hi))
            cand_noise = SampleNoise.for_run(seed + 1, lo * M, (hi - lo) * M, device)
            state = stepper.prior(sizes[lo:hi], sub)
            rep = torch.arange(hi - lo, device=device).repeat_interleave(M)
            for k in maybe(range(steps), progress, "svdd"):
                cands = stepper.propose(state, k, rep, cand_noise, sub)
                last = k == steps - 1
                if value is not None and not last:  # SVDD-MC: the value network on the noisy candidates
                    values = value.predict(cands, stepper.value_time(k))
                    samples = None
                else:
                    clean = stepper.clean(cands, k)
                    samples, values = score_states(pipe, clean, reward)
                pick = choose(values.reshape(hi - lo, M), float(alpha), rng) + np.arange(hi - lo) * M
                state = cands[torch.as_tensor(pick, dtype=torch.long, device=device)]
                if last:
                    states.append(clean[torch.as_tensor(pick, dtype=torch.long)])
                    rewards.append(values[pick])
                    decoded.extend(samples[i] for i in pick)
    cost = {"network_calls_per_sample": counter.graph_calls / n,
            "reward_calls_per_sample": float(M * (steps if value is None else 1)),
            "candidates": M, "alpha": float(alpha), "value": "reward of the clean prediction (PM)" if value is None
            else f"value network {value.target!r} (MC)"}
    if value is not None:
        cost["regressor_calls_per_sample"] = float(M * (steps - 1))
    return GuidedSamples(state=GraphState.cat(states), rewards=np.concatenate(rewards), cost=cost, samples=decoded)


__all__ = ["svdd", "PROCESSES"]
