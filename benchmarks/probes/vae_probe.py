"""VAE probe: 160 clean training renders through encode/decode; the checker's clean rate, colour and
edge width, per background, and the reconstructions whose colour is read wrong.

    python benchmarks/probes/vae_probe.py VAE_DIR        # an AutoencoderKL directory (e.g. assets/shapes-flux/vae)
"""
import collections
import sys

import numpy as np
import torch
from _renders import probe_samples, reconstruct
from diffusers import AutoencoderKL

from rats_app.worlds.shapes.checker import check_image
from rats_app.worlds.shapes.prompts import training_prompts

torch.set_num_threads(1)
vae = AutoencoderKL.from_pretrained(sys.argv[1]).eval()
samples = probe_samples(training_prompts(), 160)
rec, _, _ = reconstruct(vae, samples)
results = [check_image(im, s.scene.prompt) for im, s in zip(rec, samples)]
ew = np.array([r.measurements.get("edge_width", np.nan) for r in results])
print(sys.argv[1], "median %.2f p25 %.2f p75 %.2f p90 %.2f clean %.3f colour %.3f all %.3f" % (
    np.nanmedian(ew), *np.nanpercentile(ew, [25, 75, 90]), np.mean([r.clean for r in results]),
    np.mean([r.right["color"] for r in results]), np.mean([r.correct for r in results])))
by = collections.defaultdict(lambda: [0, 0, []])
for s, r, e in zip(samples, results, ew):
    row = by[s.scene.background]
    row[0] += r.clean; row[1] += 1; row[2].append(e)
print({k: f"{v[0]}/{v[1]} med {np.nanmedian(v[2]):.2f}" for k, v in by.items()})
for s, r in zip(samples, results):
    if not r.right["color"]:
        print(" colour:", s.scene.prompt, "->", r.predicted["color"], "contrast", round(r.measurements["contrast"], 2))
