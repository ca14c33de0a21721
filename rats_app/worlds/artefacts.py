"""Reward-hacking artefacts drawn onto clean renders: what a student pushed up a learned reward
learns to paint, so that a reward can be taught to rank them below the clean render.

The first RATS students on Shapes World bought reward with dark rims around objects, colour casts
at their edges and a faint regular background texture (docs/method.md), and the ground-truth fit
showed it as residual (rims and textures are not blur). Each function takes a clean uint8 render
(H x W x 3) and its background colour and returns the render with one artefact; the object is
found as the pixels that differ from the background.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation, binary_erosion

from rats_app.worlds.raster import gaussian_blur

ARTEFACTS = ("dark_rim", "bright_halo", "edge_cast", "oversharpen", "texture")
# Off the palette, not a defect the fit's residual sees (its colours are free): the error to the ideal
# render does. The v3 reward never saw it and ranks a 20-level cast below the clean render only 63 % of
# the time; few-step students drift there (docs/method.md, 2026-12-05).
COLOUR_CASTS = ("object_cast",)


def object_mask(image: np.ndarray, background) -> np.ndarray:
    return np.abs(image.astype(np.float32) - np.asarray(background, np.float32)).max(-1) > 8


def _band(mask: np.ndarray, inside: bool, outside: bool) -> np.ndarray:
    band = np.zeros_like(mask)
    if inside:
        band |= mask & ~binary_erosion(mask)
    if outside:
        band |= binary_dilation(mask) & ~mask
    return band


def dark_rim(image, background, rng) -> np.ndarray:
    """The object's outline darkened (inside and out), as the hacked students drew it."""
    band = _band(object_mask(image, background), True, bool(rng.integers(2)))
    out = image.astype(np.float32)
    out[band] *= rng.uniform(0.45, 0.85)
    return out


def bright_halo(image, background, rng) -> np.ndarray:
    """A light ring just outside the object (on a white background, where nothing is lighter, a grey one)."""
    band = _band(object_mask(image, background), False, True)
    out = image.astype(np.float32)
    target = 255.0 if np.mean(background) < 200 else 128.0
    out[band] += rng.uniform(0.15, 0.6) * (target - out[band])
    return out


def edge_cast(image, background, rng) -> np.ndarray:
    """The object's edge tinted with a colour of neither object nor background."""
    band = _band(object_mask(image, background), True, True)
    out = image.astype(np.float32)
    tint = rng.uniform(0, 255, size=3)
    out[band] += rng.uniform(0.15, 0.45) * (tint - out[band])
    return out


def object_cast(image, background, rng) -> np.ndarray:
    """The whole object's colour moved off the palette by 12-40 levels in a random RGB direction."""
    out = image.astype(np.float32)
    direction = rng.normal(size=3)
    out[object_mask(image, background)] += rng.uniform(12.0, 40.0) * direction / np.linalg.norm(direction)
    return out


def oversharpen(image, background, rng) -> np.ndarray:
    """Unsharp masking: overshoot on both sides of every edge."""
    out = image.astype(np.float32)
    amount = rng.uniform(0.3, 1.5)
    return out + amount * (out - gaussian_blur(out, float(rng.uniform(0.7, 1.2))))


def texture(image, background, rng) -> np.ndarray:
    """A faint regular pattern on the whole canvas (a few grey levels)."""
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    period = rng.uniform(2.0, 6.0)
    angle = rng.uniform(0, np.pi)
    wave = np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    return image.astype(np.float32) + rng.uniform(3.0, 10.0) * wave[..., None]


FUNCTIONS = {"dark_rim": dark_rim, "bright_halo": bright_halo, "edge_cast": edge_cast, "oversharpen": oversharpen,
             "texture": texture, "object_cast": object_cast}


def apply_artefact(image: np.ndarray, background, rng: np.random.Generator, kind: str | None = None,
                   kinds: tuple[str, ...] = ARTEFACTS) -> np.ndarray:
    """``image`` with one artefact (``kind``, or one drawn from ``kinds``), as uint8."""
    kind = kind or kinds[rng.integers(len(kinds))]
    return np.clip(np.round(FUNCTIONS[kind](image, background, rng)), 0, 255).astype(np.uint8)
