"""The guides by name: what ``pipe.sample(n, guide=NAME, reward=...)`` and ``graphdiff sample --guide`` run."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .faros import faros
from .minority import minority_guidance
from .noise_search import noise_search
from .regressor import regressor_guidance
from .search import GuidedSamples, best_of_n
from .self_guidance import self_guidance
from .svdd import svdd

GUIDES = {"best_of_n": best_of_n, "svdd": svdd, "noise_search": noise_search, "regressor": regressor_guidance,
          "minority": minority_guidance, "self": self_guidance, "faros": faros}
# guides that steer without a reward (one scores their samples when given; "self", TSDiff's observation
# self-guidance, steers toward observed values; "faros" switches a sensitive node attribute)
REWARD_OPTIONAL = {"regressor", "minority", "self", "faros"}


def run_guide(pipe, n: int, guide: str, reward, **kwargs) -> GuidedSamples:
    """Run the guide named ``guide`` (see :data:`GUIDES`) with ``reward`` (a callable, or a reward name /
    ``module:function`` resolved by :func:`graphdiff.guidance.rewards.get_reward`)."""
    from ..checks import suggest

    if guide not in GUIDES:
        raise ConfigError(f"guide {guide!r} is unknown{suggest(guide, GUIDES)}; known: {sorted(GUIDES)}")
    if reward is None and guide not in REWARD_OPTIONAL:
        raise ConfigError(f"guide {guide!r} needs a reward (reward='qed', a module:function or a callable)")
    if reward is not None and not callable(reward):
        from .rewards import get_reward

        reward = get_reward(reward)
    from .rewards import Reward, maximised

    if isinstance(reward, Reward) and not reward.higher_is_better:  # the searches maximise: they see -reward
        flipped = maximised(reward)
        res = GUIDES[guide](pipe, n, flipped, **kwargs)
        reward.n_scored += flipped.n_scored
        res.rewards = -np.asarray(res.rewards, dtype=np.float64)  # reported in the reward's own units
        return res
    return GUIDES[guide](pipe, n, reward, **kwargs)


__all__ = ["GUIDES", "run_guide"]
