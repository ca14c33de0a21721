"""Ground-truth checker: read a 64x64 image, say which attributes are right and if it is clean.

It needs no learned model (rats_app.worlds.reading): the object is segmented from the background,
background, colour and contrast are fitted against the palette, the bounding box gives size and
position, the best template gives the shape; quality is contrast, background noise or soft edges.
Calibrated on rendered images (see tests/test_checker.py for its measured accuracy).
"""

from __future__ import annotations

import numpy as np

from rats_app.worlds.fidelity import FIDELITY, Bounds, Fit, fit_render
from rats_app.worlds.palette import BACKGROUNDS, COLORS
from rats_app.worlds.reading import (
    SOFT_TEMPLATE_BLURS,
    CheckResult,
    background_noise,
    best_shape,
    box_from_mask,
    edge_width,
    fit_palette,
    segment,
)
from rats_app.worlds.shapes.prompts import ATTRIBUTES, POSITIONS, SIZES, Scene, parse_prompt
from rats_app.worlds.shapes.render import POSITION_JITTER, SIZE_JITTER

_SIZE_SPLIT = (16 + 28) / 2
# Quality thresholds, set between what clean renders and the mildest degradation produce.
MIN_CLEAN_CONTRAST = 0.8      # fitted contrast factor; degraded images have <= 0.6
MAX_CLEAN_NOISE = 4.0         # robust std (0-255) of background pixels; degraded noise >= 8
MAX_CLEAN_EDGE_WIDTH = 1.6    # px of partial coverage across an edge; sharp AA edges ~1, blur >= 2.3


def check_image(image: np.ndarray, prompt: str | Scene | None = None) -> CheckResult:
    """Read one uint8 64x64x3 image; compare with ``prompt`` when given."""
    image = np.asarray(image)
    if image.shape != (64, 64, 3):
        raise ValueError(f"expected a 64x64x3 RGB image, got shape {image.shape}")
    seg = segment(image)
    background, color, contrast = fit_palette(seg.background, seg.object)
    predicted = {"background": background, "color": color}
    measurements = {"contrast": contrast, "object_contrast": seg.object_contrast}
    box = box_from_mask(seg.alpha > 0.5) if seg.object_contrast > 15 else None
    if box is None:
        predicted.update(shape="none", size="none", position="none")
    else:
        cx, cy, side = box
        predicted["size"] = "small" if side < _SIZE_SPLIT else "large"
        predicted["position"] = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
        predicted["shape"], fit = best_shape(seg.alpha, box)
        width = edge_width(seg.alpha_raw, predicted["shape"], side)
        if width > MAX_CLEAN_EDGE_WIDTH:  # soft edges: read the shape with blurred templates
            predicted["shape"], fit = best_shape(seg.alpha, box, SOFT_TEMPLATE_BLURS)
        measurements.update(cx=cx, cy=cy, side=side, shape_fit=fit, edge_width=width)
    # Quality.
    defects = []
    if contrast < MIN_CLEAN_CONTRAST:
        defects.append("contrast")
    measurements["noise"] = noise = background_noise(seg)
    if noise > MAX_CLEAN_NOISE:
        defects.append("noise")
    elif measurements.get("edge_width", 0.0) > MAX_CLEAN_EDGE_WIDTH:  # noise alone widens edges too
        defects.append("blur")
    result = CheckResult(predicted=predicted, clean=not defects, defects=tuple(defects),
                         measurements=measurements)
    if prompt is not None:
        scene = parse_prompt(prompt) if isinstance(prompt, str) else prompt
        result.right = {a: predicted[a] == getattr(scene, a) for a in ATTRIBUTES}
        if box is not None:
            measurements.update(fidelity(image, scene, box))
    return result


def fit_scene(image: np.ndarray, scene: Scene, box: tuple[float, float, float]) -> Fit:
    """The prompt's ideal render fitted to the image (rats_app.worlds.fidelity): centre and side
    within the contract's jitter around the prompt's position and size, colours free, plus a blur."""
    x, y = POSITIONS[scene.position]
    side = SIZES[scene.size]
    bounds = Bounds((x - POSITION_JITTER, x + POSITION_JITTER), (y - POSITION_JITTER, y + POSITION_JITTER),
                    (side - SIZE_JITTER, side + SIZE_JITTER))
    return fit_render(image, scene.shape, box, bounds, (BACKGROUNDS[scene.background], COLORS[scene.color]))


def fidelity(image: np.ndarray, scene: Scene, box: tuple[float, float, float]) -> dict[str, float]:
    """The checker's fidelity measurements (FIDELITY) of ``fit_scene``."""
    fit = fit_scene(image, scene, box)
    return {key: getattr(fit, key) for key in FIDELITY}


def summarize(results: list[CheckResult]) -> dict[str, float]:
    """Rates over many images: each attribute, all five ("correct"), and clean."""
    n = max(len(results), 1)
    summary = {a: sum(r.right.get(a, False) for r in results) / n for a in ATTRIBUTES}
    summary["correct"] = sum(r.correct for r in results) / n
    summary["clean"] = sum(r.clean for r in results) / n
    summary["count"] = len(results)
    return summary
