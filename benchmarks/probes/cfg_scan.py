"""Teacher correctness against the true-CFG scale, on fresh prompts and seeds (not the benchmark's 0..119).

    python benchmarks/probes/cfg_scan.py MODEL_DIR 3,4,5 [N] [heldout]
"""
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
from rats_app.families import family_of
from rats_app.models import load_pipeline
from rats_app.sampler import generate
from rats_app.worlds.shapes.checker import check_image, summarize
from rats_app.worlds.shapes.prompts import held_out_prompts, training_prompts

model, scales = sys.argv[1], [float(s) for s in sys.argv[2].split(",")]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 120
held_out = len(sys.argv) > 4 and sys.argv[4] == "heldout"
pipe, info = load_pipeline(model, device="cpu")
family = family_of(pipe)
rng = np.random.default_rng(777); P = held_out_prompts() if held_out else training_prompts()
chosen = [P[i] for i in rng.integers(len(P), size=n)]
seeds = [5000 + i for i in range(n)]
for cfg in scales:
    t = time.time(); images = []
    for s in range(0, n, 16):
        images += generate(family, chosen[s:s+16], 50, seeds[s:s+16], info.size(family),
                           **{**info.call_defaults, "true_cfg_scale": cfg})  # the model's own call settings
    res = summarize([check_image(np.asarray(im), p) for im, p in zip(images, chosen)])
    print(model, "held-out" if held_out else "training", cfg, {k: v if k == "count" else round(v * 100, 1) for k, v in res.items()}, f"{time.time()-t:.0f}s", flush=True)
