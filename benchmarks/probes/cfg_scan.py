"""Teacher correctness against the CFG scale, on fresh prompts and seeds (not the benchmark's 0..119).

    python benchmarks/probes/cfg_scan.py MODEL_DIR 3,4,5 [N] [heldout]

Any embedded world's model: its world's prompts and checker; the scale replaces the model's own CFG
setting (true_cfg_scale for Shapes World's FLUX, guidance_scale for Moving Shapes' Wan).
"""
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
from rats_app.evaluate import ground_truth
from rats_app.families import family_of
from rats_app.io import to_uint8_frames
from rats_app.models import load_pipeline
from rats_app.sampler import generate

model, scales = sys.argv[1], [float(s) for s in sys.argv[2].split(",")]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 120
held_out = len(sys.argv) > 4 and sys.argv[4] == "heldout"
pipe, info = load_pipeline(model, device="cpu")
family = family_of(pipe)
world = info.world
cfg_key = "true_cfg_scale" if "true_cfg_scale" in info.call_defaults else "guidance_scale"
rng = np.random.default_rng(777)
P = world.held_out_prompts() if held_out else world.training_prompts()
chosen = [P[i] for i in rng.integers(len(P), size=n)]
seeds = [5000 + i for i in range(n)]
for cfg in scales:
    t = time.time(); outputs = []
    for s in range(0, n, 16):
        outputs += generate(family, chosen[s:s+16], 50, seeds[s:s+16], info.size(family),
                            **{**info.call_defaults, cfg_key: cfg})  # the model's own call settings
    # video models return float frames in [0, 1]; the checker reads uint8 like a saved filmstrip
    outputs = [to_uint8_frames(o) if isinstance(o, np.ndarray) else np.asarray(o) for o in outputs]
    checks = [world.check(o, p) for o, p in zip(outputs, chosen)]
    row = ground_truth(checks, world)  # evaluate's rates (%), the same a results table shows
    res = {"correct": round(row["correct"], 1), "clean": round(row["clean"], 1),
           **{a: round(v, 1) for a, v in row["attributes"].items()}}
    print(model, "held-out" if held_out else "training", cfg, res, f"{time.time()-t:.0f}s", flush=True)
