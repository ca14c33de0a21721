"""Pretrain the Moving Shapes teacher: VAE, decoder, latents, transformer, export (each resumable).

    python -m rats_app.worlds.moving_shapes.pretrain --work-dir runs/moving-shapes-pretrain     # every stage
    python -m rats_app.worlds.moving_shapes.pretrain --work-dir runs/moving-shapes-pretrain --stage export

Each stage checkpoints into the work dir and resumes from it (it is hours on 2 CPU cores); the
work dir keeps its config, and a command-line value overrides it. Uses CUDA when present.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rats_app import fields
from rats_app.fields import option


@dataclass
class PretrainConfig:
    seed: int = option(0, "seed of every draw (renders, noise, initial weights)", low=0)
    threads: int = option(1, "torch CPU threads", low=1)
    vae_steps: int = option(3000, "VAE steps (plain autoencoder on the posterior mode)", low=1)
    vae_batch: int = option(8, "clips per VAE / decoder step", low=1)
    vae_lr: float = option(1e-3, "VAE learning rate (warm-up 100 steps, cosine to 0)", low=0.0, low_open=True)
    vae_kl_weight: float = option(1e-6, "KL weight (keeps the posterior's variance head sane)", low=0.0)
    vae_edge_weight: float = option(1.0, "weight of the spatial-gradient L1", low=0.0)
    vae_temporal_weight: float = option(1.0, "weight of the frame-difference L1 (keeps motion and flicker)", low=0.0)
    vae_object_weight: float = option(10.0, "extra weight on the object's pixels", low=0.0)
    vae_object_per_object: bool = option(True, "scale the object weight per clip by the batch's mean object "
                                         "area over the clip's (small objects weigh as much as large ones)")
    vae_temporal_object: bool = option(True, "weight the frame-difference L1 with the object weight (the larger "
                                       "of the two frames'), so small moving objects' edges count")
    vae_init: str = option("", "start the VAE from these safetensors weights (an earlier run's vae/)")
    decoder_from: str = option("vae", "the VAE in the work dir whose decoder this phase sharpens: vae, or an "
                               "earlier phase's output copied aside (e.g. vae_decoder_a); writes vae_decoder")
    decoder_steps: int = option(2000, "decoder fine-tuning steps, encoder frozen", low=0)
    decoder_lr: float = option(5e-4, "decoder learning rate (cosine to 0)", low=0.0, low_open=True)
    decoder_edge_weight: float = option(2.0, "decoder phase: spatial-gradient weight", low=0.0)
    decoder_object_weight: float = option(10.0, "decoder phase: object weight", low=0.0)
    latents_per_prompt: int = option(32, "renders encoded per training prompt for the transformer", low=1)
    transformer_init: str = option("", "start the transformer and text encoder from this directory's transformer/ "
                                   "and text_encoder/ (an export, or a checkpoints/ hand-over between sessions) "
                                   "instead of random weights; the optimizer and schedule start fresh")
    steps: int = option(12000, "transformer steps", low=1)
    batch: int = option(32, "clips per transformer step", low=1)
    lr: float = option(1e-3, "transformer (and text encoder) learning rate", low=0.0, low_open=True)
    warmup: int = option(300, "linear warm-up steps", low=0)
    lr_decay_from: int = option(10500, "> 0: cosine decay from this step to 10 % at `steps` (0 = constant)", low=0)
    ema_decay: float = option(0.999, "EMA decay of the exported weights", low=0.0, high=1.0)
    object_weight: float = option(4.0, "extra flow-matching weight on latent positions of the object", low=0.0)
    time_shift: float = option(3.0, "> 1: training times moved toward the noise end (t -> s t / (1 + (s - 1) t)), "
                               "where the clip's shape and place are decided (3: +8 / +16 points right over 1 "
                               "in a paired 3000-step run, docs/moving-shapes.md)", low=0.0, low_open=True)
    uncond_prob: float = option(0.1, "share of prompts replaced by '' (teaches the unconditional velocity CFG needs)",
                                low=0.0, high=0.99)
    guidance_scale: float = option(3.0, "classifier-free guidance scale written to call_defaults.json", low=1.0)
    checkpoint_every: int = option(500, "transformer steps between checkpoints", low=1)

    def __post_init__(self) -> None:
        fields.validate(self)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
