"""The guides by name: what ``pipe.sample(n, guide=NAME, reward=...)`` and ``graphdiff sample --guide`` run."""

from __future__ import annotations

from ..errors import ConfigError
from .noise_search import noise_search
from .search import GuidedSamples, best_of_n
from .self_guidance import self_guidance
from .svdd import svdd

# "self" (observation self-guidance, TSDiff) steers toward observed values and takes no reward
GUIDES = {"best_of_n": best_of_n, "svdd": svdd, "noise_search": noise_search, "self": self_guidance}


def run_guide(pipe, n: int, guide: str, reward, **kwargs) -> GuidedSamples:
    """Run the guide named ``guide`` (see :data:`GUIDES`) with ``reward`` (a callable, or a reward name /
    ``module:function`` resolved by :func:`graphdiff.guidance.rewards.get_reward`)."""
    from ..checks import suggest

    if guide not in GUIDES:
        raise ConfigError(f"guide {guide!r} is unknown{suggest(guide, GUIDES)}; known: {sorted(GUIDES)}")
    if not getattr(GUIDES[guide], "needs_reward", True):
        return GUIDES[guide](pipe, n, reward, **kwargs)
    if reward is None:
        raise ConfigError(f"guide {guide!r} needs a reward (reward='qed', a module:function or a callable)")
    if not callable(reward):
        from .rewards import get_reward

        reward = get_reward(reward)
    return GUIDES[guide](pipe, n, reward, **kwargs)


__all__ = ["GUIDES", "run_guide"]
