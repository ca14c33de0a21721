"""The renderer holds to the Shapes World contract (shared/specs/shapes-world.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rats_app.worlds.shapes import (
    BACKGROUNDS,
    COLORS,
    POSITIONS,
    SIZES,
    all_prompts,
    held_out_prompts,
    parse_prompt,
    training_prompts,
)
from rats_app.worlds.shapes.data import sample_batch
from rats_app.worlds.shapes.render import Degradation, Placement, Sample, coverage, render_scene, sample_scene


def _render(prompt, cx=None, cy=None, side=None, degradation=Degradation()):
    scene = parse_prompt(prompt)
    x, y = POSITIONS[scene.position]
    placement = Placement(x if cx is None else cx, y if cy is None else cy, side or SIZES[scene.size])
    return render_scene(Sample(scene, placement, degradation))


def test_prompt_counts_and_grammar():
    prompts = all_prompts()
    assert len(prompts) == 540 and len(set(prompts)) == 540
    assert len(training_prompts()) == 504 and len(held_out_prompts()) == 36
    assert not set(training_prompts()) & set(held_out_prompts())
    assert "a small red circle at the top left on a white background" in prompts
    assert parse_prompt("a large orange triangle at the bottom right on a gray background").position == "bottom right"
    with pytest.raises(ValueError, match="unknown color 'pink'"):
        parse_prompt("a small pink circle at the center on a white background")
    with pytest.raises(ValueError, match="not a Shapes World prompt"):
        parse_prompt("a cat")


def test_held_out_combinations_are_exactly_the_contract():
    combos = {(parse_prompt(p).color, parse_prompt(p).shape, parse_prompt(p).position) for p in held_out_prompts()}
    assert combos == {("purple", "triangle", "center"), ("orange", "circle", "top right"),
                      ("blue", "square", "bottom left"), ("yellow", "triangle", "top left"),
                      ("green", "circle", "bottom right"), ("red", "square", "center")}


@pytest.mark.parametrize("color", list(COLORS))
@pytest.mark.parametrize("background", list(BACKGROUNDS))
def test_exact_colours(color, background):
    image = _render(f"a large {color} square at the center on a {background} background")
    assert tuple(image[32, 32]) == COLORS[color]          # object interior
    assert tuple(image[2, 2]) == BACKGROUNDS[background]  # far corner


@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize("size", list(SIZES))
def test_square_centre_and_side(position, size):
    image = _render(f"a {size} red square at the {position} on a black background").astype(float)
    alpha = (image[..., 0] - 20) / (220 - 20)  # red channel: background 20, object 220
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    cx, cy = (alpha * xs).sum() / alpha.sum(), (alpha * ys).sum() / alpha.sum()
    assert (cx, cy) == pytest.approx(POSITIONS[position], abs=0.02)
    assert alpha.sum() == pytest.approx(SIZES[size] ** 2, rel=0.01)


def test_circle_area_and_triangle_apex_up():
    circle = coverage("circle", Placement(32, 32, 28))
    assert circle.sum() == pytest.approx(np.pi * 14 ** 2, rel=0.01)
    triangle = coverage("triangle", Placement(32, 32, 28))
    assert triangle.sum() == pytest.approx(28 * 28 / 2, rel=0.01)
    rows = triangle.sum(axis=1)
    assert rows[19] < rows[32] < rows[44]  # widens downwards: apex up, base at the bottom
    assert rows[17] == 0 and rows[47] == 0 and rows[18] > 0 and rows[45] > 0


def test_edges_are_anti_aliased():
    image = _render("a large blue circle at the center on a white background", cx=32.3, cy=31.6)
    values = {tuple(v) for v in image.reshape(-1, 3)}
    assert len(values) > 10  # intermediate edge colours, not just two


def test_jitter_ranges():
    rng = np.random.default_rng(0)
    for _ in range(300):
        sample = sample_scene("a small green triangle at the top right on a gray background", rng)
        assert abs(sample.placement.cx - 48) <= 3 and abs(sample.placement.cy - 16) <= 3
        assert abs(sample.placement.side - 16) <= 2


def test_degradations_follow_the_contract():
    rng = np.random.default_rng(1)
    degradations = [sample_scene(all_prompts()[0], rng).degradation for _ in range(2000)]
    clean = sum(d.clean for d in degradations) / len(degradations)
    assert 0.45 < clean < 0.55
    for d in degradations:
        assert 0 <= len(d.kinds) <= 2
        if d.blur_sigma:
            assert 1 <= d.blur_sigma <= 2
        if d.noise_sigma:
            assert 8 <= d.noise_sigma <= 24
        if d.contrast != 1.0:
            assert 0.3 <= d.contrast <= 0.6
    base = _render("a large red square at the center on a white background")
    low = _render("a large red square at the center on a white background", degradation=Degradation(contrast=0.5))
    assert tuple(low[32, 32]) == (174, 84, 84)  # 128 + 0.5 * (220 - 128), 128 + 0.5 * (40 - 128)
    noisy = _render("a large red square at the center on a white background", degradation=Degradation(noise_sigma=16))
    assert 12 < (noisy.astype(float) - base).std() < 20
    blurred = _render("a large red square at the center on a white background", degradation=Degradation(blur_sigma=2))
    assert tuple(blurred[32, 32]) == (220, 40, 40) and (blurred != base).any()


def test_render_is_deterministic():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    for prompt in all_prompts()[:20]:
        assert (render_scene(sample_scene(prompt, rng_a)) == render_scene(sample_scene(prompt, rng_b))).all()


def test_pretraining_data_never_contains_held_out_prompts():
    held = set(held_out_prompts())
    samples, images, _ = sample_batch(training_prompts(), 2000, np.random.default_rng(0))
    assert not {s.scene.prompt for s in samples} & held
    assert images.shape == (2000, 3, 64, 64) and images.min() >= -1 and images.max() <= 1


def test_reward_training_negatives_are_never_held_out():
    from rats_app.worlds.shapes.train_reward import make_triplets

    rng = np.random.default_rng(0)
    chosen, *_ = make_triplets(training_prompts(), 300, rng)
    assert not set(chosen) & set(held_out_prompts())
    from rats_app.worlds.shapes.train_reward import _neighbour
    for prompt in training_prompts():
        for _ in range(3):
            assert not _neighbour(parse_prompt(prompt), rng).held_out


def test_held_out_scenes_get_negatives_for_evaluation():
    from rats_app.worlds.shapes.train_reward import make_triplets

    chosen, good, degraded, wrong = make_triplets(held_out_prompts(), 200, np.random.default_rng(0))
    assert len(chosen) == 200 and wrong.shape == (200, 3, 64, 64)


def test_soft_pairs_differ_only_in_sharpness_and_leave_the_other_items_alone():
    from rats_app.worlds.shapes.checker import check_image
    from rats_app.worlds.shapes.data import to_uint8
    from rats_app.worlds.shapes.train_reward import make_triplets

    plain = make_triplets(training_prompts(), 24, np.random.default_rng(3))
    chosen, good, degraded, wrong, soft = make_triplets(training_prompts(), 24, np.random.default_rng(3), (0.4, 1.0))
    assert chosen == plain[0] and all(torch.equal(a, b) for a, b in zip((good, degraded, wrong), plain[1:]))
    widths = []
    for g, s, prompt in zip(to_uint8(good * 2 - 1), to_uint8(soft * 2 - 1), chosen):  # [0, 1] -> the VAE range
        sharp, blurred = check_image(g, prompt), check_image(s, prompt)
        assert sharp.correct and blurred.correct  # same scene, same place: only the edges differ
        assert blurred.measurements["edge_width"] >= sharp.measurements["edge_width"]
        widths.append((sharp.measurements["edge_width"], blurred.measurements["edge_width"]))
    sharp_mean, soft_mean = np.mean(widths, axis=0)
    assert soft_mean > sharp_mean + 0.3, (sharp_mean, soft_mean)


def test_reward_config_names_bad_soft_blur_values():
    from rats_app.worlds.shapes.train_reward import RewardTrainConfig

    with pytest.raises(ValueError, match="soft_blur_min/max"):
        RewardTrainConfig(soft_blur_min=1.0, soft_blur_max=0.5)
    with pytest.raises(ValueError, match="soft_weight"):
        RewardTrainConfig(soft_weight=-1)


def test_object_token_weights_mark_the_object():
    import torch

    from rats_app.rats_loss import object_weights

    x0 = torch.zeros(2, 64, 8)
    x0[0, 10] = 1.0          # one object token in image 0
    x0[1, :] = 0.05          # image 1: flat
    w = object_weights(x0, 4.0, channel_dim=-1)
    assert w[0, 10] == 5.0 and w[0].sum() == 64 + 4 and torch.all(w[1] == 1.0)


def test_artefact_pairs_are_what_the_ground_truth_calls_residual():
    """The v3 reward's clean-vs-artefact pairs: the first items are unchanged, and every artefact
    raises the checker's residual (what no blur explains) above the clean render's, with the
    attributes still right: the reward learns to rank down exactly what the ground truth penalises."""
    from rats_app.worlds.artefacts import ARTEFACTS
    from rats_app.worlds.shapes.checker import check_image
    from rats_app.worlds.shapes.data import to_uint8
    from rats_app.worlds.shapes.train_reward import make_triplets

    plain = make_triplets(training_prompts(), 12, np.random.default_rng(4), (0.4, 1.0))
    mixed = make_triplets(training_prompts(), 12, np.random.default_rng(4), (0.4, 1.0), True)
    assert mixed[0] == plain[0] and all(torch.equal(a, b) for a, b in zip(mixed[1:5], plain[1:5]))
    for kind in ARTEFACTS:
        chosen, good, *_, hacked = make_triplets(training_prompts(), 8, np.random.default_rng(5), None, kind)
        for g, h, prompt in zip(to_uint8(good * 2 - 1), to_uint8(hacked * 2 - 1), chosen):
            clean, bad = check_image(g, prompt), check_image(h, prompt)
            assert bad.correct, (kind, prompt)
            assert bad.measurements["residual"] > clean.measurements["residual"] + 0.5, (kind, prompt)


def test_object_cast_is_what_the_ground_truth_calls_ideal_error_not_residual():
    """The colour-cast pair: the object leaves the palette, the attributes stay right, the fit's free
    colours absorb most of it (only the anti-aliased edge, shifted by the full cast, leaves residual)
    and the error to the ideal render rises."""
    from rats_app.worlds.shapes.checker import check_image
    from rats_app.worlds.shapes.data import to_uint8
    from rats_app.worlds.shapes.train_reward import make_triplets

    chosen, good, *_, cast = make_triplets(training_prompts(), 8, np.random.default_rng(5), None, "object_cast")
    for g, c, prompt in zip(to_uint8(good * 2 - 1), to_uint8(cast * 2 - 1), chosen):
        clean, bad = check_image(g, prompt), check_image(c, prompt)
        assert bad.correct, prompt
        residual_rise = bad.measurements["residual"] - clean.measurements["residual"]
        ideal_rise = bad.measurements["ideal_error"] - clean.measurements["ideal_error"]
        assert ideal_rise > 1.0 and ideal_rise > 2 * residual_rise, (prompt, ideal_rise, residual_rise)


def test_cast_pair_casts_each_clean_render_and_init_starts_from_a_saved_reward(tmp_path):
    """The clean-vs-cast pair of its own: the same render with only the object's colour moved; and a
    reward trained from ``init`` starts from those weights exactly (a fine-tune of the shipped one)."""
    from rats_app.worlds.artefacts import object_mask
    from rats_app.worlds.palette import BACKGROUNDS
    from rats_app.worlds.shapes.train_reward import (
        RewardTrainConfig,
        build_reward_model,
        make_triplets,
        with_object_casts,
    )

    chosen, good, *_ = make_triplets(training_prompts(), 6, np.random.default_rng(7))
    cast = with_object_casts(good, chosen, np.random.default_rng(8))
    for g, c, prompt in zip(good, cast, chosen):
        image = (g.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        mask = object_mask(image, BACKGROUNDS[parse_prompt(prompt).background])
        changed = (g - c).abs().amax(0).numpy() > 0
        assert changed.any() and not (changed & ~mask).any(), prompt  # the object only, never the background
    from rats_app.errors import ConfigError
    from rats_app.worlds.shapes.model import build_clip_tokenizer

    model = build_reward_model(RewardTrainConfig(hidden=8, layers=1, patch=16), build_clip_tokenizer())
    model.save_pretrained(tmp_path / "saved")
    again = build_reward_model(RewardTrainConfig(hidden=8, layers=1, patch=16, seed=1, init=str(tmp_path / "saved")),
                               build_clip_tokenizer())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ConfigError, match="init: .* has no model.safetensors"):
        build_reward_model(RewardTrainConfig(init=str(tmp_path)), build_clip_tokenizer())
