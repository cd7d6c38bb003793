"""Guidance: rewards (and, later, guides) that steer sampling toward a property without retraining."""

from .rewards import REWARDS, Reward, RewardError, get_reward, parse_reward_args

__all__ = ["REWARDS", "Reward", "RewardError", "get_reward", "parse_reward_args"]
