"""Moving Shapes as a world plugin (rats_app.worlds.base.World)."""

from __future__ import annotations

import os

import numpy as np

from rats_app.worlds.base import ASSETS, World
from rats_app.worlds.moving_shapes import prompts

SAMPLE_PROMPTS = (
    "a small red circle moving right on a white background",
    "a large blue square moving down on a gray background",
    "a small yellow triangle moving left on a black background",
    "a large green circle moving up on a white background",
    "a large orange circle moving right on a gray background",     # held out
    "a small purple triangle moving up on a black background",     # held out
)
# WanTransformer3DModel's self-attention (attn1) and feed-forward; its cross-attention is attn2.
SELF_ATTENTION_AND_FEED_FORWARD = ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                                   "ffn.net.0.proj", "ffn.net.2"]


class MovingShapes(World):
    id = "moving-shapes"
    title = "Moving Shapes"
    media = "video"
    model_dir = ASSETS / "shapes-wan"
    lora_dir = ASSETS / "shapes-wan-rats"
    reward = "moving-shapes"
    grammar = prompts
    sample_grid_prompts = SAMPLE_PROMPTS

    def examples(self) -> list[tuple[str, bool]]:
        return [(p, prompts.parse_prompt(p).held_out) for p in SAMPLE_PROMPTS]

    def train_defaults(self) -> dict:
        # One budget, 3 steps, in a run of at most 15 minutes on two CPU cores (~2.5 s a step). The video
        # reward spreads over ~15 points where the image world's spreads over ~2, and a gradient finds
        # texture it was never shown: Shapes World's lambda 0.01 and tau 1 close the gate within 50 steps
        # and double the reward with no clip more right. A gate temperature on the reward's scale and a
        # 20x smaller reward weight keep the student on its teacher (docs/moving-shapes.md, 2026-12-06).
        # The LoRA leaves the cross-attention (how the prompt is read) as the teacher has it: on unseen
        # (colour, shape, direction) combinations that kept 4 more held-out clips in 100 right (shape 86
        # against 82 %) than a LoRA on every attention (docs/moving-shapes.md, third session).
        return {"student_steps": 3, "student_steps_choices": [], "steps": 250, "reward_weight": 0.0005, "tau": 10.0,
                "lora_targets": list(SELF_ATTENTION_AND_FEED_FORWARD)}

    def check(self, media: np.ndarray, prompt: str):
        from rats_app.worlds.moving_shapes.checker import check_clip

        return check_clip(media, prompt)

    def rewards(self):
        def load(device):
            from rats_app.rewards.video_preference import load_video_preference

            path = os.environ.get("RATS_MOVING_SHAPES_REWARD", ASSETS / "moving-shapes-reward")
            return load_video_preference(path, name="moving-shapes", device=device,
                                         rebuild="python -m rats_app.worlds.moving_shapes.train_reward")
        return {"moving-shapes": load}


WORLD = MovingShapes()
