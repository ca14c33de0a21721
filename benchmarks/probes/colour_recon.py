"""Which colours a VAE's reconstructions get wrong (same 160 clean renders as vae_probe.py).

    python benchmarks/probes/colour_recon.py VAE_DIR
"""
import sys as _sys
from pathlib import Path as _Path
_sys.path.insert(0, str(_Path(__file__).resolve().parents[2]))  # run from anywhere
import numpy as np, torch, sys
torch.set_num_threads(2)
from diffusers import AutoencoderKL
from rats_app.world.render import sample_scene, render_scene
from rats_app.world.prompts import training_prompts, COLORS
from rats_app.world.checker import check_image
from rats_app.world.data import to_tensor, to_uint8
vae = AutoencoderKL.from_pretrained(sys.argv[1]).eval()
rng = np.random.default_rng(5); P = training_prompts()
samples = [sample_scene(P[i], rng, 0.0) for i in rng.integers(len(P), size=160)]
x = to_tensor([render_scene(s) for s in samples])
with torch.no_grad():
    rec = to_uint8(vae.decode(vae.encode(x).latent_dist.mode()).sample)
for im, s in zip(rec, samples):
    r = check_image(im, s.scene.prompt)
    if not r.right["color"]:
        bg = np.median(im.reshape(-1, 3), 0)
        print(s.scene.prompt, "->", r.predicted["color"], "contrast", round(r.measurements["contrast"], 2), "obj", COLORS[s.scene.color])
