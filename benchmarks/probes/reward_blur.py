"""How much the world reward drops when clean renders are blurred, per background (150 training renders).

    python benchmarks/probes/reward_blur.py
"""
import numpy as np
import torch

torch.set_num_threads(1)
from rats_app.rewards.registry import load_reward
from rats_app.worlds.shapes.checker import check_image
from rats_app.worlds.shapes.prompts import training_prompts
from rats_app.worlds.shapes.render import Degradation, degrade, render_scene, sample_scene

R = load_reward("shapes")
rng = np.random.default_rng(5); P = training_prompts()
samples = [sample_scene(P[i], rng, 0.0) for i in rng.integers(len(P), size=150)]
clean = [render_scene(s) for s in samples]
def score(ims):
    return R.score_fast(ims, [s.scene.prompt for s in samples]).numpy()
base = score(clean)
bg = np.array([s.scene.background for s in samples])
for sig in (0.5, 0.8, 1.2, 2.0):
    ims = [degrade(c.astype(np.float64), Degradation(blur_sigma=sig)).round().clip(0,255).astype(np.uint8) for c in clean]
    d = score(ims) - base
    ew = np.array([check_image(im, s.scene.prompt).measurements.get("edge_width", np.nan) for im, s in zip(ims, samples)])
    print(f"blur {sig}:", {b: f"dR {d[bg==b].mean():+.2f} ew {np.nanmedian(ew[bg==b]):.2f}" for b in ("white","black","gray")})
