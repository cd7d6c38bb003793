"""Guidance: rewards and guides that steer sampling toward a property without retraining.

``pipe.sample(n, guide="best_of_n", reward="qed", guide_options={"N": 10})`` (``graphdiff sample --guide best_of_n
--reward qed --candidates 10``); every guided run reports its cost per sample in ``pipe.last_guidance.cost``.
"""

from .rewards import REWARDS, Reward, RewardError, get_reward, parse_reward_args
from .guides import GUIDES, run_guide
from .faros import faros
from .minority import minority_guidance, minority_scores
from .noise_search import noise_search
from .regressor import Regressor, regressor_guidance, train_regressor
from .search import CallCounter, GuidedSamples, best_of_n
from .svdd import svdd

__all__ = ["REWARDS", "Reward", "RewardError", "get_reward", "parse_reward_args", "GUIDES", "CallCounter",
           "GuidedSamples", "best_of_n", "run_guide", "svdd", "noise_search",
           "Regressor", "regressor_guidance", "train_regressor",
           "minority_guidance", "minority_scores", "faros"]
