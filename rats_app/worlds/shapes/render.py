"""Procedural renderer for Shapes World (contract v1).

Objects are rendered at 4x resolution and box-downsampled, which gives anti-aliased edges.
Quality degradations (the preference dimension, never named in the prompt) are applied after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rats_app.worlds import raster
from rats_app.worlds.palette import BACKGROUNDS, COLORS, MID_GRAY
from rats_app.worlds.shapes.prompts import POSITIONS, SIZES, Scene, parse_prompt

CANVAS = 64
SUPERSAMPLE = 4
SIZE_JITTER = 2.0
POSITION_JITTER = 3.0

# Degradation ranges (contract): blur sigma in px, additive noise sigma on 0-255,
# contrast factor = fraction of the distance to mid-gray that is kept.
BLUR_SIGMA = (1.0, 2.0)
NOISE_SIGMA = (8.0, 24.0)
CONTRAST_FACTOR = (0.3, 0.6)
DEGRADATION_KINDS = ("blur", "noise", "contrast")


@dataclass(frozen=True)
class Degradation:
    """Degradations applied in a fixed order: blur, then contrast, then noise."""

    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    contrast: float = 1.0
    noise_seed: int = 0

    @property
    def clean(self) -> bool:
        return self.blur_sigma == 0.0 and self.noise_sigma == 0.0 and self.contrast == 1.0

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k, on in zip(DEGRADATION_KINDS, (
            self.blur_sigma > 0, self.noise_sigma > 0, self.contrast != 1.0)) if on)


@dataclass(frozen=True)
class Placement:
    """Where the object actually is: bounding-box centre and side in px, after jitter."""

    cx: float
    cy: float
    side: float


@dataclass(frozen=True)
class Sample:
    scene: Scene
    placement: Placement
    degradation: Degradation = field(default_factory=Degradation)


def coverage(shape: str, placement: Placement, canvas: int = CANVAS,
             supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Fractional coverage in [0, 1] of each pixel by the shape (float32, canvas x canvas)."""
    return raster.coverage(shape, placement.cx, placement.cy, placement.side, canvas, supersample)


def degrade(image: np.ndarray, degradation: Degradation) -> np.ndarray:
    """Apply a degradation to a float HxWx3 image in 0-255; returns float."""
    out = image.astype(np.float64)
    if degradation.blur_sigma > 0:
        out = raster.gaussian_blur(out, degradation.blur_sigma)
    if degradation.contrast != 1.0:
        out = MID_GRAY + degradation.contrast * (out - MID_GRAY)
    if degradation.noise_sigma > 0:
        rng = np.random.default_rng(degradation.noise_seed)
        out = out + rng.normal(0.0, degradation.noise_sigma, size=out.shape)
    return out


def render_scene(sample: Sample) -> np.ndarray:
    """Render a sample to a uint8 64x64x3 RGB array."""
    alpha = coverage(sample.scene.shape, sample.placement)[..., None]
    background = np.asarray(BACKGROUNDS[sample.scene.background], dtype=np.float64)
    color = np.asarray(COLORS[sample.scene.color], dtype=np.float64)
    image = background * (1.0 - alpha) + color * alpha
    image = degrade(image, sample.degradation)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def sample_placement(scene: Scene, rng: np.random.Generator) -> Placement:
    cx, cy = POSITIONS[scene.position]
    return Placement(
        cx=cx + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
        cy=cy + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
        side=SIZES[scene.size] + rng.uniform(-SIZE_JITTER, SIZE_JITTER),
    )


def sample_degradation(rng: np.random.Generator, p_degraded: float = 0.5) -> Degradation:
    """Clean with probability 1 - p_degraded, else one or two distinct degradations."""
    if rng.random() >= p_degraded:
        return Degradation()
    count = 1 if rng.random() < 0.5 else 2
    kinds = rng.choice(len(DEGRADATION_KINDS), size=count, replace=False)
    params = {"noise_seed": int(rng.integers(2**31))}
    for k in kinds:
        kind = DEGRADATION_KINDS[k]
        if kind == "blur":
            params["blur_sigma"] = float(rng.uniform(*BLUR_SIGMA))
        elif kind == "noise":
            params["noise_sigma"] = float(rng.uniform(*NOISE_SIGMA))
        else:
            params["contrast"] = float(rng.uniform(*CONTRAST_FACTOR))
    return Degradation(**params)


def sample_scene(prompt: str, rng: np.random.Generator, p_degraded: float = 0.5) -> Sample:
    scene = parse_prompt(prompt)
    return Sample(scene, sample_placement(scene, rng), sample_degradation(rng, p_degraded))


def render(prompt: str, seed: int = 0, p_degraded: float = 0.0) -> np.ndarray:
    """Render one image of a prompt (clean by default) with jitter drawn from ``seed``."""
    return render_scene(sample_scene(prompt, np.random.default_rng(seed), p_degraded))
