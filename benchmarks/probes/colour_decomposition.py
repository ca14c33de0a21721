"""Split Shapes World's error to the ideal render into colour and form, per variant of an evaluate run.

    python benchmarks/probes/colour_decomposition.py EVAL_DIR [--prompts world-train] [--images 60]

EVAL_DIR: an `rats_app.evaluate --out-dir` run on the same prompts, count and seed 0 (its images/).
For each image the checker's fit (rats_app.worlds.fidelity) is redone and reported beside
- the error to the unblurred render in the *fitted* colours (what remains once colour is free),
- the distance (RGB, 0-255) of the fitted background and object colours from the prompt's palette,
- how far the object colour moved toward the background (1 = it took the background's colour).
"""

import numpy as np
from _eval_dir import eval_dir_args, fit_image  # run as a script: its folder is on sys.path
from PIL import Image

from rats_app.worlds.palette import BACKGROUNDS, COLORS
from rats_app.worlds.raster import coverage

args, prompts = eval_dir_args(__doc__)


def measure(image: np.ndarray, prompt: str) -> tuple[float, ...] | None:
    fitted = fit_image(image, prompt)
    if fitted is None:
        return None
    scene, _, fit = fitted
    background, obj = np.asarray(BACKGROUNDS[scene.background], float), np.asarray(COLORS[scene.color], float)
    alpha = coverage(scene.shape, fit.cx, fit.cy, fit.side, image.shape[0])[..., None]
    own_colours = np.asarray(fit.background) * (1 - alpha) + np.asarray(fit.object) * alpha
    toward = background - obj
    return (fit.ideal_error, float(np.sqrt(((image - own_colours) ** 2).mean())),
            float(np.linalg.norm(np.asarray(fit.background) - background)),
            float(np.linalg.norm(np.asarray(fit.object) - obj)),
            float(np.dot(np.asarray(fit.object) - obj, toward) / max(np.dot(toward, toward), 1e-9)))


print("| variant | NFE | ideal err (median) | err in fitted colours | background off palette | object off palette "
      "(median / mean) | toward background |\n|---|---|---|---|---|---|---|")
for folder in sorted(args.eval_dir.glob("images/*/nfe*")):
    rows = [measure(np.asarray(Image.open(folder / f"{i:04d}.png").convert("RGB"), np.float64), p)
            for i, p in enumerate(prompts)]
    r = np.array([row for row in rows if row is not None])
    print(f"| {folder.parent.name} | {int(folder.name[3:])} | {np.median(r[:, 0]):.2f} | {np.median(r[:, 1]):.2f} | "
          f"{np.median(r[:, 2]):.2f} | {np.median(r[:, 3]):.2f} / {r[:, 3].mean():.2f} | {np.median(r[:, 4]):.3f} |")
