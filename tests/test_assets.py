"""The shipped Shapes World artefacts: offline loading, size, teacher quality, reward behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rats_app.worlds import ASSETS, get_world

SHAPES = get_world("shapes-world")
DEFAULT_MODEL = SHAPES.model_dir

PROMPT = "a large green triangle at the bottom left on a white background"


def test_assets_fit_the_size_budget():
    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    assert total <= 60 * 2**20, f"assets/ is {total / 2**20:.1f} MiB"


def test_teacher_loads_offline_in_plain_diffusers_and_follows_the_prompt(monkeypatch):
    """Plain diffusers, offline, with call_defaults.json (short max_sequence_length, true CFG).
    The teacher gets all five attributes right on these 8 prompts and seeds (its full figures are
    in the README); one may flip on another CPU's float rounding."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from diffusers import FluxPipeline

    from rats_app.worlds.shapes.checker import check_image

    defaults = json.loads((DEFAULT_MODEL / "call_defaults.json").read_text())
    assert isinstance(defaults, dict) and all(isinstance(k, str) for k in defaults)
    pipe = FluxPipeline.from_pretrained(DEFAULT_MODEL)
    pipe.set_progress_bar_config(disable=True)
    prompts = ["a small red circle at the top left on a white background", PROMPT,
               "a large blue square at the center on a black background",
               "a small yellow triangle at the bottom right on a gray background"] * 2
    generators = [torch.Generator("cpu").manual_seed(i) for i in range(len(prompts))]
    if "negative_prompt" in defaults:  # true CFG: FluxPipeline wants one negative prompt per prompt in a batch
        defaults["negative_prompt"] = [defaults["negative_prompt"]] * len(prompts)
    images = pipe(prompts, num_inference_steps=50, height=64, width=64, generator=generators, **defaults).images
    checks = [check_image(np.asarray(im), p) for im, p in zip(images, prompts)]
    for attribute in ("background", "size", "position"):
        assert all(c.right[attribute] for c in checks), [c.predicted for c in checks]
    assert sum(c.correct for c in checks) >= 7, [c.right for c in checks]
    assert sum(c.clean for c in checks) >= 2, [c.defects for c in checks]


@pytest.fixture(scope="module")
def shapes_reward():
    from rats_app.rewards.registry import load_reward

    return load_reward("shapes", device="cpu")


def test_shapes_reward_prefers_right_prompt_and_clean_images(shapes_reward):
    from rats_app.worlds.shapes import held_out_prompts
    from rats_app.worlds.shapes.train_reward import pairwise_accuracy

    accuracy = pairwise_accuracy(shapes_reward, held_out_prompts(), 64, seed=123)
    assert accuracy["right_vs_wrong_prompt"] >= 0.9 and accuracy["clean_vs_degraded"] >= 0.9, accuracy
    assert accuracy["clean_vs_soft"] >= 0.9, accuracy  # sees sub-pixel softness (sigma 0.4-1 px)


def test_shapes_reward_is_differentiable_and_paths_agree(shapes_reward):
    from rats_app.worlds.shapes import render

    image = torch.from_numpy(render(PROMPT, seed=1)).permute(2, 0, 1)[None].float() / 255
    image.requires_grad_(True)
    score = shapes_reward.score(image, [PROMPT])
    score.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    fast = shapes_reward.score_fast(image.detach(), [PROMPT])
    assert torch.allclose(score.detach().cpu(), fast, atol=1e-5)
    from PIL import Image

    pil = Image.fromarray(render(PROMPT, seed=1))
    assert torch.allclose(shapes_reward.score_fast([pil], [PROMPT]), fast, atol=1e-5)


def test_reward_rejects_mismatched_batches(shapes_reward):
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        shapes_reward.score(torch.rand(2, 3, 64, 64), [PROMPT])
    with pytest.raises(ValueError, match="RGB"):
        shapes_reward.score(torch.rand(1, 4, 64, 64), [PROMPT])


def test_shipped_rats_lora_loads_in_plain_diffusers_and_matches_generate_rats(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from diffusers import FluxPipeline
    from PIL import Image

    from rats_app.generate import main

    defaults = json.loads((DEFAULT_MODEL / "call_defaults.json").read_text())
    student = json.loads((SHAPES.lora_dir / "rats.json").read_text())["call"]  # the plain call the LoRA runs with
    assert student["num_inference_steps"] == 3
    pipe = FluxPipeline.from_pretrained(DEFAULT_MODEL)
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(num_inference_steps=3, height=64, width=64, **defaults)
    base = np.asarray(pipe(PROMPT, generator=torch.Generator("cpu").manual_seed(4), **kwargs).images[0]).astype(int)
    pipe.load_lora_weights(SHAPES.lora_dir)
    rats = np.asarray(pipe(PROMPT, generator=torch.Generator("cpu").manual_seed(4), **student).images[0]).astype(int)
    assert np.abs(rats - base).max() > 10  # the LoRA changes the few-step image
    assert main(["--prompt", PROMPT, "--out", str(tmp_path / "r.png"), "--nfe", "3", "--seed", "4", "--rats"]) == 0
    ours = np.asarray(Image.open(tmp_path / "r.png").convert("RGB")).astype(int)
    assert np.abs(ours - rats).max() <= 3


def test_shipped_moving_shapes_reward_ranks_every_pair_kind_on_held_out_prompts():
    """assets/moving-shapes-reward (by name, through the registry): right prompt, forward clip and
    clean clip preferred on fresh held-out pairs; differentiable in the pixels."""
    from rats_app.rewards.registry import load_reward
    from rats_app.worlds.moving_shapes.prompts import held_out_prompts
    from rats_app.worlds.moving_shapes.train_reward import make_pairs, pairwise_accuracy

    reward = load_reward("moving-shapes", device="cpu")
    accuracy = pairwise_accuracy(reward, held_out_prompts(), 48, seed=321)
    assert set(accuracy) == {"wrong_prompt", "reversed", "blur", "noise", "contrast", "flicker", "jitter", "stutter"}
    assert min(accuracy.values()) >= 0.9, accuracy
    chosen, good, _ = make_pairs(held_out_prompts(), 2, np.random.default_rng(0), 0.5)
    clips = good.clone().requires_grad_(True)
    reward.score(clips, chosen).sum().backward()
    assert clips.grad is not None and clips.grad.abs().sum() > 0


MOVING = get_world("moving-shapes")
CLIP_PROMPT = "a large blue square moving down on a gray background"


def test_moving_shapes_teacher_and_lora_load_offline_in_plain_diffusers(tmp_path, monkeypatch):
    """The contract: WanPipeline.from_pretrained("assets/shapes-wan") with call_defaults.json and
    load_lora_weights("assets/shapes-wan-rats"), offline; generate --rats writes the same frames
    (its filmstrip within 3 of 255)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from diffusers import WanPipeline
    from PIL import Image

    from rats_app.generate import main

    defaults = json.loads((MOVING.model_dir / "call_defaults.json").read_text())
    pipe = WanPipeline.from_pretrained(MOVING.model_dir)
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(num_inference_steps=3, num_frames=9, height=32, width=32, output_type="np", **defaults)
    base = pipe(CLIP_PROMPT, generator=torch.Generator("cpu").manual_seed(4), **kwargs).frames[0]
    pipe.load_lora_weights(MOVING.lora_dir)
    rats = pipe(CLIP_PROMPT, generator=torch.Generator("cpu").manual_seed(4), **kwargs).frames[0]
    assert np.abs(rats - base).max() * 255 > 10  # the LoRA changes the 3-step clip
    assert main(["--model", str(MOVING.model_dir), "--prompt", CLIP_PROMPT, "--out", str(tmp_path / "r.mp4"),
                 "--nfe", "3", "--seed", "4", "--rats"]) == 0
    strip = np.asarray(Image.open(tmp_path / "r.png").convert("RGB")).astype(int)
    expected = np.concatenate(list(np.round(rats * 255).astype(int)), axis=1)  # 9 frames side by side
    assert strip.shape == (32, 288, 3) and np.abs(strip - expected).max() <= 3


def test_moving_shapes_teacher_follows_the_prompt():
    """The shipped teacher at 50 steps, read by the world's checker (its full figures: README);
    one clip may flip on another CPU's float rounding."""
    from diffusers import WanPipeline

    from rats_app.io import to_uint8_frames
    from rats_app.worlds.moving_shapes.checker import check_clip

    pipe = WanPipeline.from_pretrained(MOVING.model_dir)
    pipe.set_progress_bar_config(disable=True)
    defaults = json.loads((MOVING.model_dir / "call_defaults.json").read_text())
    prompts = MOVING.sample_prompts()[:4] * 2
    generators = [torch.Generator("cpu").manual_seed(i) for i in range(len(prompts))]
    clips = pipe(prompts, num_inference_steps=50, num_frames=9, height=32, width=32, generator=generators,
                 output_type="np", **defaults).frames
    checks = [check_clip(to_uint8_frames(clip), p) for clip, p in zip(clips, prompts)]
    assert sum(c.correct for c in checks) >= 5, [c.right for c in checks]  # 6 of 8 here
