"""At which noise level a Moving Shapes teacher loses the clip: clean renders' latents noised to t0,
then the project's sampler (the model's own CFG and decode) on the 50-step grid from t0 to 0, checked.
t0 = 0 is the VAE alone, t0 = 1 is generation from pure noise; where the right rate falls is the part
of the path the transformer has not learned. (The grid is taken before the scheduler's shift, which is
1 for this world.)

    python benchmarks/probes/moving_noise_levels.py MODEL_DIR 0,0.4,0.6,0.8,1 [N]
"""
import collections
import sys

import numpy as np
import torch

torch.set_num_threads(1)
from rats_app.families import family_of
from rats_app.io import to_uint8_frames
from rats_app.models import load_pipeline
from rats_app.sampler import denoise
from rats_app.worlds.moving_shapes.checker import check_clip
from rats_app.worlds.moving_shapes.data import sample_batch
from rats_app.worlds.moving_shapes.pretrain.transformer import normalised_latents
from rats_app.worlds.moving_shapes.prompts import training_prompts

STEPS = 50
CHUNK = 16

model, starts = sys.argv[1], [float(a) for a in sys.argv[2].split(",")]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 48
pipe, info = load_pipeline(model, device="cpu")
family = family_of(pipe)
size = info.size(family)
samples, x, _ = sample_batch(training_prompts(), n, np.random.default_rng(11), p_degraded=0.0)
prompts = [s.scene.prompt for s in samples]
call = info.call_defaults  # the model's own call settings, as generation and training read them
guidance, true_cfg = call.get("guidance_scale"), float(call.get("true_cfg_scale", 1.0))
cond = family.encode(prompts, call.get("max_sequence_length", family.default_max_sequence_length),
                     family.negative_prompt_for(guidance, true_cfg, call.get("negative_prompt")))
full_grid = family.base_sigmas(STEPS)

with torch.no_grad():
    z0 = torch.cat([normalised_latents(pipe.vae, pipe.vae.encode(x[i:i + CHUNK]).latent_dist.mode())
                    for i in range(0, n, CHUNK)])
    for t0 in starts:
        grid = full_grid[full_grid <= t0 + 1e-9]
        latents = z0
        if len(grid):
            noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(0))
            start = (1 - grid[0]) * z0 + grid[0] * noise
            latents = denoise(family, start, cond, size, len(grid), sigmas=grid, guidance_scale=guidance,
                              true_cfg_scale=true_cfg).latents
        clips = [to_uint8_frames(c) for i in range(0, n, CHUNK)
                 for c in family.postprocess(family.decode(latents[i:i + CHUNK], size))]
        checks = [check_clip(c, p) for c, p in zip(clips, prompts)]
        wrong = collections.Counter(k for c in checks for k, ok in c.right.items() if not ok)
        print(f"t0 {grid[0] if len(grid) else 0.0:.2f}: right {np.mean([c.correct for c in checks]):.3f} "
              f"clean {np.mean([c.clean for c in checks]):.3f} "
              f"sigma {np.nanmedian([c.measurements.get('sigma', np.nan) for c in checks]):.2f} wrong {dict(wrong)}",
              flush=True)
