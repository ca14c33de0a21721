"""Stages 1 and 2: the video VAE, then a sharper decoder with the encoder frozen.

Trained as a plain autoencoder on the posterior mode (sampling with the initial unit variance
buries the signal; Shapes World's lesson), with an object-weighted L1 + MSE, a spatial-gradient
loss for sharp edges, a frame-difference loss so that motion and flicker survive, and a tiny KL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan

from rats_app.io import load_tensors
from rats_app.training.loop import Stage, run_stage
from rats_app.training.schedules import lr_scheduler
from rats_app.worlds.moving_shapes.data import sample_batch
from rats_app.worlds.moving_shapes.model import WanWorldConfig, build_vae
from rats_app.worlds.moving_shapes.pretrain import PretrainConfig, device
from rats_app.worlds.moving_shapes.prompts import training_prompts
from rats_app.worlds.pretraining import object_pixel_weights, reconstruction_loss


def temporal_loss(recon: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 on frame differences. ``weight`` (B x 1 x F x H x W, e.g. object_pixel_weights): a difference
    counts with the larger of its two frames' weights, so a small moving object's leading and trailing
    edges are not drowned by the still background (the VAE folds two frames into one latent frame)."""
    error = (recon[:, :, 1:] - recon[:, :, :-1]) - (target[:, :, 1:] - target[:, :, :-1])
    if weight is None:
        return error.abs().mean()
    return (torch.maximum(weight[:, :, 1:], weight[:, :, :-1]) * error.abs()).mean()


def _clips(cfg: PretrainConfig, stream: int, step: int) -> torch.Tensor:
    rng = np.random.default_rng([cfg.seed, stream, step])  # per-step seed: resume == uninterrupted
    return sample_batch(training_prompts(), cfg.vae_batch, rng)[1].to(device())


def vae_loss(vae: AutoencoderKLWan, cfg: PretrainConfig, step: int):
    """Stage 1's loss on this step's clips (also what a VAE variant is judged with)."""
    x = _clips(cfg, 1, step)
    posterior = vae.encode(x).latent_dist
    recon = vae.decode(posterior.mode()).sample
    weight = object_pixel_weights(x, cfg.vae_object_weight, cfg.vae_object_per_object)
    loss, parts = reconstruction_loss(recon, x, weight, cfg.vae_edge_weight)
    temporal = temporal_loss(recon, x, weight if cfg.vae_temporal_object else None)
    kl = posterior.kl().mean() / x[0].numel()
    return loss + cfg.vae_temporal_weight * temporal + cfg.vae_kl_weight * kl, {**parts, "temporal": temporal.item()}


def decoder_modules(vae: AutoencoderKLWan) -> dict[str, torch.nn.Module]:
    """What a decoder phase trains (and its checkpoint holds)."""
    return {"decoder": vae.decoder, "post_quant_conv": vae.post_quant_conv}


def train_vae(work: Path, cfg: PretrainConfig, model: WanWorldConfig = WanWorldConfig()) -> AutoencoderKLWan:
    """Stage 1 (``model``: another design than the world's, for a VAE variant probe)."""
    final = work / "vae"
    if (final / "config.json").exists():
        return AutoencoderKLWan.from_pretrained(final).to(device())
    torch.manual_seed(cfg.seed)
    vae = build_vae(model).to(device())
    if cfg.vae_init:
        vae.load_state_dict(load_tensors(cfg.vae_init))
    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    scheduler = lr_scheduler(optimizer, "cosine", cfg.vae_steps, warmup_steps=100)

    run_stage(work, Stage("vae", cfg.vae_steps), {"vae": vae}, optimizer, scheduler,
              lambda step: vae_loss(vae, cfg, step))
    set_latent_statistics(vae, cfg)
    vae.save_pretrained(final)
    return vae


@torch.no_grad()
def set_latent_statistics(vae: AutoencoderKLWan, cfg: PretrainConfig) -> None:
    """WanPipeline decodes ``z * latents_std + latents_mean``: per-channel statistics of the data."""
    x = torch.cat([_clips(cfg, 2, i) for i in range(32)])
    z = vae.encode(x).latent_dist.mode().transpose(0, 1).flatten(1)  # C x everything else
    vae.register_to_config(latents_mean=z.mean(dim=1).tolist(), latents_std=z.std(dim=1).tolist())


def finetune_decoder(work: Path, cfg: PretrainConfig) -> AutoencoderKLWan:
    """Sharpen the decoder; the latent space (the transformer's data) does not change, so this runs
    alongside the transformer stage."""
    final = work / "vae_decoder"
    if (final / "config.json").exists():
        return AutoencoderKLWan.from_pretrained(final).to(device())
    vae = AutoencoderKLWan.from_pretrained(work / cfg.decoder_from).to(device())
    vae.requires_grad_(False)
    modules = decoder_modules(vae)
    for module in modules.values():
        module.requires_grad_(True)
    params = [p for module in modules.values() for p in module.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.decoder_lr, weight_decay=0.0)
    scheduler = lr_scheduler(optimizer, "cosine", cfg.decoder_steps)

    def loss_fn(step: int):
        x = _clips(cfg, 4, step)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
        recon = vae.decode(z).sample
        loss, parts = reconstruction_loss(recon, x, object_pixel_weights(x, cfg.decoder_object_weight),
                                          cfg.decoder_edge_weight)
        temporal = temporal_loss(recon, x)
        return loss + cfg.vae_temporal_weight * temporal, {**parts, "temporal": temporal.item()}

    run_stage(work, Stage("decoder", cfg.decoder_steps), modules, optimizer, scheduler, loss_fn)
    vae.eval()
    vae.save_pretrained(final)
    return vae
