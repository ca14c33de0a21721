"""Rewards: ``score(images, prompts) -> tensor[B]``, differentiable with respect to the images."""

from rats_app.errors import RewardUnavailable
from rats_app.rewards.base import Reward

__all__ = ["Reward", "RewardUnavailable"]
