"""Ground-truth checker for Moving Shapes: read a clip, say which attributes are right, and whether
it is clean — sharp, steady on the straight constant-speed path, without flicker, the same object
in every frame.

No learned model. Each frame's brightness offset from the clip's median background is measured
(flicker) and removed; background, colour and contrast are fitted against the palette on the
clip's median colours; each frame's object is segmented and boxed (rats_app.worlds.reading); the
track of box centres gives direction, speed and steadiness; the shape is voted over the frames
where the object is whole. Thresholds sit between clean renders and the mildest degradation of
each kind (tests/test_moving_shapes.py measures the checker on renders).
"""

from __future__ import annotations

import numpy as np

from rats_app.worlds.fidelity import FIDELITY, Bounds, Fit, fit_render
from rats_app.worlds.moving_shapes.prompts import ATTRIBUTES, DIRECTIONS, SIZES, Scene, parse_prompt
from rats_app.worlds.moving_shapes.render import CANVAS, SPEED
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
    smooth3,
)

SIZE_SPLIT = sum(SIZES.values()) / 2
MIN_CLEAN_CONTRAST = 0.8       # fitted contrast factor; the degradation gives <= 0.6
MAX_CLEAN_NOISE = 4.0          # robust std (0-255) of background pixels; the degradation gives >= 8
MAX_CLEAN_EDGE_WIDTH = 1.6     # partial-coverage px per px of perimeter, above which shapes are read blurred
MAX_CLEAN_SIGMA = 0.47         # fitted blur (px) of the ideal render: over 900 clean renders at most 0.44 (99 % below
                               # 0.30; blur that small is below what 8-bit pixels show), the mildest degradation
                               # (0.5 px) at least 0.496
MAX_CLEAN_FLICKER = 4.0        # std (0-255) of the frames' background offsets; the degradation gives >= 10
MAX_CLEAN_WOBBLE = 0.45        # rms px of the centres off the fitted line; renders <= 0.2, jitter >= 1
MAX_CLEAN_STEP_ERROR = 1.0     # px a step may differ from the clip's speed; renders <= 0.55, stutter >= 2
MAX_STUTTER_CROSS = 0.4        # rms px off the line across the motion: a stutter stays on it, jitter does not
MAX_SPEED_ERROR = 0.5          # px/frame the fitted speed may differ from the contract's 2
MAX_SIDE_SPREAD = 3.0          # px: the same object keeps its size (small and large differ by 6)
MAX_COLOUR_SPREAD = 45.0       # 0-255: ... and its colour (the palette's closest pair differ by ~70)
MIN_OBJECT_CONTRAST = 15.0


def check_clip(clip: np.ndarray, prompt: str | Scene | None = None) -> CheckResult:
    """Read one uint8 clip (frames, H, W, 3); compare with ``prompt`` when given."""
    clip = np.asarray(clip)
    if clip.ndim != 4 or clip.shape[1:] != (CANVAS, CANVAS, 3) or clip.shape[0] < 2:
        raise ValueError(f"expected a clip of shape (frames, {CANVAS}, {CANVAS}, 3), got {clip.shape}")
    frames = clip.astype(np.float64)
    frame_backgrounds = np.median(frames.reshape(len(frames), -1, 3), axis=1)
    background = np.median(frame_backgrounds, axis=0)
    offsets = (frame_backgrounds - background).mean(axis=1)  # flicker: a brightness shift per frame
    steady = frames - offsets[:, None, None, None]
    cores = [_core_colours(f, background) for f in steady]
    objects = np.array([np.median(c, axis=0) for c in cores])
    colour = np.median(np.concatenate(cores), axis=0)
    segments = [segment(f, background=background, obj=colour) for f in steady]
    bg_name, colour_name, contrast = fit_palette(background, colour)
    predicted = {"background": bg_name, "color": colour_name}
    m = {"contrast": contrast, "object_contrast": float(np.linalg.norm(colour - background)),
         "flicker": float(offsets.std()), "noise": float(np.mean([background_noise(s) for s in segments]))}
    boxes = [box_from_mask(s.alpha > 0.5) for s in segments] if m["object_contrast"] > MIN_OBJECT_CONTRAST else []
    defects = _quality_defects(m)
    scene = (parse_prompt(prompt) if isinstance(prompt, str) else prompt) if prompt is not None else None
    ideal = (BACKGROUNDS[scene.background], COLORS[scene.color]) if scene else (BACKGROUNDS[bg_name], COLORS[colour_name])
    if len(boxes) != len(frames) or any(b is None for b in boxes):
        predicted.update(shape="none", size="none", direction="none")
        defects.append("missing")
    else:
        predicted.update(_read_object(segments, boxes, m, ideal))
        defects += _motion_defects(np.array([b[:2] for b in boxes]), m)
        defects += _consistency_defects(boxes, objects, m)
        if "noise" not in defects and m["sigma"] > MAX_CLEAN_SIGMA:  # noise would pass for blur too
            defects.append("blur")
    result = CheckResult(predicted=predicted, clean=not defects, defects=tuple(defects), measurements=m)
    if scene is not None:
        result.right = {a: predicted[a] == getattr(scene, a) for a in ATTRIBUTES}
    return result


def _core_colours(frame: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Raw colours of the object's core: the pixels whose smoothed colour is farthest from the
    background (smoothing finds them despite noise; the raw values are unmixed even for 8-px objects)."""
    distance = np.linalg.norm(smooth3(frame) - background, axis=2)
    core = distance >= 0.85 * np.percentile(distance, 99.8)
    return frame[core]


def _quality_defects(m: dict) -> list[str]:
    defects = []
    if m["contrast"] < MIN_CLEAN_CONTRAST:
        defects.append("contrast")
    if m["noise"] > MAX_CLEAN_NOISE:
        defects.append("noise")
    if m["flicker"] > MAX_CLEAN_FLICKER:
        defects.append("flicker")
    return defects


def _whole(box: tuple[float, float, float]) -> bool:
    cx, cy, side = box
    half = side / 2
    return min(cx - half, cy - half) >= 0.5 and max(cx + half, cy + half) <= CANVAS - 0.5


def majority_shape(votes: list[str], fits: list[float]) -> str:
    """The shape most frames read; a tie (three frames, three shapes) goes to the shape of the best
    template fit, so the reading never depends on set order (which changes with PYTHONHASHSEED)."""
    def support(shape: str) -> tuple[int, float]:
        return votes.count(shape), max(f for v, f in zip(votes, fits) if v == shape)
    return max(dict.fromkeys(votes), key=support)


def _read_object(segments, boxes, m: dict, ideal_colours) -> dict[str, str]:
    """Size, shape (voted over the frames where the object is whole) and direction; the fidelity of
    the middle frames (rats_app.worlds.fidelity: sigma, residual, error to the ideal render in
    ``ideal_colours``), medians over those frames."""
    sides = np.array([b[2] for b in boxes])
    m["side"] = float(np.median(sides))
    frames = [i for i, b in enumerate(boxes) if _whole(b)] or list(range(len(boxes)))
    middle = frames[len(frames) // 2 - 1:len(frames) // 2 + 2] or frames  # three frames are enough
    widths, votes, template_fits = [], [], []
    for i in middle:
        shape, fit = best_shape(segments[i].alpha, boxes[i])
        width = edge_width(segments[i].alpha_raw, shape, boxes[i][2])
        if width > MAX_CLEAN_EDGE_WIDTH:  # soft edges: read the shape with blurred templates
            shape, fit = best_shape(segments[i].alpha, boxes[i], SOFT_TEMPLATE_BLURS)
        widths.append(width)
        votes.append(shape)
        template_fits.append(fit)
    shape = majority_shape(votes, template_fits)
    fits = [_fit(segments[i].image, shape, boxes[i], ideal_colours) for i in middle]
    for key in FIDELITY:
        m[key] = float(np.median([getattr(f, key) for f in fits]))
    m["edge_width"] = float(np.median(widths))
    m["shape_fit"] = float(np.mean(template_fits))
    m["shape_votes"] = float(max(votes.count(v) for v in votes) / len(votes))
    centres = np.array([b[:2] for b in boxes])
    motion = centres[-1] - centres[0]
    m["dx"], m["dy"] = float(motion[0]), float(motion[1])
    axis = int(np.argmax(np.abs(motion)))
    unit = (int(np.sign(motion[0])), 0) if axis == 0 else (0, int(np.sign(motion[1])))
    direction = next((d for d, u in DIRECTIONS.items() if u == unit), "none")
    if np.abs(motion).max() < SPEED * (len(boxes) - 1) / 3:  # a third of the path: it barely moves
        direction = "none"
    return {"size": "small" if m["side"] < SIZE_SPLIT else "large",
            "shape": shape, "direction": direction}


def _fit(frame: np.ndarray, shape: str, box: tuple[float, float, float], ideal_colours) -> Fit:
    """The best-fitting blurred ideal render near the measured box (colours free)."""
    cx, cy, side = box
    # A thresholded mask cuts a triangle's apex off: the true side can be well above the box's.
    bounds = Bounds((cx - 2, cx + 2), (cy - 2, cy + 2), (side - 1.5, side + 3))
    return fit_render(frame, shape, box, bounds, ideal_colours)


def _motion_defects(centres: np.ndarray, m: dict) -> list[str]:
    """Steadiness: on a straight line (wobble), at a constant speed (steps), at the contract's speed."""
    t = np.arange(len(centres), dtype=np.float64)
    slope, intercept = np.polyfit(t, centres, 1)   # per axis
    along = int(np.argmax(np.abs(slope)))
    residual = centres - (t[:, None] * slope + intercept)
    m["speed"] = float(abs(slope[along]))
    m["wobble"] = float(np.sqrt((residual ** 2).sum(axis=1).mean()))
    steps = np.diff(centres[:, along])
    m["step_error"] = float(np.abs(steps - slope[along]).max())
    m["cross_wobble"] = float(np.sqrt((residual[:, 1 - along] ** 2).mean()))
    defects = []
    if m["wobble"] > MAX_CLEAN_WOBBLE or m["step_error"] > MAX_CLEAN_STEP_ERROR:
        defects.append("stutter" if m["cross_wobble"] < MAX_STUTTER_CROSS else "jitter")
    if abs(m["speed"] - SPEED) > MAX_SPEED_ERROR:
        defects.append("speed")
    return defects


def _consistency_defects(boxes, objects: np.ndarray, m: dict) -> list[str]:
    """The same object in every frame: its size and colour hold (frames where it is whole)."""
    whole = [b[2] for b in boxes if _whole(b)] or [b[2] for b in boxes]
    m["side_spread"] = float(np.ptp(whole))
    m["colour_spread"] = float(np.linalg.norm(objects - np.median(objects, axis=0), axis=1).max())
    if m["side_spread"] > MAX_SIDE_SPREAD or m["colour_spread"] > MAX_COLOUR_SPREAD:
        return ["inconsistent"]
    return []


def summarize(results: list[CheckResult]) -> dict[str, float]:
    """Rates over many clips: each attribute, all five ("correct"), clean, and each defect's rate."""
    n = max(len(results), 1)
    summary = {a: sum(r.right.get(a, False) for r in results) / n for a in ATTRIBUTES}
    summary["correct"] = sum(r.correct for r in results) / n
    summary["clean"] = sum(r.clean for r in results) / n
    for defect in sorted({d for r in results for d in r.defects}):
        summary[f"defect_{defect}"] = sum(defect in r.defects for r in results) / n
    summary["count"] = len(results)
    return summary
