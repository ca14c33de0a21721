"""Pretrain the Shapes World teacher: VAE, decoder phases, latents, transformer, export (each resumable).

    python -m rats_app.worlds.shapes.pretrain --work-dir runs/pretrain            # all stages, resumable
    python -m rats_app.worlds.shapes.pretrain --work-dir runs/pretrain --stage export --out assets/shapes-flux

Every stage checkpoints into ``--work-dir`` and resumes from it (rats_app.training.loop), so the
job can be stopped and restarted at will (it is hours on 2 CPU cores). The transformer is trained
together with the two tiny text encoders: trained text embeddings make the prompt drive the image
within minutes. The exported pipeline holds the EMA weights. Uses CUDA when present.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rats_app import fields
from rats_app.errors import ConfigError
from rats_app.fields import option


@dataclass
class PretrainConfig:
    seed: int = option(0, "seed of every draw (renders, noise, initial weights)", low=0)
    threads: int = option(2, "torch CPU threads", low=1)
    vae_steps: int = option(3500, "VAE steps (plain autoencoder on the posterior mode)", low=1)
    vae_batch: int = option(16, "images per VAE / decoder step", low=1)
    vae_lr: float = option(1e-3, "VAE learning rate (warm-up 100 steps, cosine to 0)", low=0.0, low_open=True)
    vae_kl_weight: float = option(1e-6, "KL weight (keeps the posterior's variance head sane)", low=0.0)
    vae_edge_weight: float = option(1.0, "weight of the image-gradient L1", low=0.0)
    vae_object_weight: float = option(0.0, "extra weight on the object's pixels (10 recommended)", low=0.0)
    vae_init: str = option("", "start the VAE from these safetensors weights (a committed checkpoint)")
    decoder_steps: int = option(3000, "decoder fine-tuning steps, encoder frozen", low=1)
    decoder_lr: float = option(5e-4, "decoder learning rate (cosine to 0)", low=0.0, low_open=True)
    decoder_edge_weight: float = option(2.0, "decoder phase: image-gradient weight", low=0.0)
    decoder_object_weight: float = option(10.0, "decoder phase: object weight", low=0.0)
    decoder_coverage_weight: float = option(0.0, "> 0: contrast-normalised edge loss (see coverage_loss)", low=0.0)
    decoder_from: str = option("vae", "work-dir subfolder the decoder phase starts from (a previous phase)")
    latents_per_prompt: int = option(48, "renders encoded per training prompt for the transformer", low=1)
    steps: int = option(40000, "transformer steps", low=1)
    batch: int = option(32, "images per transformer step", low=1)
    lr: float = option(5e-4, "transformer (and text encoders) learning rate", low=0.0, low_open=True)
    warmup: int = option(300, "linear warm-up steps", low=0)
    lr_decay_from: int = option(0, "> 0: cosine decay of lr from this step to 10 % at `steps` (0 = constant)", low=0)
    ema_decay: float = option(0.999, "EMA decay of the exported weights", low=0.0, high=1.0, high_open=True)
    object_weight: float = option(4.0, "extra flow-matching weight on tokens of the object", low=0.0)
    uncond_prob: float = option(0.0, "share of prompts replaced by '' (so true classifier-free guidance works)",
                                low=0.0, high=1.0, high_open=True)
    true_cfg_scale: float = option(1.0, "> 1 (with uncond_prob > 0): exported call_defaults ask for FluxPipeline's "
                                   "true CFG at this scale", low=1.0)
    checkpoint_every: int = option(500, "transformer steps between checkpoints", low=1)

    def __post_init__(self) -> None:
        fields.validate(self)
        if not self.decoder_from:
            raise ConfigError("decoder_from must name a phase folder in the work dir, got ''")


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
