"""The Shapes World preference reward: a tiny CLIP trained by ``rats_app.worlds.shapes.train_reward``."""

from __future__ import annotations

import os

from rats_app.errors import RewardUnavailable
from rats_app.rewards.clip_preference import ClipPreferenceReward, load_clip_preference


def load_shapes_reward(path: str | os.PathLike, device: str | None = None) -> ClipPreferenceReward:
    try:
        return load_clip_preference(path, name="shapes", device=device)
    except RewardUnavailable as exc:
        raise RewardUnavailable(f"{exc}; rebuild it with `python -m rats_app.worlds.shapes.train_reward --out {path}`") from None
