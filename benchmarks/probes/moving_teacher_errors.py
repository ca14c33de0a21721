"""Where a Moving Shapes model's clips go wrong: per (size, shape) the checker's right rates, and what
it read instead of the prompt's shape and size — from an evaluate run's filmstrips.

    python -m rats_app.evaluate --model MODEL --prompts world-train --images 64 --nfe 3 --out-dir runs/eval-X
    python benchmarks/probes/moving_teacher_errors.py runs/eval-X [--variant teacher/nfe050]

The prompts are redrawn exactly as evaluate drew them (its seed and count, from results.json).
"""
import argparse
import collections
import json
from pathlib import Path

import numpy as np
from PIL import Image

from rats_app.evaluate import load_prompts
from rats_app.io import from_filmstrip
from rats_app.worlds.moving_shapes.checker import check_clip
from rats_app.worlds.moving_shapes.plugin import WORLD
from rats_app.worlds.moving_shapes.prompts import parse_prompt
from rats_app.worlds.moving_shapes.render import FRAMES

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("eval_dir", type=Path)
parser.add_argument("--variant", default="teacher/nfe050", help="images/ subfolder")
args = parser.parse_args()
meta = json.loads((args.eval_dir / "results.json").read_text())["meta"]
prompts = load_prompts(meta["prompts"], meta["images"], WORLD, meta["seed"])
rates = collections.defaultdict(lambda: collections.defaultdict(list))
misread = collections.Counter()
for i, prompt in enumerate(prompts):
    strip = Image.open(args.eval_dir / "images" / args.variant / f"{i:04d}.png").convert("RGB")
    clip = from_filmstrip(np.asarray(strip), FRAMES)
    scene = parse_prompt(prompt)
    check = check_clip(clip, prompt)
    group = rates[f"{scene.size} {scene.shape}"]
    for attribute, ok in check.right.items():
        group[attribute].append(ok)
    group["all five"].append(check.correct)
    for attribute in ("shape", "size"):
        if not check.right.get(attribute, True):
            misread[f"{scene.size} {scene.shape}: {attribute} read as {check.predicted.get(attribute)}"] += 1
for group, attributes in sorted(rates.items()):
    n = len(attributes["all five"])
    print(f"{group:16s} n={n:3d} " + " ".join(f"{a} {np.mean(v):.2f}" for a, v in attributes.items()))
for line, count in misread.most_common():
    print(f"{count:3d}  {line}")
