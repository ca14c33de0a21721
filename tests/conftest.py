"""Shared fixtures: tiny random models built in the test session (nothing downloaded)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def tiny_world_model_dir(tmp_path_factory):
    """A randomly initialised Shapes World FluxPipeline saved like the shipped one."""
    import torch

    from rats_app.io import write_json
    from rats_app.worlds.shapes.model import CALL_DEFAULTS, WorldModelConfig, build_world_pipeline
    from rats_app.worlds.shapes.prompts import vocabulary

    torch.manual_seed(0)
    pipe = build_world_pipeline(WorldModelConfig(double_layers=1, single_layers=1), seed=0)
    path = tmp_path_factory.mktemp("tiny-world") / "model"
    pipe.save_pretrained(path)
    write_json(path / "call_defaults.json", CALL_DEFAULTS)
    write_json(path / "world.json", {"vocabulary": vocabulary()})
    return path


@pytest.fixture(scope="session")
def tiny_world_reward():
    """A randomly initialised world reward (tiny CLIP), built in the test."""
    from rats_app.rewards.clip_preference import ClipPreferenceReward
    from rats_app.worlds.shapes.model import build_clip_tokenizer
    from rats_app.worlds.shapes.train_reward import WORLD_NORMALIZATION, RewardTrainConfig, build_reward_model

    tokenizer = build_clip_tokenizer()
    model = build_reward_model(RewardTrainConfig(hidden=32, layers=1), tokenizer)
    return ClipPreferenceReward(model, tokenizer, WORLD_NORMALIZATION, name="shapes")
