"""SVDD for PARD: value-based selection at the level of blocks.

PARD (:mod:`graphdiff.samplers.pard`) grows a graph block by block, and after every block the graph so far is
clean: earlier blocks never change again. That makes SVDD's value exact where the per-step searches must guess it
from a noisy state: each requested sample runs ``M`` replicas, each drawing its next block (its size, then the
block's reverse chain) from its own noise stream; after every round the replicas of a sample are scored by the
reward of their graphs so far, one is kept (the argmax, or a draw with weights ``exp(value / alpha)``), and every
replica of that sample continues from it. A replica that stopped competes with its graph as it is, so the search
can also choose to stop. The value is the reward of a prefix (a partial molecule for molecule models), a greedy,
myopic estimate of the reward of the finished graph.

Cost per returned sample: ``M`` times the unguided network calls (counted on the denoiser) and ``M`` reward calls
per round.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..samplers.noise import SampleNoise
from ..state import GraphState
from .search import GuidedSamples, counted_inference, score_states


def svdd_blocks(pipe, n: int, reward, *, M: int = 10, alpha: float = 0.0, steps: int | None = None,
                seed: int | None = None, batch_size: int | None = None, progress: bool = False,
                **knobs) -> GuidedSamples:
    """SVDD over PARD's blocks for ``n`` samples with ``M`` replicas each (see the module docstring); ``knobs``: the
    block sampler's own (``cond``, ``guidance``, ``max_blocks``, ``prefix_cache``)."""
    from ..samplers import sample as run_sampler
    from .svdd import _choose

    process = pipe.process
    if process.name != "pard":
        raise ConfigError(f"svdd_blocks is PARD's block-level SVDD, not for process {process.name!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"number of samples must be a positive integer, got {n!r}")
    for key in ("sampler", "generator", "n_nodes", "callback", "num_steps", "value", "select"):
        if knobs.pop(key, None) is not None:
            raise ConfigError(f"svdd (PARD): {key} is not supported")
    cfg = pipe.config.sample
    steps = int(steps or cfg.steps or 10)
    seed = cfg.seed if seed is None else int(seed)
    knobs = {**{k: v for k, v in cfg.knobs.items() if k in ("max_blocks", "prefix_cache")}, **knobs}
    cond = knobs.pop("cond", None)
    rng = np.random.default_rng(seed)
    chunk = int(batch_size or max(1, 256 // M))
    states, rewards, decoded = [], [], []
    scored = [0]
    with counted_inference(pipe.denoiser) as counter:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            rows = (hi - lo) * M
            noise = SampleNoise.for_run(seed, lo * M, rows, pipe.device)
            noise.node_counts(pipe.schema.node_count_probs())  # as pipe.sample draws: M = 1 is its own sampler

            def select(r, graphs: GraphState, active, groups=hi - lo):
                _, values = score_states(pipe, process.decode(graphs), reward)
                scored[0] += len(values)
                pick = _choose(values.reshape(groups, M), float(alpha), rng) + np.arange(groups) * M
                return torch.as_tensor(np.repeat(pick, M))

            c = None if cond is None else torch.as_tensor(cond)[lo:hi].repeat_interleave(M, 0)
            out = run_sampler(process, pipe.denoiser, torch.ones(rows, dtype=torch.long), steps=steps,
                              sampler="block", noise=noise, select=select, progress=progress,
                              **({"cond": c} if c is not None else {}), **knobs)
            first = torch.arange(hi - lo) * M  # every replica of a sample ends as the kept one
            state = out[first]
            samples, values = score_states(pipe, state, reward)
            states.append(state)
            rewards.append(values)
            decoded.extend(samples)
    cost = {"network_calls_per_sample": counter.graph_calls / n, "reward_calls_per_sample": (scored[0] + n) / n,
            "candidates": M, "alpha": float(alpha), "value": "reward of the clean graph so far (PARD blocks)"}
    return GuidedSamples(state=GraphState.cat(states), rewards=np.concatenate(rewards), cost=cost, samples=decoded)


__all__ = ["svdd_blocks"]
