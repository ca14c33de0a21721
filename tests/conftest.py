"""Shared fixtures: tiny random models built in the test session (nothing downloaded), and helpers
that train tiny runs through the project's one entry point (rats_app.training.run_training)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TINY_PROMPTS = ["a small red circle at the top left on a white background",
                "a large blue square at the center on a gray background"]
TINY_RUN = {"steps": 2, "student_steps_choices": [], "batch_size": 2, "teacher_steps": 6, "sample_every": 0,
            "checkpoint_every": 1,
            "lora_rank": 2, "lora_alpha": 2.0, "device": "cpu"}


@pytest.fixture(scope="session")
def tiny_prompts():
    return list(TINY_PROMPTS)


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
    write_json(path / "world.json", {"world": "shapes-world/v1", "vocabulary": vocabulary()})
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


@pytest.fixture(scope="session")
def tiny_reward_dir(tmp_path_factory, tiny_world_reward):
    """The tiny world reward saved as a directory (for subprocesses: RATS_SHAPES_REWARD)."""
    path = tmp_path_factory.mktemp("tiny-reward") / "reward"
    tiny_world_reward.model.save_pretrained(path)
    tiny_world_reward.tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_components(tiny_world_model_dir, tiny_world_reward):
    """components(model_dir=None, prompts=None, watch=None, dtype=float32): a fresh tiny pipeline and friends."""
    def make(model_dir=None, prompts=None, watch=None, dtype=None):
        import torch

        from rats_app.models import load_pipeline
        from rats_app.training import Components

        pipe, info = load_pipeline(model_dir or tiny_world_model_dir, device="cpu", dtype=dtype or torch.float32)
        return Components(pipe, info, tiny_world_reward, watch or {}, list(prompts or TINY_PROMPTS))
    return make


@pytest.fixture(scope="session")
def tiny_config(tiny_world_model_dir):
    """config(**overrides): a TrainConfig for a 2-step tiny run."""
    def make(model_dir=None, **overrides):
        from rats_app.config import TrainConfig

        return TrainConfig.from_dict({"model": str(model_dir or tiny_world_model_dir), **TINY_RUN, **overrides})
    return make


@pytest.fixture(scope="session")
def prepare_tiny(tiny_config, tiny_components):
    """prepare(out, resume=False, model_dir=None, prompts=None, watch=None, **overrides) -> PreparedRun."""
    def prepare(out, resume=False, model_dir=None, prompts=None, watch=None, **overrides):
        import torch

        from rats_app.training import prepare_run

        config = tiny_config(model_dir, **overrides)
        dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
        return prepare_run(config, out, resume, components=tiny_components(model_dir, prompts, watch, dtype))
    return prepare


@pytest.fixture(scope="session")
def train_tiny(prepare_tiny):
    """train(out, resume=False, callbacks=(), **overrides) -> the trainer after its run."""
    def train(out, resume=False, callbacks=(), **kwargs):
        return prepare_tiny(out, resume, **kwargs).train(list(callbacks))
    return train


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory):
    """A randomly initialised tiny Moving Shapes WanPipeline saved like the shipped one (9 x 32 x 32)."""
    import torch

    from rats_app.io import write_json
    from rats_app.worlds.moving_shapes.model import MAX_SEQUENCE_LENGTH, WanWorldConfig, build_world_pipeline
    from rats_app.worlds.moving_shapes.prompts import vocabulary

    torch.manual_seed(0)
    config = WanWorldConfig(z_dim=8, vae_base_dim=8, text_dim=32, text_layers=1, layers=2, heads=2, head_dim=64,
                            ffn_dim=64, freq_dim=32)
    pipe = build_world_pipeline(config, seed=0)
    path = tmp_path_factory.mktemp("tiny-wan") / "model"
    pipe.save_pretrained(path)
    write_json(path / "call_defaults.json", {"max_sequence_length": MAX_SEQUENCE_LENGTH, "guidance_scale": 3.0})
    write_json(path / "world.json", {"world": "moving-shapes/v1", "vocabulary": vocabulary(), "height": 32,
                                     "width": 32, "frames": 9, "fps": 8})
    return path
