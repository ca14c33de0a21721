"""Stages 3-5: a fixed pool of latents, the flow-matching transformer (with both text encoders), export.

Rectified flow on normalised latents: x_t = (1 - t) x0 + t noise, the transformer predicts
noise - x0 (FLUX takes the timestep as sigma). Most of the 64 tokens are flat background, so the
object's tokens weigh more; a share of prompts dropped to "" teaches the unconditional velocity
true CFG needs. The export holds the EMA weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FluxPipeline

from rats_app.io import load_torch_state, write_json
from rats_app.rats_loss import object_weights
from rats_app.training.loop import load_averaged
from rats_app.worlds.pretraining import encode_pool, flow_times, train_flow_transformer
from rats_app.worlds.shapes.data import to_tensor
from rats_app.worlds.shapes.model import CALL_DEFAULTS, WorldModelConfig, build_world_pipeline
from rats_app.worlds.shapes.pretrain import PretrainConfig, device
from rats_app.worlds.shapes.prompts import held_out_prompts, training_prompts, vocabulary
from rats_app.worlds.shapes.render import render_scene, sample_scene


def encode_dataset(work: Path, vae: AutoencoderKL, cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """Normalised latents of every training prompt's renders, and whether each render was clean."""
    prompts = training_prompts()

    def encode(indices, rng):
        samples = [sample_scene(prompts[i], rng) for i in indices]
        z = vae.encode(to_tensor([render_scene(s) for s in samples]).to(vae.device)).latent_dist.mode()
        return {"latents": ((z - vae.config.shift_factor) * vae.config.scaling_factor).half().cpu(),
                "clean": torch.tensor([s.degradation.clean for s in samples])}
    return encode_pool(work, cfg, prompts, encode, chunk=256)


def trainable(pipe: FluxPipeline) -> dict[str, torch.nn.Module]:
    return {"transformer": pipe.transformer, "text_encoder": pipe.text_encoder, "text_encoder_2": pipe.text_encoder_2}


def flow_matching_loss(pipe: FluxPipeline, x0: torch.Tensor, prompts: list[str],
                       generator: torch.Generator, object_weight: float = 0.0) -> torch.Tensor:
    """Object-weighted MSE between the predicted velocity and noise - x0 (packed tokens)."""
    b, c, h, w = x0.shape
    noise = torch.randn(x0.shape, generator=generator, device="cpu").to(x0.device)
    t = flow_times(b, generator).to(x0.device)
    xt = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * noise
    prompt_embeds, pooled, text_ids = pipe.encode_prompt(
        prompt=prompts, prompt_2=None, device=x0.device, max_sequence_length=CALL_DEFAULTS["max_sequence_length"])
    img_ids = FluxPipeline._prepare_latent_image_ids(b, h // 2, w // 2, x0.device, x0.dtype)
    pred = pipe.transformer(hidden_states=FluxPipeline._pack_latents(xt, b, c, h, w), timestep=t,
                            pooled_projections=pooled, encoder_hidden_states=prompt_embeds, txt_ids=text_ids,
                            img_ids=img_ids, guidance=None, return_dict=False)[0]
    target = FluxPipeline._pack_latents(noise - x0, b, c, h, w)
    weights = object_weights(FluxPipeline._pack_latents(x0, b, c, h, w), object_weight, channel_dim=-1)
    return ((pred - target).pow(2).mean(dim=-1) * weights).sum() / weights.sum()


def train_transformer(work: Path, vae: AutoencoderKL, data: dict[str, torch.Tensor],
                      cfg: PretrainConfig) -> FluxPipeline:
    pipe = build_world_pipeline(WorldModelConfig(), seed=cfg.seed)
    pipe.vae = vae
    pipe.to(device())
    train_flow_transformer(work, trainable(pipe), cfg, data, training_prompts(),
                           lambda x0, prompts, generator: flow_matching_loss(pipe, x0, prompts, generator,
                                                                             cfg.object_weight), device())
    return pipe


def export(work: Path, out: Path, cfg: PretrainConfig) -> None:
    """Write the EMA weights as a standard diffusers FluxPipeline directory."""
    pipe = build_world_pipeline(WorldModelConfig(), seed=cfg.seed)
    steps = load_averaged(trainable(pipe), load_torch_state(work / "transformer_ckpt.pt"), cfg.ema_decay)
    decoder_done = (work / "vae_decoder" / "config.json").exists()
    pipe.vae = AutoencoderKL.from_pretrained(work / ("vae_decoder" if decoder_done else "vae"))
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out)
    call_defaults = dict(CALL_DEFAULTS)
    if cfg.true_cfg_scale > 1 and cfg.uncond_prob > 0:  # the model knows the empty prompt: guide against it
        call_defaults.update(true_cfg_scale=cfg.true_cfg_scale, negative_prompt="")
    write_json(out / "call_defaults.json", call_defaults)
    pretrain = {"config": asdict(cfg), "model": WorldModelConfig().to_dict(), "transformer_steps": steps,
                "decoder_finetuned": decoder_done}
    # A decoder fine-tuned elsewhere (a committed checkpoint copied in as vae_decoder) carries its own
    # training record; keep it beside the config, whose decoder_* fields do not describe that decoder.
    decoder_record = work / "vae_decoder" / "training.json"
    if decoder_done and decoder_record.exists():
        pretrain["decoder_training"] = json.loads(decoder_record.read_text())
    write_json(out / "world.json", {
        "world": "shapes-world/v1", "vocabulary": vocabulary(),
        "training_prompts": len(training_prompts()), "held_out_prompts": len(held_out_prompts()),
        "pretrain": pretrain,
    })
    print(f"exported step {steps} to {out}")
