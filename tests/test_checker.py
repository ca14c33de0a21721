"""The ground-truth checker reads rendered images correctly (its accuracy is what we report)."""

from __future__ import annotations

import numpy as np
import pytest

from rats_app.worlds.shapes import all_prompts, parse_prompt
from rats_app.worlds.shapes.checker import check_image, summarize
from rats_app.worlds.shapes.render import render_scene, sample_scene


def test_checker_reads_renders_and_their_quality():
    rng = np.random.default_rng(42)
    prompts = all_prompts()
    results, quality_right = [], 0
    for _ in range(150):
        prompt = prompts[rng.integers(len(prompts))]
        sample = sample_scene(prompt, rng, p_degraded=0.5)
        result = check_image(render_scene(sample), prompt)
        results.append(result)
        quality_right += result.clean == sample.degradation.clean
    summary = summarize(results)
    assert summary["correct"] >= 0.98
    assert quality_right / len(results) >= 0.98


def test_checker_names_the_wrong_attribute():
    rng = np.random.default_rng(0)
    image = render_scene(sample_scene("a large green circle at the center on a black background", rng, 0.0))
    result = check_image(image, "a large green square at the center on a black background")
    assert result.right == {"background": True, "color": True, "shape": False, "size": True, "position": True}
    assert result.clean and not result.correct


def test_checker_on_a_blank_image_finds_no_object():
    result = check_image(np.full((64, 64, 3), 128, np.uint8), parse_prompt(all_prompts()[0]))
    assert result.predicted["shape"] == "none" and not result.correct


def test_checker_rejects_wrong_shape():
    with pytest.raises(ValueError, match="64x64x3"):
        check_image(np.zeros((32, 32, 3), np.uint8))
