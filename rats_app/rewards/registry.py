"""Rewards by name. The trainer and the app take names; loaders live in their own modules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from rats_app.rewards.base import Reward, RewardUnavailable

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"


def _shapes(device: str | None) -> Reward:
    """The shipped world reward, or the directory named by RATS_SHAPES_REWARD."""
    from rats_app.rewards.shapes import load_shapes_reward

    return load_shapes_reward(os.environ.get("RATS_SHAPES_REWARD", ASSETS / "shapes-reward"), device=device)


LOADERS: dict[str, Callable[[str | None], Reward]] = {"shapes": _shapes}


def available_rewards() -> list[str]:
    return sorted(LOADERS)


def load_reward(name: str, device: str | None = None) -> Reward:
    if name not in LOADERS:
        raise RewardUnavailable(f"unknown reward {name!r}; known: {', '.join(available_rewards())}")
    return LOADERS[name](device)
