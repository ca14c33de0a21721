"""Shapes World: the embedded offline default domain (see docs/shapes-world.md).

A procedural 64x64 image domain, its prompt grammar, degradations that define image quality,
and a ground-truth checker. The pretrained teacher and the preference reward are built on it.
"""

from rats_app.worlds.shapes.prompts import (
    BACKGROUNDS,
    COLORS,
    HELD_OUT,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    all_prompts,
    held_out_prompts,
    parse_prompt,
    training_prompts,
)
from rats_app.worlds.shapes.render import Degradation, render, render_scene, sample_scene

__all__ = [
    "BACKGROUNDS", "COLORS", "HELD_OUT", "POSITIONS", "SHAPES", "SIZES", "Scene", "Degradation",
    "all_prompts", "held_out_prompts", "parse_prompt", "training_prompts",
    "render", "render_scene", "sample_scene",
]
