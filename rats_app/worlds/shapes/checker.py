"""Ground-truth checker: read a 64x64 image, say which attributes are right and if it is clean.

It needs no learned model. It segments the object from the (median) background colour, fits
background, colour and contrast jointly against the palette, measures the bounding box (size,
position), picks the shape whose rendered template overlaps the object best, and judges quality:
contrast pulled to gray, additive noise in the flat background, or soft (blurred) edges.
Calibrated on rendered images (see tests/test_checker.py for its measured accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rats_app.worlds.shapes.prompts import ATTRIBUTES, BACKGROUNDS, COLORS, POSITIONS, SHAPES, Scene, parse_prompt
from rats_app.worlds.raster import gaussian_blur
from rats_app.worlds.shapes.render import MID_GRAY, Placement, coverage

_CONTRASTS = np.linspace(0.2, 1.15, 96)
_SIZE_SPLIT = (16 + 28) / 2
# Quality thresholds, set between what clean renders and the mildest degradation produce.
MIN_CLEAN_CONTRAST = 0.8      # fitted contrast factor; degraded images have <= 0.6
MAX_CLEAN_NOISE = 4.0         # robust std (0-255) of background pixels; degraded noise >= 8
MAX_CLEAN_EDGE_WIDTH = 1.6    # px of partial coverage across an edge; sharp AA edges ~1, blur >= 2.3


@dataclass
class CheckResult:
    predicted: dict[str, str]
    right: dict[str, bool] = field(default_factory=dict)
    clean: bool = True
    defects: tuple[str, ...] = ()
    measurements: dict[str, float] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        """All five attributes right."""
        return bool(self.right) and all(self.right.values())


def _smooth(image: np.ndarray) -> np.ndarray:
    """3x3 box filter: tames additive noise before segmentation."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(padded[i:i + image.shape[0], j:j + image.shape[1]] for i in range(3) for j in range(3)) / 9.0


def _fit_palette(bg: np.ndarray, obj: np.ndarray) -> tuple[str, str, float]:
    """Background, colour and contrast factor that best explain the two measured colours."""
    best, best_err = ("white", "red", 1.0), np.inf
    for bname, bcol in BACKGROUNDS.items():
        b = MID_GRAY + _CONTRASTS[:, None] * (np.asarray(bcol, float) - MID_GRAY)
        err_b = ((b - bg) ** 2).sum(1)
        for cname, ccol in COLORS.items():
            c = MID_GRAY + _CONTRASTS[:, None] * (np.asarray(ccol, float) - MID_GRAY)
            err = err_b + ((c - obj) ** 2).sum(1)
            k = int(np.argmin(err))
            if err[k] < best_err:
                best, best_err = (bname, cname, float(_CONTRASTS[k])), err[k]
    return best


def _box_from_mask(mask: np.ndarray) -> tuple[float, float, float] | None:
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


_SOFT_TEMPLATE_BLURS = (1.0, 1.5, 2.0)


def _best_shape(alpha_smooth: np.ndarray, box: tuple[float, float, float],
                blurs: tuple[float, ...] = (0.0,)) -> tuple[str, float]:
    """Shape whose template best explains the smoothed soft mask.

    Templates are rendered around the measured box, blurred at the contract's blur levels and
    smoothed like the measurement, so small blurred objects are read as reliably as sharp ones.
    Returns the shape and its fit (1 - relative squared error, 1 = perfect).
    """
    cx, cy, side = box
    # Compare only in a window around the object: far pixels are background in every template.
    r = int(side / 2 + 8)
    ys = slice(max(0, int(cy) - r), min(64, int(cy) + r))
    xs = slice(max(0, int(cx) - r), min(64, int(cx) + r))
    alpha_smooth = alpha_smooth[ys, xs]
    energy = max(float((alpha_smooth ** 2).sum()), 1e-6)
    scores = {}
    for shape in SHAPES:
        best = np.inf
        for ds in (-1.0, 0.0, 1.0, 2.0):
            for dx in (-0.5, 0.0, 0.5):
                for dy in (-1.0, -0.5, 0.0, 0.5):
                    tmpl = coverage(shape, Placement(cx + dx, cy + dy, side + ds), supersample=2)[..., None]
                    for sigma in blurs:
                        blurred = gaussian_blur(tmpl, sigma) if sigma else tmpl
                        err = float(((_smooth(blurred)[ys, xs, 0] - alpha_smooth) ** 2).sum())
                        best = min(best, err)
        scores[shape] = 1.0 - best / energy
    shape = max(scores, key=scores.get)
    return shape, scores[shape]


def check_image(image: np.ndarray, prompt: str | Scene | None = None) -> CheckResult:
    """Read one uint8 64x64x3 image; compare with ``prompt`` when given."""
    image = np.asarray(image)
    if image.shape != (64, 64, 3):
        raise ValueError(f"expected a 64x64x3 RGB image, got shape {image.shape}")
    img = image.astype(np.float64)
    smooth = _smooth(img)
    bg = np.median(img.reshape(-1, 3), axis=0)
    dist = np.linalg.norm(smooth - bg, axis=2)
    far = dist > 0.5 * np.percentile(dist, 99.5)
    obj = np.median(smooth[far], axis=0) if far.any() else bg
    axis = obj - bg
    # Soft coverage: projection of each pixel on the background->object colour line.
    alpha_raw = np.clip(((img - bg) @ axis) / max(axis @ axis, 1e-6), 0.0, 1.0)
    alpha = np.clip(((smooth - bg) @ axis) / max(axis @ axis, 1e-6), 0.0, 1.0)
    background, color, contrast = _fit_palette(bg, obj)
    predicted = {"background": background, "color": color}
    measurements = {"contrast": contrast, "object_contrast": float(np.linalg.norm(axis))}
    box = _box_from_mask(alpha > 0.5) if np.linalg.norm(axis) > 15 else None
    if box is None:
        predicted.update(shape="none", size="none", position="none")
    else:
        cx, cy, side = box
        predicted["size"] = "small" if side < _SIZE_SPLIT else "large"
        predicted["position"] = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
        predicted["shape"], fit = _best_shape(alpha, box)
        edge_width = float(((alpha_raw > 0.1) & (alpha_raw < 0.9)).sum()) / max(
            _perimeter(predicted["shape"], side), 1.0)
        if edge_width > MAX_CLEAN_EDGE_WIDTH:  # soft edges: read the shape with blurred templates
            predicted["shape"], fit = _best_shape(alpha, box, _SOFT_TEMPLATE_BLURS)
        measurements.update(cx=cx, cy=cy, side=side, shape_fit=fit, edge_width=edge_width)
    # Quality.
    defects = []
    if contrast < MIN_CLEAN_CONTRAST:
        defects.append("contrast")
    near_object = _dilate(alpha > 0.02, 3)
    residual = (img - bg)[~near_object]
    noise = float(1.4826 * np.median(np.abs(residual - np.median(residual, axis=0)))) if residual.size else 0.0
    measurements["noise"] = noise
    if noise > MAX_CLEAN_NOISE:
        defects.append("noise")
    elif measurements.get("edge_width", 0.0) > MAX_CLEAN_EDGE_WIDTH:  # noise alone widens edges too
        defects.append("blur")
    result = CheckResult(predicted=predicted, clean=not defects, defects=tuple(defects),
                         measurements=measurements)
    if prompt is not None:
        scene = parse_prompt(prompt) if isinstance(prompt, str) else prompt
        result.right = {a: predicted[a] == getattr(scene, a) for a in ATTRIBUTES}
    return result


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(radius):
        padded = np.pad(out, 1)
        out = padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    return out


def _perimeter(shape: str, side: float) -> float:
    if shape == "circle":
        return float(np.pi * side)
    if shape == "triangle":
        return float(side * (1 + 2 * np.sqrt(1.25)))
    return 4.0 * side


def summarize(results: list[CheckResult]) -> dict[str, float]:
    """Rates over many images: each attribute, all five ("correct"), and clean."""
    n = max(len(results), 1)
    summary = {a: sum(r.right.get(a, False) for r in results) / n for a in ATTRIBUTES}
    summary["correct"] = sum(r.correct for r in results) / n
    summary["clean"] = sum(r.clean for r in results) / n
    summary["count"] = len(results)
    return summary
