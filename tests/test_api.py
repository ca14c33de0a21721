"""The Python API behind the app: compare from the same seed, scores, errors."""

from __future__ import annotations

import numpy as np
import pytest

from rats_app.api import Studio
from rats_app.models import UserError

PROMPT = "a small red circle at the top left on a white background"


@pytest.fixture(scope="module")
def studio(tiny_world_model_dir):
    return Studio(tiny_world_model_dir, device="cpu")


def test_compare_gives_teacher_and_baseline_with_scores(studio, monkeypatch, tiny_world_reward):
    monkeypatch.setitem(studio._rewards, "shapes", tiny_world_reward)
    teacher, baseline = studio.compare(PROMPT, seed=5, nfe=2, teacher_nfe=6)
    assert (teacher.label, teacher.nfe, baseline.label, baseline.nfe) == ("Teacher", 6, "Baseline", 2)
    assert teacher.image.size == (64, 64) and teacher.latency_ms > 0
    assert isinstance(teacher.scores["shapes"], float)
    again = studio.generate(PROMPT, 5, 2, "Baseline")
    assert np.array_equal(np.asarray(again.image), np.asarray(baseline.image))


def test_missing_reward_is_shown_not_fatal(studio, monkeypatch, tmp_path):
    monkeypatch.setenv("RATS_SHAPES_REWARD", str(tmp_path / "nowhere"))
    studio._rewards.pop("shapes", None)
    items = studio.compare(PROMPT, seed=0, nfe=1, teacher_nfe=2)
    assert items[0].scores["shapes"].startswith("unavailable: shapes: no CLIP model at")


@pytest.mark.parametrize("kwargs, message", [
    ({"prompt": "  "}, "empty prompt"),
    ({"prompt": "a small red dragon at the center on a white background"}, "unknown word 'dragon'"),
    ({"nfe": 0}, "nfe must be between 1 and 1000"),
    ({"nfe": 4, "teacher_nfe": 3}, "teacher NFE (3) must be at least the student NFE (4)"),
])
def test_bad_input(studio, kwargs, message):
    args = {"prompt": PROMPT, "seed": 0, "nfe": 2, "teacher_nfe": 4, **kwargs}
    with pytest.raises(UserError) as info:
        studio.compare(**args)
    assert message in str(info.value)
