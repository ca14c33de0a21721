"""Ground-truth fidelity: fit the contract's ideal render, blurred, to an image.

The model of an image is ``background + (object - background) * blur_sigma(coverage)``, where the
coverage is the prompt's shape at centre (cx, cy) with side ``side``, anti-aliased as the renderer
draws it. For each placement and sigma the two colours are the least-squares fit (they are free:
a colour cast is not blur), and the search moves cx, cy, side and sigma inside the contract's
jitter (scipy's Nelder-Mead) until the squared error stops falling. It reports

- ``sigma``: the fitted blur in px — sharpness (0 = as sharp as the renderer draws);
- ``residual``: the RMS error (0-255) the best blurred render leaves — what no blur explains:
  rims, halos, background texture, noise, stray objects;
- ``ideal_error``: the RMS error (0-255) to the exact ideal render — the palette's own colours,
  no blur, at the fitted placement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from rats_app.worlds.raster import coverage, gaussian_blur

MAX_SIGMA = 4.0
FIDELITY = ("sigma", "residual", "ideal_error")  # what a world's checker reports from the fit
_SIMPLEX_STEPS = np.array([0.5, 0.5, 0.7, 0.4])
# Searches start from a sharp and from a slightly soft render: from one start alone, a clean square
# whose edges fall on half pixels could settle at sigma ~0.49 (1 % of clean Moving Shapes renders).
START_SIGMAS = (0.0, 0.3)


@dataclass(frozen=True)
class Fit:
    sigma: float
    residual: float
    ideal_error: float
    cx: float
    cy: float
    side: float
    background: tuple[float, float, float]
    object: tuple[float, float, float]


@dataclass(frozen=True)
class Bounds:
    """Where the ideal render may be: each of cx, cy, side within [low, high]."""

    cx: tuple[float, float]
    cy: tuple[float, float]
    side: tuple[float, float]

    def clip(self, p: np.ndarray) -> np.ndarray:
        low = np.array([self.cx[0], self.cy[0], self.side[0], 0.0])
        high = np.array([self.cx[1], self.cy[1], self.side[1], MAX_SIGMA])
        return np.clip(p, low, high)

    def as_list(self) -> list[tuple[float, float]]:
        return [self.cx, self.cy, self.side, (0.0, MAX_SIGMA)]


def _soft_coverage(shape: str, p: np.ndarray, canvas: int) -> np.ndarray:
    alpha = coverage(shape, p[0], p[1], p[2], canvas)
    return gaussian_blur(alpha[..., None], p[3])[..., 0] if p[3] > 0.02 else alpha


def _colours(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares background and object colours for this coverage, and the squared error."""
    a = alpha.reshape(-1)
    pixels = image.reshape(-1, 3)
    design = np.stack([1.0 - a, a], axis=1)
    gram = design.T @ design
    # The 2 x 2 normal equations, solved directly (lstsq's SVD was a third of the fit's time); a
    # coverage that is constant (no object, or all object) leaves them singular: lstsq's minimum norm.
    if np.linalg.det(gram) > 1e-9 * np.trace(gram) ** 2:
        solution = np.linalg.solve(gram, design.T @ pixels)
    else:
        solution, *_ = np.linalg.lstsq(design, pixels, rcond=None)
    error = float(((design @ solution - pixels) ** 2).sum())
    return solution[0], solution[1], error


def _search(error, bounds: Bounds, start: tuple[float, float, float], sigma: float) -> np.ndarray:
    """Nelder-Mead (derivative-free: the coverage is piecewise in sub-pixel placement), from a
    simplex that spans half a pixel of placement and of blur around the start, restarted once
    from where it stopped: a fresh simplex escapes where the first one collapsed."""
    best = bounds.clip(np.array([*start, sigma]))
    for scale in (1.0, 0.5):
        simplex = np.vstack([best, *(best + np.diag(scale * _SIMPLEX_STEPS))])
        result = minimize(error, best, method="Nelder-Mead", bounds=bounds.as_list(),
                          options={"initial_simplex": simplex, "xatol": 0.02, "fatol": 1e-3, "maxfev": 300})
        best = bounds.clip(result.x)
    return best


def fit_render(image: np.ndarray, shape: str, start: tuple[float, float, float], bounds: Bounds,
               ideal_colours: tuple[tuple[int, int, int], tuple[int, int, int]]) -> Fit:
    """Fit the blurred ideal render of ``shape`` to a uint8 H x W x 3 image.

    ``start``: an initial (cx, cy, side), e.g. the measured bounding box; ``ideal_colours``: the
    prompt's (background, object) sRGB colours, for ``ideal_error``."""
    img = np.asarray(image, dtype=np.float64)
    canvas = img.shape[0]

    def error(p: np.ndarray) -> float:
        return _colours(img, _soft_coverage(shape, bounds.clip(p), canvas))[2]

    best = min((_search(error, bounds, start, sigma) for sigma in START_SIGMAS), key=error)
    background, obj, sse = _colours(img, _soft_coverage(shape, best, canvas))
    ideal_alpha = coverage(shape, best[0], best[1], best[2], canvas)[..., None]
    ideal = np.asarray(ideal_colours[0], float) * (1 - ideal_alpha) + np.asarray(ideal_colours[1], float) * ideal_alpha
    return Fit(sigma=float(best[3]), residual=float(np.sqrt(sse / img.size)),
               ideal_error=float(np.sqrt(((img - ideal) ** 2).mean())), cx=float(best[0]), cy=float(best[1]),
               side=float(best[2]), background=tuple(float(v) for v in background),
               object=tuple(float(v) for v in obj))
