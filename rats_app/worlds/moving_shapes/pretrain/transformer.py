"""Stages 3-5: a fixed pool of latents, the flow-matching transformer (with the text encoder), export.

The transformer learns rectified flow on normalised latents: x_t = (1 - t) x0 + t noise and a
velocity target noise - x0, at the timestep scale WanPipeline passes (t * 1000). The small UMT5
encoder trains with it (trained text embeddings make the prompt drive the clip within minutes in
Shapes World), a share of the prompts is dropped to "" so classifier-free guidance works, and
the latent positions of the object weigh more than the flat background. The export holds the
EMA weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, WanPipeline

from rats_app.io import load_torch_state, write_json
from rats_app.rats_loss import object_weights
from rats_app.training.loop import load_averaged
from rats_app.worlds.moving_shapes.data import to_tensor
from rats_app.worlds.moving_shapes.model import MAX_SEQUENCE_LENGTH, WanWorldConfig, build_world_pipeline
from rats_app.worlds.moving_shapes.pretrain import PretrainConfig, device
from rats_app.worlds.moving_shapes.prompts import held_out_prompts, training_prompts, vocabulary
from rats_app.worlds.moving_shapes.render import CANVAS, FPS, FRAMES, render_clip, sample_clip
from rats_app.worlds.pretraining import encode_pool, flow_times, train_flow_transformer

WORLD_ID = "moving-shapes/v1"


def normalised_latents(vae: AutoencoderKLWan, z: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(vae.config.latents_mean, device=z.device).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=z.device).view(1, -1, 1, 1, 1)
    return (z - mean) / std


def encode_dataset(work: Path, vae: AutoencoderKLWan, cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """Normalised latents of every training prompt's renders (half precision)."""
    prompts = training_prompts()

    def encode(indices, rng):
        clips = to_tensor([render_clip(sample_clip(prompts[i], rng)) for i in indices])
        return {"latents": normalised_latents(vae, vae.encode(clips.to(vae.device)).latent_dist.mode()).half().cpu()}
    return encode_pool(work, cfg, prompts, encode, chunk=64)


def flow_matching_loss(pipe: WanPipeline, x0: torch.Tensor, prompts: list[str], generator: torch.Generator,
                       object_weight: float, time_shift: float) -> torch.Tensor:
    """Object-weighted MSE between the predicted velocity and noise - x0 (latents B x C x F x H x W)."""
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    t = flow_times(len(x0), generator, time_shift).to(x0.device)
    xt = (1 - t.view(-1, 1, 1, 1, 1)) * x0 + t.view(-1, 1, 1, 1, 1) * noise
    embeds, _ = pipe.encode_prompt(prompt=prompts, do_classifier_free_guidance=False,
                                   max_sequence_length=MAX_SEQUENCE_LENGTH, device=x0.device)
    pred = pipe.transformer(hidden_states=xt, timestep=t * 1000, encoder_hidden_states=embeds, return_dict=False)[0]
    weights = object_weights(x0, object_weight)                        # B x positions
    error = (pred - (noise - x0)).pow(2).mean(dim=1).flatten(1)        # channels averaged
    return (error * weights).sum() / weights.sum()


def _trainable(pipe: WanPipeline) -> dict[str, torch.nn.Module]:
    return {"transformer": pipe.transformer, "text_encoder": pipe.text_encoder}


def train_transformer(work: Path, vae: AutoencoderKLWan, data: dict[str, torch.Tensor],
                      cfg: PretrainConfig) -> WanPipeline:
    pipe = build_world_pipeline(WanWorldConfig(), seed=cfg.seed)
    if cfg.transformer_init and not (work / "transformer_ckpt.pt").exists():  # a resume keeps its own weights
        warm_start(pipe, Path(cfg.transformer_init))
    pipe.to(device())
    train_flow_transformer(work, _trainable(pipe), cfg, data, training_prompts(),
                           lambda x0, prompts, generator: flow_matching_loss(pipe, x0, prompts, generator,
                                                                             cfg.object_weight, cfg.time_shift),
                           device())
    return pipe


def warm_start(pipe: WanPipeline, source: Path) -> None:
    """Load an earlier run's transformer and text encoder (float32, whatever they were saved in)."""
    from diffusers import WanTransformer3DModel
    from transformers import UMT5EncoderModel

    from rats_app.errors import ConfigError

    for name in ("transformer", "text_encoder"):
        if not (source / name / "config.json").exists():
            raise ConfigError(f"transformer_init: {source} has no {name}/ (an exported pipeline or a hand-over)")
    try:
        pipe.transformer.load_state_dict(
            WanTransformer3DModel.from_pretrained(source / "transformer", torch_dtype=torch.float32).state_dict())
        pipe.text_encoder.load_state_dict(
            UMT5EncoderModel.from_pretrained(source / "text_encoder", torch_dtype=torch.float32).state_dict())
    except RuntimeError as exc:  # strict loading: another width, depth or patch than WanWorldConfig's
        raise ConfigError(f"transformer_init: {source} is not this world's model: {str(exc).splitlines()[0]}") from None


def exported_pipeline(work: Path, cfg: PretrainConfig) -> tuple[WanPipeline, int]:
    """The pipeline with the transformer checkpoint's EMA weights and the sharpest VAE there is,
    and the transformer step it holds."""
    pipe = build_world_pipeline(WanWorldConfig(), seed=cfg.seed)
    steps = load_averaged(_trainable(pipe), load_torch_state(work / "transformer_ckpt.pt"), cfg.ema_decay)
    decoder = work / "vae_decoder"
    pipe.vae = AutoencoderKLWan.from_pretrained(decoder if (decoder / "config.json").exists() else work / "vae")
    return pipe, steps


def export(work: Path, out: Path, cfg: PretrainConfig) -> None:
    """Write a standard diffusers WanPipeline directory plus call_defaults.json and world.json."""
    pipe, steps = exported_pipeline(work, cfg)
    out.mkdir(parents=True, exist_ok=True)
    # Stored in float16 to halve the shipped transformer (21 -> 11 MB of the 60 MB asset budget);
    # diffusers loads it as float32, and the velocity moves by ~1e-3 of its std (checkpoints/README.md).
    pipe.transformer.to(torch.float16)
    pipe.save_pretrained(out)
    write_json(out / "call_defaults.json", {"max_sequence_length": MAX_SEQUENCE_LENGTH,
                                            "guidance_scale": cfg.guidance_scale})
    decoder_record = work / "vae_decoder" / "training.json"
    write_json(out / "world.json", {
        "world": WORLD_ID, "vocabulary": vocabulary(), "height": CANVAS, "width": CANVAS, "frames": FRAMES,
        "fps": FPS, "training_prompts": len(training_prompts()), "held_out_prompts": len(held_out_prompts()),
        "pretrain": {"config": asdict(cfg), "model": WanWorldConfig().to_dict(),
                     "transformer_steps": steps,
                     "decoder_training": json.loads(decoder_record.read_text()) if decoder_record.exists() else None},
    })
    print(f"exported transformer step {steps} to {out}")
