"""Anti-aliased shape coverage and Gaussian blur: the drawing primitives of both embedded worlds.

Shapes are rendered at ``supersample`` x the canvas and box-downsampled, which anti-aliases their
edges as the contracts ask. Circle = filled disc of diameter ``side``; square axis-aligned;
triangle apex up with base = height = ``side``.
"""

from __future__ import annotations

import numpy as np


def coverage(shape: str, cx: float, cy: float, side: float, canvas: int, supersample: int = 4) -> np.ndarray:
    """Fractional coverage in [0, 1] of each pixel by the shape (float32, canvas x canvas).

    (cx, cy) is the bounding-box centre in pixels, x to the right and y down."""
    n = canvas * supersample
    centres = (np.arange(n, dtype=np.float32) + 0.5) / supersample
    dx, dy = centres[None, :] - cx, centres[:, None] - cy
    half = side / 2.0
    if shape == "circle":
        inside = dx * dx + dy * dy <= half * half
    elif shape == "square":
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    elif shape == "triangle":
        depth = (dy + half) / side  # 0 at the apex, 1 at the base
        inside = (depth >= 0) & (depth <= 1) & (np.abs(dx) <= depth * half)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return inside.astype(np.float32).reshape(canvas, supersample, canvas, supersample).mean(axis=(1, 3))


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with edge replication (float H x W x C)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(image, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    out = sum(w * padded[i:i + image.shape[0]] for i, w in enumerate(kernel))
    padded = np.pad(out, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(w * padded[:, i:i + image.shape[1]] for i, w in enumerate(kernel))
