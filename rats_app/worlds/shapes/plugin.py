"""Shapes World as a world plugin (rats_app.worlds.base.World)."""

from __future__ import annotations

import os

import numpy as np

from rats_app.worlds.base import ASSETS, World
from rats_app.worlds.shapes import prompts

SAMPLE_PROMPTS = (
    "a small red circle at the top left on a white background",
    "a large blue square at the center on a gray background",
    "a small yellow triangle at the bottom right on a black background",
    "a large green circle at the top right on a white background",
    "a small purple square at the bottom left on a gray background",
    "a large orange triangle at the top left on a black background",
    "a large purple triangle at the center on a white background",   # held out
    "a small orange circle at the top right on a gray background",   # held out
)


class ShapesWorld(World):
    id = "shapes-world"
    title = "Shapes World"
    media = "image"
    model_dir = ASSETS / "shapes-flux"
    lora_dir = ASSETS / "shapes-flux-rats"
    reward = "shapes"
    grammar = prompts
    sample_grid_prompts = SAMPLE_PROMPTS

    def examples(self) -> list[tuple[str, bool]]:
        train, held_out = self.training_prompts(), self.held_out_prompts()
        return [(train[0], False), (train[250], False), (train[409], False), (held_out[4], True), (held_out[20], True)]

    def train_defaults(self) -> dict:
        # CFG 3 is this teacher's scale at 50 steps; in one or two steps it overshoots colour (the 2-step
        # object ~20 RGB levels off its palette). The student is trained and sampled at CFG 2, with K = 2
        # drawn twice as often (it learns slowest). At 1 and 2 steps it samples at 1.75, and at 2 on the
        # grid [1, 0.6] (its last step starts less noisy, so it draws sharper): nearer the ideal render on
        # both prompt sets, where 1.75 at 3 to 8 steps, or training on that grid, cost held-out correctness
        # (docs/method.md, 2026-12-06). An 8-step teacher grid, 120 steps and a truth line every 20 steps
        # keep the run within 3 minutes on two CPU cores.
        return {"student_cfg": 2.0, "sample_cfg_by_nfe": {1: 1.75, 2: 1.75}, "sample_sigmas_by_nfe": {2: [1.0, 0.6]},
                "student_steps_weights": [1, 2, 1, 1, 1, 1], "steps": 120, "teacher_steps": 8, "watch_every": 20}

    def check(self, media: np.ndarray, prompt: str):
        from rats_app.worlds.shapes.checker import check_image

        return check_image(media, prompt)

    def rewards(self):
        def load(device):
            from rats_app.rewards.shapes import load_shapes_reward

            return load_shapes_reward(os.environ.get("RATS_SHAPES_REWARD", ASSETS / "shapes-reward"), device=device)
        return {"shapes": load}


WORLD = ShapesWorld()
