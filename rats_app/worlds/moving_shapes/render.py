"""Procedural renderer for Moving Shapes (contract v1): 9 frames of 32x32, one object moving.

The object's bounding-box centre moves in a straight line at 2 px per frame on a path centred on
the canvas; its size and start are jittered once per clip. Quality degradations (never named in
the prompt) are either per frame (blur, contrast, noise, flicker) or change the path itself
(jitter, stutter). Anti-aliasing: 4x supersampled coverage, as in Shapes World.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rats_app.worlds import raster
from rats_app.worlds.moving_shapes.prompts import DIRECTIONS, SIZES, Scene, parse_prompt
from rats_app.worlds.palette import BACKGROUNDS, COLORS, MID_GRAY

FRAMES = 9
CANVAS = 32
FPS = 8
SPEED = 2.0                   # px per frame along the path
PATH_START = 8.0              # the moving coordinate starts here (or at CANVAS - 8 going left / up)
SIZE_JITTER = 1.0
START_JITTER = 1.0            # along the motion
CROSS_JITTER = 3.0            # on the fixed coordinate

BLUR_SIGMA = (0.5, 1.0)
NOISE_SIGMA = (8.0, 24.0)
CONTRAST_FACTOR = (0.3, 0.6)
FLICKER_OFFSET = (10.0, 30.0)  # each frame's brightness offset, either sign
JITTER_PX = 2.0                # each frame's displacement off the path, per axis
STUTTER_HOLD = (2, 3)          # frames the object holds still before jumping back onto the path
DEGRADATION_KINDS = ("blur", "noise", "contrast", "flicker", "jitter", "stutter")


@dataclass(frozen=True)
class Placement:
    """The clip's straight path: the moving coordinate's start, the fixed coordinate, the side."""

    start: float
    cross: float
    side: float


@dataclass(frozen=True)
class Degradation:
    """Per-clip degradations; the empty default is a clean clip."""

    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    contrast: float = 1.0
    flicker: tuple[float, ...] = ()            # per-frame brightness offsets
    jitter: tuple[tuple[float, float], ...] = ()  # per-frame (dx, dy) off the path
    stutter: tuple[int, int] = (0, 0)           # (first held frame, frames held); (0, 0) = none
    noise_seed: int = 0

    @property
    def kinds(self) -> tuple[str, ...]:
        on = (self.blur_sigma > 0, self.noise_sigma > 0, self.contrast != 1.0, bool(self.flicker),
              bool(self.jitter), self.stutter[1] > 0)
        return tuple(k for k, flag in zip(DEGRADATION_KINDS, on) if flag)

    @property
    def clean(self) -> bool:
        return not self.kinds


@dataclass(frozen=True)
class Sample:
    scene: Scene
    placement: Placement
    degradation: Degradation = field(default_factory=Degradation)


def straight_path(direction: str, placement: Placement, frames: int = FRAMES) -> np.ndarray:
    """(frames, 2) bounding-box centres (x, y) on the straight constant-speed path."""
    ux, uy = DIRECTIONS[direction]
    along = placement.start + SPEED * np.arange(frames)
    if ux:  # horizontal: x moves (right: 8 -> 24; left: 24 -> 8), y fixed
        xs = along if ux > 0 else CANVAS - along
        return np.stack([xs, np.full(frames, placement.cross)], axis=1)
    ys = along if uy > 0 else CANVAS - along
    return np.stack([np.full(frames, placement.cross), ys], axis=1)


def path(sample: Sample, frames: int = FRAMES) -> np.ndarray:
    """The centres the object is actually drawn at: the straight path, then jitter and stutter."""
    centres = straight_path(sample.scene.direction, sample.placement, frames)
    first, held = sample.degradation.stutter
    if held:
        centres[first + 1:first + held] = centres[first]  # holds still, then jumps back onto the path
    if sample.degradation.jitter:
        centres = centres + np.asarray(sample.degradation.jitter, dtype=np.float64)
    return centres


def render_clip(sample: Sample) -> np.ndarray:
    """Render a sample to uint8 (9, 32, 32, 3)."""
    background = np.asarray(BACKGROUNDS[sample.scene.background], dtype=np.float64)
    color = np.asarray(COLORS[sample.scene.color], dtype=np.float64)
    d = sample.degradation
    noise = np.random.default_rng(d.noise_seed)
    frames = []
    for i, (cx, cy) in enumerate(path(sample)):
        alpha = raster.coverage(sample.scene.shape, cx, cy, sample.placement.side, CANVAS)[..., None]
        image = background * (1.0 - alpha) + color * alpha
        if d.blur_sigma > 0:
            image = raster.gaussian_blur(image, d.blur_sigma)
        if d.contrast != 1.0:
            image = MID_GRAY + d.contrast * (image - MID_GRAY)
        if d.flicker:
            image = image + d.flicker[i]
        if d.noise_sigma > 0:
            image = image + noise.normal(0.0, d.noise_sigma, size=image.shape)
        frames.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return np.stack(frames)


def sample_placement(scene: Scene, rng: np.random.Generator) -> Placement:
    return Placement(start=PATH_START + rng.uniform(-START_JITTER, START_JITTER),
                     cross=CANVAS / 2 + rng.uniform(-CROSS_JITTER, CROSS_JITTER),
                     side=SIZES[scene.size] + rng.uniform(-SIZE_JITTER, SIZE_JITTER))


def _degradation_parameters(kind: str, rng: np.random.Generator) -> dict:
    if kind == "blur":
        return {"blur_sigma": float(rng.uniform(*BLUR_SIGMA))}
    if kind == "noise":
        return {"noise_sigma": float(rng.uniform(*NOISE_SIGMA))}
    if kind == "contrast":
        return {"contrast": float(rng.uniform(*CONTRAST_FACTOR))}
    if kind == "flicker":
        magnitudes = rng.uniform(*FLICKER_OFFSET, size=FRAMES)
        return {"flicker": tuple(float(m) for m in magnitudes * rng.choice([-1.0, 1.0], size=FRAMES))}
    if kind == "jitter":
        return {"jitter": tuple((float(dx), float(dy)) for dx, dy in rng.uniform(-JITTER_PX, JITTER_PX, (FRAMES, 2)))}
    held = int(rng.integers(STUTTER_HOLD[0], STUTTER_HOLD[1] + 1))
    # Motion before the hold and a frame to jump back on after it.
    return {"stutter": (int(rng.integers(1, FRAMES - held)), held)}


def make_degradation(kinds: tuple[str, ...], rng: np.random.Generator) -> Degradation:
    """A degradation of exactly these kinds, with parameters drawn from the contract's ranges."""
    params = {"noise_seed": int(rng.integers(2**31))}
    for kind in kinds:
        if kind not in DEGRADATION_KINDS:
            raise ValueError(f"unknown degradation {kind!r}; expected one of {DEGRADATION_KINDS}")
        params.update(_degradation_parameters(kind, rng))
    return Degradation(**params)


def sample_degradation(rng: np.random.Generator, p_degraded: float = 0.5) -> Degradation:
    """Clean with probability 1 - p_degraded, else one or two distinct degradations."""
    if rng.random() >= p_degraded:
        return Degradation()
    count = 1 if rng.random() < 0.5 else 2
    kinds = rng.choice(len(DEGRADATION_KINDS), size=count, replace=False)
    return make_degradation(tuple(DEGRADATION_KINDS[k] for k in sorted(kinds)), rng)


def sample_clip(prompt: str, rng: np.random.Generator, p_degraded: float = 0.5) -> Sample:
    scene = parse_prompt(prompt)
    return Sample(scene, sample_placement(scene, rng), sample_degradation(rng, p_degraded))


def render(prompt: str, seed: int = 0, p_degraded: float = 0.0) -> np.ndarray:
    """Render one clip of a prompt (clean by default) with jitter drawn from ``seed``."""
    return render_clip(sample_clip(prompt, np.random.default_rng(seed), p_degraded))
