"""Stages 1 and 2: the VAE, then decoder phases with the encoder frozen.

The VAE trains as a plain autoencoder on the posterior mode (sampling with the initial unit
variance buries the signal and slows learning badly), with an object-weighted L1 + MSE, an
image-gradient loss that keeps edges sharp and a tiny KL. A decoder phase sharpens the decoder
only: the latent space (the transformer's data) does not change, so it runs beside the transformer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from rats_app.io import load_tensors
from rats_app.training.loop import Stage, run_stage
from rats_app.training.schedules import lr_scheduler
from rats_app.worlds.palette import BACKGROUNDS, COLORS
from rats_app.worlds.pretraining import object_pixel_weights, reconstruction_loss, spatial_gradients
from rats_app.worlds.shapes.data import sample_batch, to_tensor
from rats_app.worlds.shapes.model import WorldModelConfig, build_world_pipeline
from rats_app.worlds.shapes.pretrain import PretrainConfig, device
from rats_app.worlds.shapes.prompts import training_prompts
from rats_app.worlds.shapes.render import Degradation, Sample, degrade


def _batch(cfg: PretrainConfig, stream: int, step: int, size: int | None = None):
    rng = np.random.default_rng([cfg.seed, stream, step] if step >= 0 else [cfg.seed, stream])
    return sample_batch(training_prompts(), size or cfg.vae_batch, rng)


def train_vae(work: Path, cfg: PretrainConfig) -> AutoencoderKL:
    final = work / "vae"
    if (final / "config.json").exists():
        return AutoencoderKL.from_pretrained(final).to(device())
    vae = build_world_pipeline(WorldModelConfig(), seed=cfg.seed).vae.to(device())
    if cfg.vae_init:
        vae.load_state_dict(load_tensors(cfg.vae_init))
    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    scheduler = lr_scheduler(optimizer, "cosine", cfg.vae_steps, warmup_steps=100)

    def loss_fn(step: int):
        x = _batch(cfg, 1, step)[1].to(device())
        posterior = vae.encode(x).latent_dist
        loss, parts = reconstruction_loss(vae.decode(posterior.mode()).sample, x,
                                          object_pixel_weights(x, cfg.vae_object_weight), cfg.vae_edge_weight)
        return loss + cfg.vae_kl_weight * posterior.kl().mean() / x[0].numel(), parts

    run_stage(work, Stage("vae", cfg.vae_steps), {"vae": vae}, optimizer, scheduler, loss_fn)
    set_latent_statistics(vae, cfg)
    vae.save_pretrained(final)
    return vae


@torch.no_grad()
def set_latent_statistics(vae: AutoencoderKL, cfg: PretrainConfig) -> None:
    """FluxPipeline decodes ``z / scaling_factor + shift_factor``: fit both to unit-variance latents."""
    _, x, _ = _batch(cfg, 2, -1, size=512)
    z = vae.encode(x.to(vae.device)).latent_dist.mode()
    vae.register_to_config(shift_factor=z.mean().item(), scaling_factor=1.0 / z.std().item())


def scene_palette(samples: list[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each rendered sample's background colour and background->object colour axis, in the VAE's
    [-1, 1] units, after its contrast degradation (blur and noise leave the two colours alone)."""
    # Each palette is a 1x2 "image" (background, object) put through the renderer's own contrast step.
    palettes = to_tensor([degrade(np.array([[BACKGROUNDS[s.scene.background], COLORS[s.scene.color]]], float),
                                  Degradation(contrast=s.degradation.contrast)) for s in samples])
    background = palettes[..., :1]
    return background, palettes[..., 1:] - background


def coverage_loss(recon: torch.Tensor, target: torch.Tensor, background: torch.Tensor,
                  axis: torch.Tensor) -> torch.Tensor:
    """L1 distance of object coverage and of its gradient, coverage being each pixel's position on
    the background->object colour line (0 = background, 1 = object), as the checker reads edges;
    plus the colour error off that line, also in units of the object's contrast.

    An absolute-error loss lets a decoder blur a gray-background edge (object contrast ~100-160
    levels) twice as far as a white one (~280) for the same loss; the checker, and a viewer, judge
    softness relative to contrast. Dividing by the contrast weighs every background alike."""
    squared = axis.pow(2).sum(dim=1, keepdim=True).clamp_min(1e-6)
    alpha_recon = ((recon - background) * axis).sum(dim=1, keepdim=True) / squared
    alpha_target = ((target - background) * axis).sum(dim=1, keepdim=True) / squared
    gx, gy = spatial_gradients(alpha_recon)
    tx, ty = spatial_gradients(alpha_target)
    # The colour error across the axis, in the same units: without it the weight on coverage
    # let orange drift toward yellow on gray (both lie close to one line through gray).
    error = recon - target
    across = error - ((error * axis).sum(dim=1, keepdim=True) / squared) * axis
    return (F.l1_loss(alpha_recon, alpha_target) + F.l1_loss(gx, tx) + F.l1_loss(gy, ty)
            + (across.abs().sum(dim=1, keepdim=True) / squared.sqrt()).mean())


def finetune_decoder(work: Path, cfg: PretrainConfig) -> AutoencoderKL:
    final = work / "vae_decoder"
    if (final / "config.json").exists():
        return AutoencoderKL.from_pretrained(final).to(device())
    vae = AutoencoderKL.from_pretrained(work / cfg.decoder_from).to(device())
    vae.requires_grad_(False)
    vae.decoder.requires_grad_(True)
    optimizer = torch.optim.AdamW(vae.decoder.parameters(), lr=cfg.decoder_lr, weight_decay=0.0)
    scheduler = lr_scheduler(optimizer, "cosine", cfg.decoder_steps)

    def loss_fn(step: int):
        samples, x, _ = _batch(cfg, 4, step)
        x = x.to(device())
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
        recon = vae.decode(z).sample
        loss, parts = reconstruction_loss(recon, x, object_pixel_weights(x, cfg.decoder_object_weight),
                                          cfg.decoder_edge_weight)
        coverage = torch.zeros(())
        if cfg.decoder_coverage_weight > 0:
            # Noise is not in the latent to reproduce; divided by a faded image's small contrast it
            # would swamp the edge signal, so noisy renders are left to the absolute losses.
            keep = [i for i, sample in enumerate(samples) if sample.degradation.noise_sigma == 0]
            if keep:  # an all-noisy batch would average over nothing (NaN)
                background, axis = scene_palette([samples[i] for i in keep])
                coverage = coverage_loss(recon[keep], x[keep], background.to(device()), axis.to(device()))
                loss = loss + cfg.decoder_coverage_weight * coverage
        return loss, {**parts, "coverage": coverage.item()}

    run_stage(work, Stage("decoder", cfg.decoder_steps), {"decoder": vae.decoder}, optimizer, scheduler, loss_fn)
    vae.eval()
    vae.save_pretrained(final)
    return vae
