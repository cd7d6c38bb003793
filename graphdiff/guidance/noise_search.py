"""Beam search over the sampler's noise (inference-time scaling by search, e.g. Ma et al. 2025 for images).

Every requested sample keeps ``K`` paths, started from ``K`` independent prior draws (a search over the initial
noise). At each reverse step every path proposes ``M`` children from the pretrained transition with fresh noise (a
search over the per-step noise); each child is scored like SVDD-PM, by the reward of the denoiser's clean
prediction; the ``K`` best of the ``K * M`` children survive (greedy beam). At the end the best path is returned.
``K = 1`` is SVDD-PM with argmax selection; ``M = 1`` keeps ``K`` independent unguided paths and is best-of-``K``
scored on the clean predictions. DeFoG, DiGress and GDSS, as :mod:`graphdiff.guidance.svdd`; cost counted the same
way. PARD searches over blocks (:func:`graphdiff.guidance.svdd_blocks.block_search`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..progress import maybe
from ..samplers.noise import SampleNoise
from ..state import GraphState
from .search import GuidedSamples, counted_inference, score_states
from .steppers import make_stepper
from .steps import search_setup


def noise_search(pipe, n: int, reward, *, K: int = 4, M: int = 4, steps: int | None = None, seed: int | None = None,
                 batch_size: int | None = None, progress: bool = False, **knobs) -> GuidedSamples:
    """Beam search with ``K`` paths and ``M`` children per path and step (see the module docstring).

    Args:
        reward: a callable on decoded samples, higher is better.
        K: paths kept per sample (>= 1). M: children per path and step (>= 1).
        batch_size: samples per chunk (each carries ``K * M`` children); default ``max(1, 1000 // (K * M))``.
        knobs: the sampler's knobs (``time_distortion``, ``eta``, ``omega``, ``cond``, ``guidance``).
    """
    if pipe.process.name == "pard":  # blocks: K paths of M replicas, valued by the clean graph so far
        from .svdd_blocks import block_search

        return block_search(pipe, n, reward, K=K, M=M, steps=steps, seed=seed, batch_size=batch_size,
                            progress=progress, **knobs)
    denoiser = pipe.denoiser
    for name, v in (("K", K), ("M", M)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"noise_search: {name} must be a positive integer, got {v!r}")
    steps, seed, knobs, times, sizes = search_setup(pipe, n, steps, seed, knobs, "noise_search")
    stepper = make_stepper(pipe, steps, times, knobs)
    device = pipe.device
    chunk = int(batch_size or max(1, 1000 // (K * M)))
    states, rewards, decoded = [], [], []
    with counted_inference(denoiser) as counter:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            b = hi - lo
            path_noise = SampleNoise.for_run(seed + 2, lo * K, b * K, device)
            paths = stepper.prior(sizes[lo:hi].repeat_interleave(K), path_noise)
            child_noise = SampleNoise.for_run(seed + 3, lo * K * M, b * K * M, device)
            rep = torch.arange(b * K, device=device).repeat_interleave(M)
            for k in maybe(range(steps), progress, "noise_search"):
                kids = stepper.propose(paths, k, rep, child_noise, path_noise)
                last = k == steps - 1
                clean = stepper.clean(kids, k)
                samples, values = score_states(pipe, clean, reward)
                v = values.reshape(b, K * M)
                keep = 1 if last else K
                top = np.argsort(-v, axis=1, kind="stable")[:, :keep] + (np.arange(b) * K * M)[:, None]
                pick = torch.as_tensor(top.reshape(-1), dtype=torch.long, device=device)
                paths = kids[pick]
                path_noise = path_noise.subset(pick.cpu() // M)  # the survivors' streams drive their corrector
                if last:
                    states.append(clean[pick.cpu()])
                    rewards.append(values[top.reshape(-1)])
                    decoded.extend(samples[i] for i in top.reshape(-1))
    cost = {"network_calls_per_sample": counter.graph_calls / n,
            "reward_calls_per_sample": float(K * M * steps), "paths": K, "children": M}
    return GuidedSamples(state=GraphState.cat(states), rewards=np.concatenate(rewards), cost=cost, samples=decoded)


__all__ = ["noise_search"]
