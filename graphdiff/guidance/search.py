"""Inference-time search over the sampler's noise: best-of-N, with the cost accounting every guide reports.

Best-of-N (the baseline of the inference-time-scaling and SVDD papers): draw ``N`` candidates per requested sample,
each from its own noise stream, score them with the reward, keep the best. Candidate ``j`` of sample ``i`` is
sample ``i * N + j`` of the unguided run with the same seed, so a best-of-N run contains exactly the unguided
samples it chose from. Cost per returned sample: ``N`` times the unguided network calls and ``N`` reward calls.

:class:`CallCounter` counts the denoiser's forward calls per graph (a forward pre-hook), so that the reported cost is
what ran, classifier-free guidance's second call included.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from ..state import GraphState


class CallCounter:
    """Count the graphs a denoiser is called on while the context is open (``graph_calls``)."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.graph_calls = 0
        self._handle = None

    def _hook(self, module, args):
        state = args[0] if args else None
        self.graph_calls += state.batch_size if isinstance(state, GraphState) else 1

    def __enter__(self) -> "CallCounter":
        self._handle = self.module.register_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


@contextmanager
def counted_inference(denoiser: torch.nn.Module):
    """Eval mode, no gradients and a :class:`CallCounter` for the duration (the mode is restored after): the frame
    of the per-step searches."""
    was_training = denoiser.training
    denoiser.eval()
    try:
        with CallCounter(denoiser) as counter, torch.no_grad():
            yield counter
    finally:
        denoiser.train(was_training)


@dataclass
class GuidedSamples:
    """What a guide returns: the chosen samples, their rewards and the cost per returned sample."""

    state: GraphState
    rewards: np.ndarray
    cost: dict = field(default_factory=dict)
    samples: list | None = None  # the decoded samples the reward scored (RDKit molecules or networkx graphs)


def score_states(pipe, state: GraphState, reward) -> tuple[list, np.ndarray]:
    """Decode ``state`` for the reward (RDKit molecules for molecule models, networkx graphs otherwise) and score
    it; returns the decoded samples and a float64 array with one reward per sample (never NaN)."""
    samples = pipe._convert(state, "rdkit" if pipe.schema.kind == "molecule" else "networkx")
    values = np.asarray(reward(samples), dtype=np.float64)
    name = getattr(reward, "name", getattr(reward, "__name__", "reward"))
    if values.shape != (len(samples),):
        raise ConfigError(f"reward {name!r} returned shape {values.shape} for {len(samples)} samples")
    bad = np.flatnonzero(np.isnan(values))  # -inf is a valid "worst" (an unbounded reward's invalid_value)
    if bad.size:
        raise ConfigError(f"reward {name!r} returned {values[bad[0]]} for sample {int(bad[0])}")
    return samples, values


def reward_or_prediction(pipe, state: GraphState, reward, reg, t_clean: float) -> tuple[list | None, np.ndarray]:
    """The returned samples' values: the reward's (with the decoded samples) when one is given, else the
    regressor ``reg``'s prediction on each clean sample at network time ``t_clean`` (and no decoded samples)."""
    if reward is not None:
        return score_states(pipe, state, reward)
    clean = pipe.process.encode(state)
    return None, np.concatenate([reg.predict(clean[i:i + 256], t_clean) for i in range(0, len(clean), 256)])


def choose(values: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Per row of ``values [n, M]``: the argmax (``alpha = 0``) or a draw with weights ``exp(v / alpha)``."""
    if alpha == 0:
        return values.argmax(1)
    v = values / alpha
    finite = np.isfinite(v)
    top = np.where(finite.any(1), np.where(finite, v, -np.inf).max(1), 0.0)
    w = np.where(finite, np.exp(v - top[:, None]), 0.0)
    w[w.sum(1) == 0] = 1.0  # every candidate invalid: uniform
    w /= w.sum(1, keepdims=True)
    return np.array([rng.choice(w.shape[1], p=row) for row in w])


def best_of_n(pipe, n: int, reward, *, N: int = 10, steps: int | None = None, seed: int | None = None,
              batch_size: int | None = None, progress: bool = False, **sample_kwargs) -> GuidedSamples:
    """Best-of-``N`` sampling: ``n`` samples, each the highest-reward of ``N`` independent candidates.

    Args:
        pipe: a :class:`~graphdiff.pipeline.GraphDiffusionPipeline`.
        reward: a callable on a list of decoded samples returning one number per sample (see
            :mod:`graphdiff.guidance.rewards`), higher is better (``pipe.sample(guide=...)`` hands a lower-is-better
            :class:`~graphdiff.guidance.rewards.Reward` over negated).
        N: candidates per sample (>= 1; 1 is the unguided sampler).
        steps, seed, batch_size, sample_kwargs: passed to ``pipe.sample``.

    Returns:
        :class:`GuidedSamples` with ``cost = {"network_calls_per_sample", "reward_calls_per_sample", "candidates"}``.
    """
    if isinstance(N, bool) or not isinstance(N, int) or N < 1:
        raise ConfigError(f"best_of_n: N must be a positive integer, got {N!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"number of samples must be a positive integer, got {n!r}")
    sizes = sample_kwargs.get("n_nodes")
    if sizes is not None and not isinstance(sizes, (int, np.integer)):  # one size per sample: each candidate's
        sample_kwargs["n_nodes"] = [int(v) for v in sizes for _ in range(N)]
    try:
        with CallCounter(pipe.denoiser) as counter:
            cands = pipe.sample(n * N, steps=steps, seed=seed, batch_size=batch_size, progress=progress,
                                output="state", **sample_kwargs)
    except ConfigError as exc:
        if "unknown key" not in str(exc):
            raise
        raise ConfigError(f"best_of_n takes N, steps, seed and batch_size and passes the rest to the sampler, "
                          f"which refused one: {exc}") from None
    decoded, values = score_states(pipe, cands, reward)
    best = values.reshape(n, N).argmax(1) + np.arange(n) * N
    idx = torch.as_tensor(best, dtype=torch.long)
    cost = {"network_calls_per_sample": counter.graph_calls / n, "reward_calls_per_sample": float(N),
            "candidates": N}
    return GuidedSamples(state=cands[idx], rewards=values[best], cost=cost, samples=[decoded[i] for i in best])


__all__ = ["CallCounter", "counted_inference", "GuidedSamples", "score_states", "reward_or_prediction", "choose",
           "best_of_n"]
