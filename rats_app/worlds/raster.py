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
    # Every shape lies inside its bounding box: only the pixels it can touch (a pixel of margin against
    # rounding) are tested, the same sub-pixel centres and arithmetic, so the result is identical; the
    # ground-truth fit calls this thousands of times per image for an object a few percent of the canvas.
    half = side / 2.0
    (x0, x1), (y0, y1) = (_touched(c, half, canvas) for c in (cx, cy))
    counts = np.zeros((canvas, canvas), np.int32)
    if x1 > x0 and y1 > y0:
        xs, ys = centres[x0 * supersample:x1 * supersample], centres[y0 * supersample:y1 * supersample]
        inside = _inside(shape, xs[None, :] - cx, ys[:, None] - cy, half, side)
        counts[y0:y1, x0:x1] = inside.reshape(y1 - y0, supersample, x1 - x0, supersample).sum(axis=(1, 3),
                                                                                               dtype=np.int32)
    elif shape not in ("circle", "square", "triangle"):
        raise ValueError(f"unknown shape {shape!r}")
    return counts.astype(np.float32) / np.float32(supersample * supersample)


def _touched(centre: float, half: float, canvas: int) -> tuple[int, int]:
    """The pixel range [start, stop) that a shape spanning centre +- half can cover, clipped to the canvas."""
    reach = abs(half)
    if not np.isfinite(centre - reach) or not np.isfinite(centre + reach):
        return 0, 0  # a NaN placement covers nothing, as every comparison with it is false
    start, stop = int(np.floor(centre - reach)) - 1, int(np.ceil(centre + reach)) + 1
    return max(0, min(canvas, start)), max(0, min(canvas, stop))


def _inside(shape: str, dx: np.ndarray, dy: np.ndarray, half: float, side: float) -> np.ndarray:
    """Which sub-pixel centres, at offsets (dx, dy) from the shape's centre, the shape covers."""
    if shape == "circle":
        return dx * dx + dy * dy <= half * half
    if shape == "square":
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if shape == "triangle":
        depth = (dy + half) / side  # 0 at the apex, 1 at the base
        return (depth >= 0) & (depth <= 1) & (np.abs(dx) <= depth * half)
    raise ValueError(f"unknown shape {shape!r}")


def blur_matrix(size: int, sigma: float) -> np.ndarray:
    """The 1-D Gaussian blur along an axis of ``size`` pixels, edges replicated, as a size x size matrix.

    Taps that fall off the edge land on the edge pixel, which is what padding by replication does."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    pixels = np.arange(size)[:, None]
    columns = np.clip(pixels + taps, 0, size - 1)
    flat = (pixels * size + columns).ravel()  # bincount sums the weights of taps sharing an edge pixel
    return np.bincount(flat, np.broadcast_to(kernel, columns.shape).ravel(), size * size).reshape(size, size)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with edge replication (float H x W x C in, float64 out).

    Two small matrix products instead of a padded sum of shifted copies per tap: the ground-truth
    fit blurs thousands of candidate renders per image, and this is its inner loop."""
    channels_first = np.moveaxis(np.asarray(image, dtype=np.float64), -1, 0)
    height, width = channels_first.shape[1:]
    rows = blur_matrix(height, sigma)
    columns = rows if width == height else blur_matrix(width, sigma)
    out = rows @ channels_first @ columns.T
    return np.moveaxis(out, 0, -1)
