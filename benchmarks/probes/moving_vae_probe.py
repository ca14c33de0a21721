"""Moving Shapes VAE probe: 64 clean training clips through encode/decode; the checker's right and
clean rates, its defects, the median fitted blur sigma, and the shape rate per (size, shape) — the
ceiling any teacher on this VAE has.

    python benchmarks/probes/moving_vae_probe.py VAE_DIR [DECODER_CKPT] [--still]

DECODER_CKPT: an in-progress decoder phase's decoder_ckpt.pt, loaded into VAE_DIR (the phase's
start) so a phase can be judged before it ends. --still: each clip's first frame repeated 9 times
(no motion), which separates what the VAE's temporal compression loses from what it loses anyway.
"""
import argparse
import collections

import numpy as np
import torch
from diffusers import AutoencoderKLWan

from rats_app.io import load_torch_state
from rats_app.training.loop import load_flat_state
from rats_app.worlds.moving_shapes.checker import check_clip
from rats_app.worlds.moving_shapes.data import sample_batch
from rats_app.worlds.moving_shapes.pretrain.report import reconstruct
from rats_app.worlds.moving_shapes.pretrain.vae import decoder_modules
from rats_app.worlds.moving_shapes.prompts import training_prompts

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("vae_dir")
parser.add_argument("decoder_ckpt", nargs="?")
parser.add_argument("--still", action="store_true", help="repeat each clip's first frame (no motion)")
args = parser.parse_args()
torch.set_num_threads(1)
vae = AutoencoderKLWan.from_pretrained(args.vae_dir).eval()
if args.decoder_ckpt:
    state = load_torch_state(args.decoder_ckpt)
    load_flat_state(decoder_modules(vae), state["model"])
    print("decoder checkpoint at step", state.get("step"))
samples, x, _ = sample_batch(training_prompts(), 64, np.random.default_rng(11), p_degraded=0.0)
if args.still:
    x = x[:, :, :1].expand_as(x).contiguous()
recon = reconstruct(vae, x)
checks = [check_clip(clip, s.scene.prompt) for clip, s in zip(recon, samples)]
wrong = collections.Counter(k for c in checks for k, ok in c.right.items() if not ok)
defects = collections.Counter(d for c in checks for d in c.defects)
shape_rate = collections.defaultdict(list)
for c, s in zip(checks, samples):
    shape_rate[f"{s.scene.size} {s.scene.shape}"].append(c.right["shape"])
print(f"right {np.mean([c.correct for c in checks]):.3f} clean {np.mean([c.clean for c in checks]):.3f} "
      f"sigma median {np.nanmedian([c.measurements.get('sigma', np.nan) for c in checks]):.2f}")
print("wrong", dict(wrong), "defects", dict(defects))
print("shape right", {k: f"{np.mean(v):.2f} of {len(v)}" for k, v in sorted(shape_rate.items())})
