"""The Python API behind the app: compare from the same seed, scores, errors."""

from __future__ import annotations

import numpy as np
import pytest

from rats_app.api import Studio
from rats_app.errors import UserError

PROMPT = "a small red circle at the top left on a white background"


@pytest.fixture(scope="module")
def studio(tiny_world_model_dir):
    return Studio(tiny_world_model_dir, device="cpu")


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory, train_tiny):
    """A LoRA trained for one step on the tiny model, at a rate that changes the output.

    The default warm-up gives a one-step run a tenth of the rate (1e-4): its LoRA then moved one
    pixel of the tiny model's 64 x 64 output by one uint8 level, so "RATS differs from Baseline"
    hung on rounding (it failed on a fresh CI machine). At 1e-1, 1,147 pixels differ.
    """
    out = tmp_path_factory.mktemp("lora") / "run"
    train_tiny(out, steps=1, warmup_steps=0, lr_schedule="constant", learning_rate=1e-1)
    return out


def test_compare_gives_three_columns_with_scores(studio, monkeypatch, tiny_world_reward, tiny_lora):
    monkeypatch.setattr(studio, "reward_names", ["shapes"])
    monkeypatch.setitem(studio._rewards, "shapes", tiny_world_reward)
    teacher, baseline, rats = studio.compare(PROMPT, seed=5, nfe=2, teacher_nfe=6, lora=tiny_lora)
    assert (rats.label, rats.nfe) == ("RATS", 2)
    assert not np.array_equal(np.asarray(rats.image), np.asarray(baseline.image))
    assert (teacher.label, teacher.nfe, baseline.label, baseline.nfe) == ("Teacher", 6, "Baseline", 2)
    assert teacher.image.size == (64, 64) and teacher.latency_ms > 0
    assert isinstance(teacher.scores["shapes"], float)
    again = studio.generate(PROMPT, 5, 2, "Baseline")
    assert np.array_equal(np.asarray(again.image), np.asarray(baseline.image))


def test_baseline_is_unchanged_after_a_lora_was_used(studio, tiny_lora):
    before = studio.generate(PROMPT, 1, 2, "Baseline")
    studio.generate(PROMPT, 1, 2, "RATS", lora=tiny_lora)
    after = studio.generate(PROMPT, 1, 2, "Baseline")
    assert np.array_equal(np.asarray(before.image), np.asarray(after.image))


def test_missing_reward_is_shown_not_fatal(tiny_world_model_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("RATS_SHAPES_REWARD", str(tmp_path / "nowhere"))
    studio = Studio(tiny_world_model_dir, device="cpu", reward_names=["shapes"])
    items = studio.compare(PROMPT, seed=0, nfe=1, teacher_nfe=2, lora=None)
    assert "shapes" not in items[0].scores
    assert studio.reward_errors()["shapes"].startswith("shapes: no CLIP model at")


def test_compare_stream_shows_the_students_before_the_teacher(studio, tiny_lora):
    first, final = list(studio.compare_stream(PROMPT, 0, 2, 4, lora=tiny_lora))
    assert [i.label for i in first] == ["Baseline", "RATS"]
    assert [i.label for i in final] == ["Teacher", "Baseline", "RATS"] and final[1] is first[0]


def test_sweep_orders_nfes_and_has_the_teacher(studio, tiny_lora):
    items = studio.sweep(PROMPT, 0, nfes=[3, 1], teacher_nfe=4, lora=tiny_lora)
    assert [(i.label, i.nfe) for i in items] == [("Teacher", 4), ("Baseline", 1), ("RATS", 1),
                                                 ("Baseline", 3), ("RATS", 3)]


def test_mismatched_lora_is_named(studio, tmp_path):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    save_file({"transformer.nothing.lora_A.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(UserError, match="bad.safetensors does not fit this model"):
        studio.check_lora(bad)
    with pytest.raises(UserError, match="must be a .safetensors file"):
        (tmp_path / "x.bin").write_bytes(b"x")
        studio.check_lora(tmp_path / "x.bin")


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


def test_scores_show_the_ground_truth_beside_the_rewards(studio):
    """On an embedded world the table carries the checker's verdict and the fidelity fit."""
    import numpy as np
    from PIL import Image

    from rats_app.api import GeneratedImage
    from rats_app.worlds.shapes.render import render

    prompt = "a large blue square at the center on a gray background"
    items = [GeneratedImage(Image.fromarray(render(prompt, seed=1)), "Teacher", 50, 0.0),
             GeneratedImage(Image.fromarray(np.full((64, 64, 3), 128, np.uint8)), "Baseline", 3, 0.0)]
    studio.score(items, prompt)
    truth = {k: v for k, v in items[0].scores.items() if k.startswith("truth: ")}
    assert truth["truth: right"] == 1.0 and truth["truth: clean"] == 1.0 and truth["truth: sigma"] < 0.45
    assert items[1].scores["truth: right"] < 1.0 and "truth: sigma" not in items[1].scores  # nothing to fit
