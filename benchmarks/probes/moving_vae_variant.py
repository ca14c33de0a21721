"""Train a Moving Shapes VAE variant for a few steps with the pretrain stage's own loss, then probe
it as moving_vae_probe.py does (the question: which factor keeps small squares and triangles).

    python benchmarks/probes/moving_vae_variant.py OUT --spatial 2 --z-dim 16 --steps 1000

--spatial 4 is the shipped design (dim_mult 1, 2, 4); 2 drops one spatial level (dim_mult 1, 2),
so an 8 px object covers 4 x 4 latent cells instead of 2 x 2. Temporal compression stays 2x.
"""
import argparse
import subprocess
import sys
from pathlib import Path

import torch

from rats_app.training.loop import Stage, run_stage
from rats_app.training.schedules import lr_scheduler
from rats_app.worlds.moving_shapes.model import WanWorldConfig, build_vae
from rats_app.worlds.moving_shapes.pretrain import PretrainConfig
from rats_app.worlds.moving_shapes.pretrain.vae import vae_loss

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("out", type=Path, help="work dir: checkpoint and log (it resumes), then the VAE")
parser.add_argument("--spatial", type=int, choices=(2, 4), default=4)
parser.add_argument("--z-dim", type=int, default=32)
parser.add_argument("--base-dim", type=int, default=16)
parser.add_argument("--steps", type=int, default=1000)
args = parser.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)
cfg = PretrainConfig()
vae = build_vae(WanWorldConfig(z_dim=args.z_dim, vae_base_dim=args.base_dim, spatial_factor=args.spatial))
optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
scheduler = lr_scheduler(optimizer, "cosine", args.steps, warmup_steps=100)
args.out.mkdir(parents=True, exist_ok=True)
run_stage(args.out, Stage("vae", args.steps, log_every=100), {"vae": vae}, optimizer, scheduler,
          lambda step: vae_loss(vae, cfg, step))
vae.eval().save_pretrained(args.out)
subprocess.run([sys.executable, str(Path(__file__).with_name("moving_vae_probe.py")), str(args.out)], check=True)
