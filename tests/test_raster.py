"""The drawing primitives both worlds and the ground-truth fit share."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from rats_app.worlds.raster import blur_matrix, coverage, gaussian_blur


@pytest.mark.parametrize("sigma", [1.0, 2.0])
@pytest.mark.parametrize("shape", [(32, 32, 1), (20, 33, 3)])
def test_gaussian_blur_is_scipys_with_replicated_edges(sigma, shape):
    # scipy's radius int(truncate * sigma + 0.5) equals ours, ceil(3 sigma), at these sigmas.
    image = np.random.default_rng(0).random(shape).astype(np.float32) * 255
    expected = gaussian_filter1d(gaussian_filter1d(image.astype(np.float64), sigma, axis=0, mode="nearest", truncate=3.0),
                                 sigma, axis=1, mode="nearest", truncate=3.0)
    out = gaussian_blur(image, sigma)
    assert out.dtype == np.float64 and out.shape == shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9)


def test_blur_matrix_rows_sum_to_one_and_fold_the_edge_taps():
    matrix = blur_matrix(8, 0.8)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    # Row 0: the taps left of the canvas land on pixel 0.
    taps = np.exp(-0.5 * (np.arange(-3, 4) / 0.8) ** 2)
    taps /= taps.sum()
    np.testing.assert_allclose(matrix[0, :4], [taps[:4].sum(), *taps[4:]], atol=1e-12)


def test_coverage_counts_sub_pixels():
    square = coverage("square", 4.0, 4.0, 2.0, 8)  # pixels 3 and 4 on both axes, fully covered
    assert square.dtype == np.float32
    assert square.sum() == 4.0 and square[3:5, 3:5].min() == 1.0
    half = coverage("square", 4.25, 4.0, 2.0, 8, supersample=4)  # a quarter pixel to the right
    np.testing.assert_array_equal(half[3, 3:6], np.float32([0.75, 1.0, 0.25]))


def _full_canvas_coverage(shape, cx, cy, side, canvas, supersample=4):
    """The reference: every sub-pixel of the canvas tested (what coverage computed before it kept to
    the shape's bounding box)."""
    centres = (np.arange(canvas * supersample, dtype=np.float32) + 0.5) / supersample
    dx, dy, half = centres[None, :] - cx, centres[:, None] - cy, side / 2.0
    if shape == "circle":
        inside = dx * dx + dy * dy <= half * half
    elif shape == "square":
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    else:
        depth = (dy + half) / side
        inside = (depth >= 0) & (depth <= 1) & (np.abs(dx) <= depth * half)
    counts = inside.reshape(canvas, supersample, canvas, supersample).sum(axis=(1, 3), dtype=np.int32)
    return counts.astype(np.float32) / np.float32(supersample * supersample)


def test_coverage_within_the_bounding_box_is_identical_to_the_full_canvas():
    """Bit for bit, for float and float64 placements, on pixel and sub-pixel boundaries, at and past
    the canvas edges."""
    from rats_app.worlds.raster import coverage

    rng = np.random.default_rng(0)
    cases = [(s, float(x), float(y), float(d)) for s in ("circle", "square", "triangle")
             for x, y, d in rng.uniform([-6, -6, 0.5], [70, 70, 40], size=(300, 3))]
    cases += [(s, x, y, d) for s in ("circle", "square", "triangle") for x, y, d in
              [(32.0, 32.0, 8.0), (0.0, 0.0, 4.0), (64.0, 64.0, 6.0), (31.875, 12.125, 7.75), (2.5, 61.5, 5.0)]]
    for shape, x, y, d in cases:
        for cx, cy, side in ((x, y, d), (np.float64(x), np.float64(y), np.float64(d)),
                             (np.float32(x), np.float32(y), np.float32(d))):
            np.testing.assert_array_equal(coverage(shape, cx, cy, side, 64),
                                          _full_canvas_coverage(shape, cx, cy, side, 64), err_msg=str((shape, x, y, d)))
    assert not coverage("circle", float("nan"), 3.0, 5.0, 64).any()
