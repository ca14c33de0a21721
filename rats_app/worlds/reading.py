"""Reading a rendered object back from pixels: what both worlds' ground-truth checkers share.

No learned model: the object is segmented from the (median) background colour, background,
colour and contrast are fitted jointly against the palette, the bounding box gives size and
place, and the shape is the template that best explains the soft mask. Quality: contrast pulled
to gray, additive noise in the flat background, soft (blurred) edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rats_app.worlds.palette import BACKGROUNDS, COLORS, MID_GRAY, SHAPES
from rats_app.worlds.raster import coverage, gaussian_blur

CONTRASTS = np.linspace(0.2, 1.15, 96)
SOFT_TEMPLATE_BLURS = (1.0, 1.5, 2.0)


@dataclass
class CheckResult:
    predicted: dict[str, str]
    right: dict[str, bool] = field(default_factory=dict)
    clean: bool = True
    defects: tuple[str, ...] = ()
    measurements: dict[str, float] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        """Every attribute right."""
        return bool(self.right) and all(self.right.values())


@dataclass(frozen=True)
class Segmentation:
    """One frame's object against its background (colours in 0-255, coverages in [0, 1])."""

    image: np.ndarray       # float H x W x 3
    smooth: np.ndarray      # 3x3 box-filtered image
    background: np.ndarray  # median colour
    object: np.ndarray      # median colour of the pixels farthest from the background
    alpha_raw: np.ndarray   # each pixel's place on the background -> object line
    alpha: np.ndarray       # the same on the smoothed image

    @property
    def object_contrast(self) -> float:
        return float(np.linalg.norm(self.object - self.background))


def smooth3(image: np.ndarray) -> np.ndarray:
    """3x3 box filter: tames additive noise before segmentation."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(padded[i:i + image.shape[0], j:j + image.shape[1]] for i in range(3) for j in range(3)) / 9.0


def segment(image: np.ndarray, background: np.ndarray | None = None, obj: np.ndarray | None = None) -> Segmentation:
    """Segment a uint8 H x W x 3 image; ``background`` / ``obj`` override the measured colours."""
    img = np.asarray(image).astype(np.float64)
    smooth = smooth3(img)
    bg = np.median(img.reshape(-1, 3), axis=0) if background is None else background
    if obj is None:
        dist = np.linalg.norm(smooth - bg, axis=2)
        far = dist > 0.5 * np.percentile(dist, 99.5)
        obj = np.median(smooth[far], axis=0) if far.any() else bg
    axis = obj - bg
    scale = max(axis @ axis, 1e-6)
    alpha_raw = np.clip(((img - bg) @ axis) / scale, 0.0, 1.0)
    alpha = np.clip(((smooth - bg) @ axis) / scale, 0.0, 1.0)
    return Segmentation(img, smooth, bg, obj, alpha_raw, alpha)


def fit_palette(bg: np.ndarray, obj: np.ndarray) -> tuple[str, str, float]:
    """Background, colour and contrast factor that best explain the two measured colours."""
    best, best_err = ("white", "red", 1.0), np.inf
    for bname, bcol in BACKGROUNDS.items():
        b = MID_GRAY + CONTRASTS[:, None] * (np.asarray(bcol, float) - MID_GRAY)
        err_b = ((b - bg) ** 2).sum(1)
        for cname, ccol in COLORS.items():
            c = MID_GRAY + CONTRASTS[:, None] * (np.asarray(ccol, float) - MID_GRAY)
            err = err_b + ((c - obj) ** 2).sum(1)
            k = int(np.argmin(err))
            if err[k] < best_err:
                best, best_err = (bname, cname, float(CONTRASTS[k])), err[k]
    return best


def box_from_mask(mask: np.ndarray) -> tuple[float, float, float] | None:
    """Bounding-box centre and side, correcting for objects clipped by the canvas edge."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 4:
        return None
    n = mask.shape[0]
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = float(max(x1 - x0, y1 - y0))
    # All three shapes have square bounding boxes: a clipped side is recovered from the other.
    if x0 == 0 and x1 - x0 < side:
        x0 = x1 - side
    elif x1 == n and x1 - x0 < side:
        x1 = x0 + side
    if y0 == 0 and y1 - y0 < side:
        y0 = y1 - side
    elif y1 == n and y1 - y0 < side:
        y1 = y0 + side
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0, side


def best_shape(alpha_smooth: np.ndarray, box: tuple[float, float, float],
               blurs: tuple[float, ...] = (0.0,)) -> tuple[str, float]:
    """Shape whose template best explains the smoothed soft mask.

    Templates are rendered around the measured box, blurred at the given levels and smoothed like
    the measurement, so small blurred objects are read as reliably as sharp ones. Returns the
    shape and its fit (1 - relative squared error, 1 = perfect).
    """
    cx, cy, side = box
    canvas = alpha_smooth.shape[0]
    # Compare only in a window around the object: far pixels are background in every template.
    r = int(side / 2 + 8)
    ys = slice(max(0, int(cy) - r), min(canvas, int(cy) + r))
    xs = slice(max(0, int(cx) - r), min(canvas, int(cx) + r))
    alpha_smooth = alpha_smooth[ys, xs]
    energy = max(float((alpha_smooth ** 2).sum()), 1e-6)
    scores = {}
    for shape in SHAPES:
        best = np.inf
        for ds in (-1.0, 0.0, 1.0, 2.0):
            for dx in (-0.5, 0.0, 0.5):
                for dy in (-1.0, -0.5, 0.0, 0.5):
                    tmpl = coverage(shape, cx + dx, cy + dy, side + ds, canvas, supersample=2)[..., None]
                    for sigma in blurs:
                        blurred = gaussian_blur(tmpl, sigma) if sigma else tmpl
                        best = min(best, float(((smooth3(blurred)[ys, xs, 0] - alpha_smooth) ** 2).sum()))
        scores[shape] = 1.0 - best / energy
    shape = max(scores, key=scores.get)
    return shape, scores[shape]


def perimeter(shape: str, side: float) -> float:
    if shape == "circle":
        return float(np.pi * side)
    if shape == "triangle":
        return float(side * (1 + 2 * np.sqrt(1.25)))
    return 4.0 * side


def edge_width(alpha_raw: np.ndarray, shape: str, side: float) -> float:
    """Pixels of partial coverage per pixel of perimeter: ~1 for sharp anti-aliased edges."""
    return float(((alpha_raw > 0.1) & (alpha_raw < 0.9)).sum()) / max(perimeter(shape, side), 1.0)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(radius):
        padded = np.pad(out, 1)
        out = padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    return out


def background_noise(seg: Segmentation) -> float:
    """Robust standard deviation (0-255) of the background pixels away from the object."""
    residual = (seg.image - seg.background)[~dilate(seg.alpha > 0.02, 3)]
    return float(1.4826 * np.median(np.abs(residual - np.median(residual, axis=0)))) if residual.size else 0.0
