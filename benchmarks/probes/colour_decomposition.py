"""Split Shapes World's error to the ideal render into colour and form, per variant of an evaluate run.

    python benchmarks/probes/colour_decomposition.py EVAL_DIR [--prompts world-train] [--images 60]

EVAL_DIR: an `rats_app.evaluate --out-dir` run on the same prompts, count and seed 0 (its images/).
For each image the checker's fit (rats_app.worlds.fidelity) is redone and reported beside
- the error to the unblurred render in the *fitted* colours (what remains once colour is free),
- the distance (RGB, 0-255) of the fitted background and object colours from the prompt's palette,
- how far the object colour moved toward the background (1 = it took the background's colour).
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from rats_app.evaluate import load_prompts
from rats_app.worlds import get_world
from rats_app.worlds.palette import BACKGROUNDS, COLORS
from rats_app.worlds.raster import coverage
from rats_app.worlds.reading import box_from_mask, segment
from rats_app.worlds.shapes.checker import fit_scene
from rats_app.worlds.shapes.prompts import parse_prompt

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("eval_dir", type=Path)
parser.add_argument("--prompts", default="world-train")
parser.add_argument("--images", type=int, default=60)
args = parser.parse_args()
prompts = load_prompts(args.prompts, args.images, get_world("shapes-world"), 0)


def measure(image: np.ndarray, prompt: str) -> tuple[float, ...] | None:
    scene = parse_prompt(prompt)
    box = box_from_mask(segment(image).alpha > 0.5)
    if box is None:
        return None
    fit = fit_scene(image, scene, box)
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
