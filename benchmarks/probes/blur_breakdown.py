"""Clean rate and median fitted blur σ of cached Shapes World images, split by size, background,
colour and shape: which scenes a model draws soft.

    python benchmarks/probes/blur_breakdown.py runs/results/budgets-world-heldout/images/rats/nfe002 \
        --prompts world-heldout --images 120

DIR…: image folders of `rats_app.evaluate` runs (0000.png, …) made on those prompts with seeds 0….
"""
import argparse
import collections
from pathlib import Path

import numpy as np
from PIL import Image

from rats_app.evaluate import load_prompts
from rats_app.worlds import get_world
from rats_app.worlds.shapes.checker import check_image
from rats_app.worlds.shapes.prompts import parse_prompt

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("folders", type=Path, nargs="+")
parser.add_argument("--prompts", default="world-train")
parser.add_argument("--images", type=int, default=120)
args = parser.parse_args()
prompts = load_prompts(args.prompts, args.images, get_world("shapes-world"), 0)
for folder in args.folders:
    clean, sigmas = collections.defaultdict(list), collections.defaultdict(list)
    for i, prompt in enumerate(prompts):
        result = check_image(np.asarray(Image.open(folder / f"{i:04d}.png").convert("RGB")), prompt)
        scene = parse_prompt(prompt)
        for key in ("all", scene.size, scene.background, scene.color, scene.shape):
            clean[key].append(result.clean)
            if "sigma" in result.measurements:
                sigmas[key].append(result.measurements["sigma"])
    print(f"{folder}\n| split | images | clean | σ px (median) |\n|---|---|---|---|")
    for key in clean:
        print(f"| {key} | {len(clean[key])} | {sum(clean[key])} | {np.median(sigmas[key]):.2f} |")
