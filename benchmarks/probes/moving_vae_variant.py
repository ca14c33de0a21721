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

from rats_app.worlds.moving_shapes.model import WanWorldConfig
from rats_app.worlds.moving_shapes.pretrain import PretrainConfig
from rats_app.worlds.moving_shapes.pretrain.vae import train_vae

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("out", type=Path, help="work dir: checkpoint and log (it resumes), then the VAE in OUT/vae")
parser.add_argument("--spatial", type=int, choices=(2, 4), default=4)
parser.add_argument("--z-dim", type=int, default=32)
parser.add_argument("--base-dim", type=int, default=16)
parser.add_argument("--steps", type=int, default=1000)
parser.add_argument("--per-object", action="store_true", help="vae_object_per_object: small objects weigh as "
                    "much in all as large ones")
parser.add_argument("--temporal-object", action="store_true", help="vae_temporal_object: the frame-difference "
                    "L1 weighted with the object weight")
args = parser.parse_args()
torch.set_num_threads(1)
model = WanWorldConfig(z_dim=args.z_dim, vae_base_dim=args.base_dim, spatial_factor=args.spatial)
cfg = PretrainConfig(vae_steps=args.steps, vae_object_per_object=args.per_object,
                     vae_temporal_object=args.temporal_object)
train_vae(args.out, cfg, model)  # stage 1 itself, latent statistics too
subprocess.run([sys.executable, str(Path(__file__).with_name("moving_vae_probe.py")), str(args.out / "vae")], check=True)
