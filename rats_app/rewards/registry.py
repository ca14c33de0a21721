"""Rewards by name. The trainer and the app take names; each loader says where its weights come from.

| name | model | weights (environment variable, default) |
|---|---|---|
| shapes | Shapes World tiny CLIP preference model (the world's own) | RATS_SHAPES_REWARD, assets/shapes-reward |
| moving-shapes | Moving Shapes tiny video preference model (the world's own) | RATS_MOVING_SHAPES_REWARD, assets/moving-shapes-reward |
| hpsv2 / hpsv2.1 | HPSv2 v2.0 / v2.1 (open_clip ViT-H-14) | RATS_HPSV2_CHECKPOINT / RATS_HPSV2_1_CHECKPOINT, hub xswu/HPSv2 |
| pickscore | PickScore_v1 (CLIP-H) | RATS_PICKSCORE_MODEL, yuvalkirstain/PickScore_v1 (+ RATS_PICKSCORE_PROCESSOR) |
| clip | CLIP score, 100 * max(cos, 0) | RATS_CLIP_MODEL, openai/clip-vit-large-patch14 |
| imagereward | ImageReward v1.0 | see rats_app/rewards/imagereward.py |
"""

from __future__ import annotations

import os
from typing import Callable

from rats_app.errors import RewardUnavailable
from rats_app.rewards.base import CLIP_NORMALIZATION, Reward


def _hpsv2(version: str) -> Callable[[str | None], Reward]:
    def load(device: str | None) -> Reward:
        from rats_app.rewards.hpsv2 import load_hpsv2

        return load_hpsv2(version, device=device)
    return load


def _pickscore(device: str | None) -> Reward:
    from rats_app.rewards.clip_preference import load_clip_preference
    from rats_app.rewards.sources import resolve_dir

    model = resolve_dir("pickscore", os.environ.get("RATS_PICKSCORE_MODEL", "yuvalkirstain/PickScore_v1"),
                        "RATS_PICKSCORE_MODEL")
    processor = os.environ.get("RATS_PICKSCORE_PROCESSOR")
    tokenizer = resolve_dir("pickscore", processor, "RATS_PICKSCORE_PROCESSOR") if processor else None
    return load_clip_preference(model, "pickscore", device=device, tokenizer_path=tokenizer)


def _clip(device: str | None) -> Reward:
    from rats_app.rewards.clip_preference import load_clip_preference
    from rats_app.rewards.sources import resolve_dir

    model = resolve_dir("clip", os.environ.get("RATS_CLIP_MODEL", "openai/clip-vit-large-patch14"), "RATS_CLIP_MODEL")
    return load_clip_preference(model, "clip", device=device, use_logit_scale=False, clamp_at_zero=True)


def _imagereward(device: str | None) -> Reward:
    from rats_app.rewards.imagereward import load_imagereward

    return load_imagereward(device=device)


BUILT_IN: dict[str, Callable[[str | None], Reward]] = {
    "hpsv2": _hpsv2("v2.0"), "hpsv2.1": _hpsv2("v2.1"), "pickscore": _pickscore, "clip": _clip,
    "imagereward": _imagereward,
}


def loaders() -> dict[str, Callable[[str | None], Reward]]:
    """Every reward by name: each embedded world's own first, then the built-in ones."""
    from rats_app.worlds import worlds

    found = {}
    for world in worlds().values():
        found.update(world.rewards())
    return {**found, **BUILT_IN}


def reward_media(name: str) -> str:
    """What a reward scores: "video" for a video world's own reward, else "image" (an image reward
    scores clips frame by frame)."""
    from rats_app.worlds import worlds

    return next((w.media for w in worlds().values() if name in w.rewards()), "image")


def rewards_for(media: str) -> list[str]:
    """The rewards that can score this media: images take image rewards; clips take video rewards
    and image rewards (frame-wise)."""
    return [n for n in available_rewards() if media == "video" or reward_media(n) == "image"]


_CACHE: dict[tuple[str, str | None], Reward] = {}


def available_rewards() -> list[str]:
    return list(loaders())


def load_reward(name: str, device: str | None = None, cache: bool = True) -> Reward:
    """Load (once) a reward by name; RewardUnavailable says what is missing and how to supply it."""
    known = loaders()
    if name not in known:
        raise RewardUnavailable(f"unknown reward {name!r}; known: {', '.join(known)}")
    key = (name, device)
    if cache and key in _CACHE:
        return _CACHE[key]
    reward = known[name](device)
    if cache:
        _CACHE[key] = reward
    return reward


def reward_status(names: list[str] | None = None, device: str | None = None) -> dict[str, str]:
    """name -> "available" or "unavailable: why" (loads what it can)."""
    status = {}
    for name in names or available_rewards():
        try:
            load_reward(name, device)
            status[name] = "available"
        except RewardUnavailable as exc:
            status[name] = f"unavailable: {exc}"
    return status


__all__ = ["CLIP_NORMALIZATION", "available_rewards", "load_reward", "reward_status"]
