"""Compare VAEs: recon quality on clean / half-degraded renders, and orange-vs-yellow-on-gray latent separation.

    python benchmarks/probes/vae_compare.py VAE_DIR [VAE_DIR ...]
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
from _renders import probe_samples, reconstruct
from diffusers import AutoencoderKL

from rats_app.worlds.shapes.checker import check_image
from rats_app.worlds.shapes.prompts import training_prompts
from rats_app.worlds.shapes.render import render_scene

torch.set_num_threads(1)
P = training_prompts()
for path in sys.argv[1:]:
    vae = AutoencoderKL.from_pretrained(path).eval()
    out = {}
    for name, pdeg, n in (("clean", 0.0, 160), ("mixed", 0.5, 256)):
        S = probe_samples(P, n, pdeg)
        rec, _, _ = reconstruct(vae, S)
        rs = [check_image(im, s.scene.prompt) for im, s in zip(rec, S)]
        ok = [check_image(render_scene(s), s.scene.prompt).correct for s in S]  # the checker on the inputs
        out[name] = "all5 %.3f (inputs %.3f) colour %.3f clean %.3f" % (np.mean([r.correct for r in rs]), np.mean(ok),
                    np.mean([r.right["color"] for r in rs]), np.mean([r.clean for r in rs]))
    # orange vs yellow on gray: object-pooled latents, centroid distance over within-class RMS spread
    cents, spreads = [], []
    for colour in ("orange", "yellow"):
        ps = [p for p in P if f" {colour} " in p and "gray" in p]
        _, z, x = reconstruct(vae, probe_samples(ps, 64, seed=7))
        mask = ((x - x.flatten(2).median(2).values[..., None, None]).abs().amax(1, keepdim=True) > 0.05).float()
        m = F.adaptive_avg_pool2d(mask, z.shape[-1])
        pooled = (z * m).sum((2, 3)) / m.sum((2, 3)).clamp_min(1e-6)
        cents.append(pooled.mean(0)); spreads.append((pooled - pooled.mean(0)).pow(2).sum(1).mean().sqrt())
    sep = float((cents[0] - cents[1]).norm()); spread = float(sum(spreads) / 2)
    print(path, out, "orange/yellow-on-gray centroid dist %.3f spread %.3f ratio %.2f" % (sep, spread, sep / spread), flush=True)
