"""VAE probe: 160 clean training renders through encode/decode; the checker's clean rate, colour and edge width per background.

    python benchmarks/probes/vae_probe.py VAE_DIR        # an AutoencoderKL directory (e.g. assets/shapes-flux/vae)
"""
import sys as _sys
from pathlib import Path as _Path
_sys.path.insert(0, str(_Path(__file__).resolve().parents[2]))  # run from anywhere
import numpy as np, torch, sys
torch.set_num_threads(1)
from diffusers import AutoencoderKL
from rats_app.world.render import sample_scene, render_scene
from rats_app.world.prompts import training_prompts
from rats_app.world.checker import check_image
from rats_app.world.data import to_tensor, to_uint8
vae = AutoencoderKL.from_pretrained(sys.argv[1]).eval()
rng = np.random.default_rng(5); P = training_prompts()
samples = [sample_scene(P[i], rng, 0.0) for i in rng.integers(len(P), size=160)]
x = to_tensor([render_scene(s) for s in samples])
with torch.no_grad():
    rec = to_uint8(vae.decode(vae.encode(x).latent_dist.mode()).sample)
ew = []; cl = 0; col = 0; allr = 0
for im, s in zip(rec, samples):
    r = check_image(im, s.scene.prompt); ew.append(r.measurements.get("edge_width", np.nan)); cl += r.clean; col += r.right["color"]; allr += r.correct
ew = np.array(ew); print(sys.argv[1], "median %.2f p25 %.2f p75 %.2f p90 %.2f clean %.3f colour %.3f all %.3f" % (np.nanmedian(ew), *np.nanpercentile(ew, [25, 75, 90]), cl / len(samples), col/len(samples), allr/len(samples)))
import collections
by = collections.defaultdict(lambda: [0, 0, []])
for im, s, e in zip(rec, samples, ew):
    r = check_image(im, s.scene.prompt)
    by[s.scene.background][0] += r.clean; by[s.scene.background][1] += 1; by[s.scene.background][2].append(e)
print({k: f"{v[0]}/{v[1]} med {np.nanmedian(v[2]):.2f}" for k, v in by.items()})
