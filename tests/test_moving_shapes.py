"""Moving Shapes (shared/specs/moving-shapes.md): the renderer held to the contract, the checker
measured on renders, and the video preference reward's model, pairs and files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rats_app.worlds.moving_shapes.checker import check_clip, majority_shape
from rats_app.worlds.moving_shapes.prompts import (
    all_prompts,
    held_out_prompts,
    neighbours,
    parse_prompt,
    training_prompts,
)
from rats_app.worlds.moving_shapes.render import (
    DEGRADATION_KINDS,
    FRAMES,
    Degradation,
    Placement,
    Sample,
    make_degradation,
    path,
    render_clip,
    sample_placement,
)
from rats_app.worlds.palette import BACKGROUNDS, COLORS

HELD_OUT = {("purple", "triangle", "up"), ("orange", "circle", "right"), ("blue", "square", "left"),
            ("yellow", "triangle", "down"), ("green", "circle", "left"), ("red", "square", "up")}


# ------------------------------------------------------------------ the renderer
def test_prompts_and_held_out_split_are_the_contract():
    prompts = all_prompts()
    assert len(prompts) == 432 == len(set(prompts))
    assert len(held_out_prompts()) == 36 and len(training_prompts()) == 396
    for p in held_out_prompts():
        s = parse_prompt(p)
        assert (s.color, s.shape, s.direction) in HELD_OUT
    assert parse_prompt("a small red circle moving right on a white background").direction == "right"
    with pytest.raises(ValueError, match="not a Moving Shapes prompt"):
        parse_prompt("a small red circle at the center on a white background")


@pytest.mark.parametrize("direction, expected", [
    ("right", [(8 + 2 * i, 16) for i in range(9)]), ("left", [(24 - 2 * i, 16) for i in range(9)]),
    ("down", [(16, 8 + 2 * i) for i in range(9)]), ("up", [(16, 24 - 2 * i) for i in range(9)])])
def test_straight_path_at_two_px_per_frame(direction, expected):
    scene = parse_prompt(f"a small red square moving {direction} on a white background")
    centres = path(Sample(scene, Placement(start=8.0, cross=16.0, side=8.0)))
    assert np.allclose(centres, expected)


def test_clip_shape_colours_and_object_box():
    scene = parse_prompt("a large blue square moving right on a gray background")
    clip = render_clip(Sample(scene, Placement(start=8.0, cross=16.0, side=14.0)))
    assert clip.shape == (FRAMES, 32, 32, 3) and clip.dtype == np.uint8
    assert tuple(clip[0, 0, 0]) == BACKGROUNDS["gray"]
    for i in range(FRAMES):
        inside = np.argwhere((clip[i] == COLORS["blue"]).all(axis=-1))
        cx = 8 + 2 * i
        assert inside[:, 1].min() == cx - 7 and inside[:, 1].max() == cx + 6  # 14 px wide, full pixels
        assert inside[:, 0].min() == 9 and inside[:, 0].max() == 22


def test_jitter_ranges_are_the_contract():
    rng = np.random.default_rng(0)
    scene = parse_prompt("a small red circle moving up on a white background")
    placements = [sample_placement(scene, rng) for _ in range(2000)]
    starts, crosses, sides = (np.array([getattr(p, k) for p in placements]) for k in ("start", "cross", "side"))
    assert 7 <= starts.min() and starts.max() <= 9 and 13 <= crosses.min() and crosses.max() <= 19
    assert 7 <= sides.min() and sides.max() <= 9


def test_degradations_follow_the_contract():
    rng = np.random.default_rng(1)
    for _ in range(200):
        d = make_degradation(tuple(rng.choice(DEGRADATION_KINDS, size=2, replace=False)), rng)
        assert d.blur_sigma == 0 or 0.5 <= d.blur_sigma <= 1.0
        assert d.noise_sigma == 0 or 8 <= d.noise_sigma <= 24
        assert d.contrast == 1.0 or 0.3 <= d.contrast <= 0.6
        assert not d.flicker or all(10 <= abs(f) <= 30 for f in d.flicker)
        assert not d.jitter or np.abs(d.jitter).max() <= 2.0
        assert d.stutter == (0, 0) or d.stutter[1] in (2, 3)
    with pytest.raises(ValueError, match="unknown degradation 'smear'"):
        make_degradation(("smear",), rng)


def test_stutter_holds_then_jumps_back_onto_the_path():
    scene = parse_prompt("a small red square moving right on a white background")
    centres = path(Sample(scene, Placement(8.0, 16.0, 8.0), Degradation(stutter=(3, 3))))
    assert list(centres[:, 0]) == [8, 10, 12, 14, 14, 14, 20, 22, 24]


# ------------------------------------------------------------------ the checker, measured on renders
@pytest.mark.parametrize("kind", ("clean", *DEGRADATION_KINDS))
def test_checker_reads_renders_and_names_each_degradation(kind):
    rng = np.random.default_rng(("clean", *DEGRADATION_KINDS).index(kind))
    prompts = all_prompts()
    for _ in range(15):
        prompt = prompts[rng.integers(len(prompts))]
        scene = parse_prompt(prompt)
        degradation = Degradation() if kind == "clean" else make_degradation((kind,), rng)
        result = check_clip(render_clip(Sample(scene, sample_placement(scene, rng), degradation)), prompt)
        if kind == "clean":
            assert result.correct and result.clean, (prompt, result.predicted, result.defects)
        else:
            assert kind in result.defects, (prompt, kind, result.defects)
        if kind not in ("contrast", "noise"):  # the attributes are still read through those two
            assert result.right.get("direction", False), (prompt, kind, result.predicted)


def test_checker_names_the_wrong_attribute_and_a_reversed_clip():
    rng = np.random.default_rng(3)
    scene = parse_prompt("a large green triangle moving down on a black background")
    clip = render_clip(Sample(scene, sample_placement(scene, rng)))
    for other in neighbours(scene):
        changed = next(k for k in ("size", "color", "shape", "direction", "background")
                       if getattr(other, k) != getattr(scene, k))
        result = check_clip(clip, other.prompt)
        assert [k for k, ok in result.right.items() if not ok] == [changed], (other.prompt, result.right)
    reversed_result = check_clip(clip[::-1].copy(), scene.prompt)
    assert reversed_result.predicted["direction"] == "up" and not reversed_result.correct


def test_checker_rejects_bad_input():
    with pytest.raises(ValueError, match="expected a clip of shape"):
        check_clip(np.zeros((9, 64, 64, 3), np.uint8))


# ------------------------------------------------------------------ the video preference reward
@pytest.fixture(scope="module")
def tiny_video_reward():
    from rats_app.worlds.moving_shapes.train_reward import VideoRewardTrainConfig, build_reward

    return build_reward(VideoRewardTrainConfig(hidden=16, vision_layers=1, temporal_layers=1))


def test_video_reward_is_differentiable_and_knows_frame_order(tiny_video_reward):
    from rats_app.worlds.moving_shapes.train_reward import make_pairs

    prompts, good, rejected = make_pairs(training_prompts(), 3, np.random.default_rng(0))
    clips = good.clone().requires_grad_(True)
    scores = tiny_video_reward.score(clips, prompts)
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    scores.sum().backward()
    assert clips.grad.abs().sum() > 0
    backwards = tiny_video_reward.score(rejected["reversed"], prompts)
    assert not torch.allclose(backwards, scores.detach())  # frame order is seen even untrained
    with pytest.raises(ValueError, match="scores 9 frames of 32 px"):
        tiny_video_reward.score(torch.zeros(1, 3, 5, 32, 32), prompts[:1])


def test_reward_pairs_differ_as_named(tiny_video_reward):
    from rats_app.worlds.moving_shapes.train_reward import REJECTED, make_pairs

    prompts, good, rejected = make_pairs(training_prompts(), 20, np.random.default_rng(1))
    assert list(rejected) == list(REJECTED)
    assert torch.equal(rejected["reversed"], good.flip(2))
    for kind in ("jitter", "stutter", "flicker", "blur", "noise", "contrast", "wrong_prompt"):
        assert all(not torch.equal(a, b) for a, b in zip(rejected[kind], good)), kind


def test_reward_training_negatives_are_never_held_out():
    from rats_app.worlds.moving_shapes.train_reward import _wrong_scene

    rng = np.random.default_rng(2)
    for prompt in training_prompts()[::7]:
        for _ in range(5):
            assert not _wrong_scene(parse_prompt(prompt), rng).held_out


def test_video_reward_saves_loads_and_trains_a_step(tmp_path, tiny_video_reward):
    from rats_app.errors import RewardUnavailable
    from rats_app.rewards.video_preference import load_video_preference, save_video_preference
    from rats_app.worlds.moving_shapes.train_reward import VideoRewardTrainConfig, make_pairs, train

    save_video_preference(tiny_video_reward, tmp_path / "reward")
    loaded = load_video_preference(tmp_path / "reward", name="moving-shapes", device="cpu")
    prompts, good, _ = make_pairs(training_prompts(), 2, np.random.default_rng(3))
    assert torch.equal(loaded.score(good, prompts), tiny_video_reward.score(good, prompts))
    with pytest.raises(RewardUnavailable, match=r"no video preference model at .* \(rebuild it with `make it`\)"):
        load_video_preference(tmp_path / "nothing", rebuild="make it")
    cfg = VideoRewardTrainConfig(steps=2, batch=2, hidden=16, vision_layers=1, temporal_layers=1, threads=1,
                                 eval_pairs=4)
    metrics = train(cfg, tmp_path / "trained", tmp_path / "work")
    assert set(metrics["held_out_prompts"]) == set(make_pairs(training_prompts(), 1, np.random.default_rng(0))[2])
    assert (tmp_path / "trained" / "model.safetensors").exists() and (tmp_path / "trained" / "training.json").exists()


# ------------------------------------------------------------------ the tiny Wan model


@pytest.mark.parametrize("factor", [4, 2])
def test_either_vae_factor_gives_80_tokens_and_32_px_clips(factor):
    from rats_app.worlds.moving_shapes.model import WanWorldConfig, build_world_pipeline

    config = WanWorldConfig(z_dim=4, vae_base_dim=4, text_dim=32, text_layers=1, layers=1, heads=2, head_dim=32,
                            ffn_dim=16, freq_dim=16, spatial_factor=factor)
    pipe = build_world_pipeline(config)
    tokens = []
    pipe.transformer.patch_embedding.register_forward_hook(lambda m, i, out: tokens.append(out[0, 0].numel()))
    frames = pipe("a small red square moving right on a white background", height=32, width=32, num_frames=FRAMES,
                  num_inference_steps=1, max_sequence_length=16, output_type="np",
                  generator=torch.Generator().manual_seed(0)).frames
    assert frames.shape == (1, FRAMES, 32, 32, 3)
    assert pipe.vae.config.scale_factor_spatial == factor and pipe.transformer.config.patch_size == (1, 8 // factor, 8 // factor)
    assert set(tokens) == {80}  # 5 latent frames x (32 / 8)^2 whatever the factor


def test_an_unsupported_vae_factor_is_named():
    from rats_app.worlds.moving_shapes.model import WanWorldConfig

    with pytest.raises(ValueError, match="spatial_factor: 8"):
        WanWorldConfig(spatial_factor=8)


def test_a_transformer_narrower_than_a_token_is_refused():
    """A token carries patch^2 x z_dim latent values; heads x head_dim below that squeezes every token
    through a bottleneck (the 128-wide teacher on the factor-2 VAE's 256-value tokens made blobs)."""
    from rats_app.worlds.moving_shapes.model import WanWorldConfig

    assert WanWorldConfig().token_values == 256 <= WanWorldConfig().heads * WanWorldConfig().head_dim
    with pytest.raises(ValueError, match="heads x head_dim = 128 is below the 256 latent values a token carries"):
        WanWorldConfig(head_dim=32)
    assert WanWorldConfig(head_dim=32, spatial_factor=4).token_values == 64  # factor 4: 2 x 2 x 16


def test_the_shape_vote_breaks_a_three_way_tie_by_fit_not_by_order():
    votes, fits = ["circle", "square", "triangle"], [0.81, 0.93, 0.88]
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        assert majority_shape([votes[i] for i in order], [fits[i] for i in order]) == "square"
    assert majority_shape(["circle", "square", "circle"], [0.7, 0.99, 0.7]) == "circle"  # the majority first
