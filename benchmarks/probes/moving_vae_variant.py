"""Train a Moving Shapes VAE variant for a few steps with the pretrain stage's own loss, then probe
it as moving_vae_probe.py does (the question: which factor keeps small squares and triangles).

    python benchmarks/probes/moving_vae_variant.py OUT --spatial 2 --z-dim 16 --steps 1000

--spatial 4 is the shipped design (dim_mult 1, 2, 4); 2 drops one spatial level (dim_mult 1, 2),
so an 8 px object covers 4 x 4 latent cells instead of 2 x 2. Temporal compression stays 2x.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan

from rats_app.training.schedules import lr_scheduler
from rats_app.worlds.moving_shapes.data import sample_batch
from rats_app.worlds.moving_shapes.pretrain import PretrainConfig
from rats_app.worlds.moving_shapes.pretrain.vae import temporal_loss
from rats_app.worlds.moving_shapes.prompts import training_prompts
from rats_app.worlds.pretraining import reconstruction_loss

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("out", type=Path)
parser.add_argument("--spatial", type=int, choices=(2, 4), default=4)
parser.add_argument("--z-dim", type=int, default=32)
parser.add_argument("--base-dim", type=int, default=16)
parser.add_argument("--steps", type=int, default=1000)
args = parser.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)
cfg = PretrainConfig()
levels = {4: ([1, 2, 4], [False, True]), 2: ([1, 2], [True])}[args.spatial]
vae = AutoencoderKLWan(base_dim=args.base_dim, z_dim=args.z_dim, dim_mult=levels[0], num_res_blocks=1,
                       temperal_downsample=levels[1], latents_mean=[0.0] * args.z_dim, latents_std=[1.0] * args.z_dim,
                       scale_factor_spatial=args.spatial, scale_factor_temporal=2)
optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
scheduler = lr_scheduler(optimizer, "cosine", args.steps, warmup_steps=100)
started = time.time()
for step in range(1, args.steps + 1):
    x = sample_batch(training_prompts(), cfg.vae_batch, np.random.default_rng([cfg.seed, 1, step]))[1]
    posterior = vae.encode(x).latent_dist
    recon = vae.decode(posterior.mode()).sample
    loss, parts = reconstruction_loss(recon, x, cfg.vae_object_weight, cfg.vae_edge_weight)
    loss = loss + cfg.vae_temporal_weight * temporal_loss(recon, x)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    if step % 100 == 0:
        print(f"step {step} loss {loss.item():.4f} {time.time() - started:.0f} s", flush=True)
vae.eval().save_pretrained(args.out)
print(f"latent of one clip: {tuple(vae.encode(x[:1]).latent_dist.mode().shape)}")
subprocess.run([sys.executable, str(Path(__file__).with_name("moving_vae_probe.py")), str(args.out)], check=True)
