"""At which noise level a Moving Shapes teacher loses the clip: clean renders' latents noised to t0,
then Euler on the 50-step grid with the model's CFG from t0 to 0, decoded and checked. t0 = 0 is the
VAE alone, t0 = 1 is generation from pure noise; where the right rate falls is the part of the path
the transformer has not learned.

    python benchmarks/probes/moving_noise_levels.py MODEL_DIR 0,0.4,0.6,0.8,1 [N]
"""
import collections
import json
import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
from diffusers import WanPipeline

from rats_app.worlds.moving_shapes.checker import check_clip
from rats_app.worlds.moving_shapes.data import sample_batch
from rats_app.worlds.moving_shapes.model import MAX_SEQUENCE_LENGTH
from rats_app.worlds.moving_shapes.pretrain.report import to_uint8
from rats_app.worlds.moving_shapes.prompts import training_prompts

model, starts = sys.argv[1], [float(a) for a in sys.argv[2].split(",")]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 48
pipe = WanPipeline.from_pretrained(model)
guidance = json.loads((Path(model) / "call_defaults.json").read_text()).get("guidance_scale", 5.0)
vae, transformer = pipe.vae, pipe.transformer
mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
samples, x, _ = sample_batch(training_prompts(), n, np.random.default_rng(11), p_degraded=0.0)
prompts = [s.scene.prompt for s in samples]


def embed(texts):
    return pipe.encode_prompt(prompt=texts, do_classifier_free_guidance=False,
                              max_sequence_length=MAX_SEQUENCE_LENGTH, device="cpu")[0]


with torch.no_grad():
    z0 = (torch.cat([vae.encode(x[i:i + 16]).latent_dist.mode() for i in range(0, n, 16)]) - mean) / std
    cond, uncond = embed(prompts), embed([""] * n)
    for t0 in starts:
        noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(0))
        grid = [t for t in np.linspace(1, 0, 51) if t <= t0 + 1e-9]
        z = (1 - grid[0]) * z0 + grid[0] * noise
        for t, t_next in zip(grid[:-1], grid[1:]):
            times = torch.full((n,), t * 1000.0)
            v_cond = transformer(hidden_states=z, timestep=times, encoder_hidden_states=cond, return_dict=False)[0]
            v_uncond = transformer(hidden_states=z, timestep=times, encoder_hidden_states=uncond, return_dict=False)[0]
            z = z + (t_next - t) * (v_uncond + guidance * (v_cond - v_uncond))
        clips = np.concatenate([to_uint8(vae.decode(z[i:i + 16] * std + mean).sample) for i in range(0, n, 16)])
        checks = [check_clip(c, p) for c, p in zip(clips, prompts)]
        wrong = collections.Counter(k for c in checks for k, ok in c.right.items() if not ok)
        print(f"t0 {grid[0]:.2f}: right {np.mean([c.correct for c in checks]):.3f} "
              f"clean {np.mean([c.clean for c in checks]):.3f} "
              f"sigma {np.nanmedian([c.measurements.get('sigma', np.nan) for c in checks]):.2f} wrong {dict(wrong)}",
              flush=True)
