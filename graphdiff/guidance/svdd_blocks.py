"""SVDD and noise search for PARD: value-based selection at the level of blocks.

PARD (:mod:`graphdiff.samplers.pard`) grows a graph block by block, and after every block the graph so far is
clean: earlier blocks never change again. That makes SVDD's value exact where the per-step searches must guess it
from a noisy state: each requested sample runs ``M`` replicas, each drawing its next block (its size, then the
block's reverse chain) from its own noise stream; after every round the replicas of a sample are scored by the
reward of their graphs so far, one is kept (the argmax, or a draw with weights ``exp(value / alpha)``), and every
replica of that sample continues from it. A replica that stopped competes with its graph as it is, so the search
can also choose to stop. The value is the reward of a prefix (a partial molecule for molecule models), a greedy,
myopic estimate of the reward of the finished graph.

Noise search on PARD is the same search with ``K`` paths: each sample keeps ``K`` graphs, each path runs ``M``
replicas, and after every round the ``K`` best of the ``K * M`` replicas survive (a greedy beam; ``K = 1`` is SVDD's
argmax). Cost per returned sample: ``K * M`` times the unguided network calls (counted on the denoiser) and ``K * M``
reward calls per round.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..samplers.noise import SampleNoise
from ..state import GraphState
from .search import GuidedSamples, choose, counted_inference, score_states


def block_search(pipe, n: int, reward, *, K: int = 1, M: int = 10, alpha: float = 0.0, steps: int | None = None,
                 seed: int | None = None, batch_size: int | None = None, progress: bool = False,
                 **knobs) -> GuidedSamples:
    """The block-level search with ``K`` paths of ``M`` replicas per sample (see the module docstring); ``alpha``
    draws the survivor with weights ``exp(value / alpha)`` instead of the argmax (``K = 1`` only)."""
    from ..samplers import sample as run_sampler

    process = pipe.process
    if process.name != "pard":
        raise ConfigError(f"the block-level search is PARD's, not for process {process.name!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"number of samples must be a positive integer, got {n!r}")
    for name, v in (("K", K), ("M", M)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"block search: {name} must be a positive integer, got {v!r}")
    for key in ("sampler", "generator", "n_nodes", "callback", "num_steps", "value", "select"):
        if knobs.pop(key, None) is not None:
            raise ConfigError(f"search on PARD: {key} is not supported")
    cfg = pipe.config.sample
    steps = int(steps or cfg.steps or 10)
    seed = cfg.seed if seed is None else int(seed)
    knobs = {**{k: v for k, v in cfg.knobs.items() if k in ("max_blocks", "prefix_cache")}, **knobs}
    cond = knobs.pop("cond", None)
    rng = np.random.default_rng(seed)
    width = K * M  # rows per sample: K paths x M replicas
    chunk = int(batch_size or max(1, 256 // width))
    states, rewards, decoded = [], [], []
    scored = [0]
    with counted_inference(pipe.denoiser) as counter:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            groups, rows = hi - lo, (hi - lo) * width
            noise = SampleNoise.for_run(seed, lo * width, rows, pipe.device)
            noise.node_counts(pipe.schema.node_count_probs())  # as pipe.sample draws: M = K = 1 is its own sampler

            def select(r, graphs: GraphState, active, groups=groups):
                _, values = score_states(pipe, process.decode(graphs), reward)
                scored[0] += len(values)
                v = values.reshape(groups, width)
                base = (np.arange(groups) * width)[:, None]
                if K == 1:
                    keep = choose(v, float(alpha), rng)[:, None] + base
                else:  # the K best replicas survive, each continued by M rows
                    keep = np.argsort(-v, axis=1, kind="stable")[:, :K] + base
                return torch.as_tensor(np.repeat(keep.reshape(-1), M))

            c = None if cond is None else torch.as_tensor(cond)[lo:hi].repeat_interleave(width, 0)
            out = run_sampler(process, pipe.denoiser, torch.ones(rows, dtype=torch.long), steps=steps,
                              sampler="block", noise=noise, select=select, progress=progress,
                              **({"cond": c} if c is not None else {}), **knobs)
            samples, values = score_states(pipe, out, reward)
            best = values.reshape(groups, width).argmax(1) + np.arange(groups) * width  # the best final path
            states.append(out[torch.as_tensor(best)])
            rewards.append(values[best])
            decoded.extend(samples[i] for i in best)
    cost = {"network_calls_per_sample": counter.graph_calls / n, "reward_calls_per_sample": (scored[0] + n * width) / n,
            "candidates": M, "paths": K, "alpha": float(alpha),
            "value": "reward of the clean graph so far (PARD blocks)"}
    return GuidedSamples(state=GraphState.cat(states), rewards=np.concatenate(rewards), cost=cost, samples=decoded)


__all__ = ["block_search"]
