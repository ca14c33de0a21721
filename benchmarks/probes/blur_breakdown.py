"""Clean rate of cached benchmark images split by size, background, colour and shape.

    python benchmarks/probes/blur_breakdown.py runs/results/presets-world-train/images/rats/nfe003
"""
import collections
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from rats_app.evaluate import load_prompts
from rats_app.worlds.shapes.checker import check_image
from rats_app.worlds.shapes.prompts import parse_prompt

d = Path(sys.argv[1]); prompts = load_prompts("world-train", 120, 0)
by = collections.defaultdict(lambda: [0, 0])
for i, p in enumerate(prompts):
    r = check_image(np.asarray(Image.open(d / f"{i:04d}.png").convert("RGB")), p); s = parse_prompt(p)
    for key in (s.size, s.background, s.color, s.shape):
        by[key][0] += r.clean; by[key][1] += 1
print(d, {k: f"{v[0]}/{v[1]}" for k, v in by.items()})
