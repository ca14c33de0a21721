"""What differs between the model families the one sampler drives: FLUX and Stable Diffusion 3.

The sampler (``rats_app.sampler``) owns the Euler flow chain; a family says how to encode
prompts, shape and pack the noise, call the transformer for a velocity (with or without
classifier-free guidance), which sigma grid the plain diffusers pipeline uses, and how to decode.
Each family reproduces its own diffusers pipeline's ``__call__`` exactly, so generation through
the sampler stays pixel-identical to plain diffusers for both.

| | FLUX (``FluxPipeline``) | SD3 / SD3.5 (``StableDiffusion3Pipeline``) |
|---|---|---|
| latents | 2x2 patches packed into tokens | unpacked B x C x h x w |
| timestep given to the transformer | sigma (t / 1000) | t (0..1000) |
| guidance | FLUX-dev: a distilled guidance *input* (one pass); schnell: none; any: ``true_cfg_scale`` with a negative prompt (two passes) | classifier-free: two passes |
| default grid (before shift) | linspace(1, 1/N, N) | linspace(sigma_max, sigma_min, N) |
| RATS student | same guidance value as the teacher | no guidance: one pass per step |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor


@dataclass
class Conditioning:
    """Encoded prompts. ``text_ids`` is FLUX's (shared by the batch); ``negative_*`` are SD3's
    unconditional embeddings for classifier-free guidance (None where the family has none)."""

    prompt_embeds: torch.Tensor
    pooled: torch.Tensor
    text_ids: torch.Tensor | None = None
    negative_embeds: torch.Tensor | None = None
    negative_pooled: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.prompt_embeds.shape[0]

    def split(self) -> list["Conditioning"]:
        """One Conditioning per prompt (for caching)."""
        def pick(t, i):
            return None if t is None else t[i:i + 1]
        return [Conditioning(self.prompt_embeds[i:i + 1], self.pooled[i:i + 1], self.text_ids,
                             pick(self.negative_embeds, i), pick(self.negative_pooled, i)) for i in range(len(self))]

    @staticmethod
    def cat(parts: list["Conditioning"]) -> "Conditioning":
        def join(name):
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else torch.cat(values)
        return Conditioning(join("prompt_embeds"), join("pooled"), parts[0].text_ids,
                            join("negative_embeds"), join("negative_pooled"))

    def to(self, device) -> "Conditioning":
        def move(t):
            return None if t is None else t.to(device)
        return Conditioning(*(move(getattr(self, n)) for n in
                              ("prompt_embeds", "pooled", "text_ids", "negative_embeds", "negative_pooled")))


class _Family:
    """What every family states about its diffusers pipeline's defaults."""

    name: str
    pipeline_class_name: str      # the diffusers pipeline class (as in model_index.json)
    default_guidance: float       # the pipeline's __call__ default guidance_scale
    default_max_sequence_length: int
    default_max_shift: float      # the max_shift the pipeline falls back to for a dynamic shift

    def supports(self, pipe) -> bool:
        import diffusers

        return isinstance(pipe, getattr(diffusers, self.pipeline_class_name))

    def negative_prompt_for(self, true_cfg_scale: float, negative_prompt: str | None) -> str | None:
        """The negative prompt the pipeline actually encodes for these settings."""
        return negative_prompt


class FluxFamily(_Family):
    name = "flux"
    pipeline_class_name = "FluxPipeline"
    default_guidance = 3.5
    default_max_sequence_length = 512
    default_max_shift = 1.15

    def negative_prompt_for(self, true_cfg_scale: float, negative_prompt: str | None) -> str | None:
        return negative_prompt if true_cfg_scale > 1 else None  # FluxPipeline encodes it only for true CFG

    def encode(self, pipe, prompts: list[str], max_sequence_length: int,
               negative_prompt: str | None = None) -> Conditioning:
        """With a negative prompt (FluxPipeline's true CFG) its embeddings come too, one per prompt."""
        def run(texts):
            return pipe.encode_prompt(prompt=texts, prompt_2=None, device=pipe.transformer.device,
                                      max_sequence_length=max_sequence_length)
        embeds, pooled, text_ids = run(prompts)
        if negative_prompt is None:
            return Conditioning(embeds, pooled, text_ids)
        negative, negative_pooled, _ = run([negative_prompt] * len(prompts))
        return Conditioning(embeds, pooled, text_ids, negative, negative_pooled)

    def latent_shape(self, pipe, height: int, width: int) -> tuple[int, int, int]:
        """(channels, latent height, latent width) before packing, as FluxPipeline.prepare_latents."""
        factor = pipe.vae_scale_factor
        return pipe.transformer.config.in_channels // 4, 2 * (height // (factor * 2)), 2 * (width // (factor * 2))

    def initial_noise(self, pipe, generators, height, width, dtype) -> torch.Tensor:
        from diffusers import FluxPipeline

        c, h, w = self.latent_shape(pipe, height, width)
        noise = randn_tensor((len(generators), c, h, w), generator=generators, device=pipe.transformer.device,
                             dtype=dtype)
        return FluxPipeline._pack_latents(noise, len(generators), c, h, w)

    def base_sigmas(self, pipe, num_steps: int) -> np.ndarray:
        """FluxPipeline's grid before the scheduler's shift."""
        return np.linspace(1.0, 1.0 / num_steps, num_steps)

    def image_seq_len(self, pipe, latents: torch.Tensor) -> int:
        return latents.shape[1]

    def always_pass_mu(self) -> bool:
        return True  # FluxPipeline computes mu for every scheduler (used only when shifting is dynamic)

    def velocity(self, pipe, latents: torch.Tensor, cond: Conditioning, height: int, width: int,
                 guidance_scale: float | None, true_cfg_scale: float = 1.0
                 ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        from diffusers import FluxPipeline

        transformer = pipe.transformer
        batch = latents.shape[0]
        _, h, w = self.latent_shape(pipe, height, width)
        img_ids = FluxPipeline._prepare_latent_image_ids(batch, h // 2, w // 2, latents.device, latents.dtype)
        guidance = None
        if transformer.config.guidance_embeds:  # FLUX-dev: guidance is an input, one pass per step
            scale = self.default_guidance if guidance_scale is None else guidance_scale
            guidance = torch.full([1], scale, device=latents.device, dtype=torch.float32).expand(batch)

        true_cfg = true_cfg_scale > 1 and cond.negative_embeds is not None  # FluxPipeline's do_true_cfg

        def one_pass(x, t, embeds, pooled):
            return transformer(hidden_states=x, timestep=t.expand(batch).to(x.dtype) / 1000, guidance=guidance,
                               pooled_projections=pooled, encoder_hidden_states=embeds,
                               txt_ids=cond.text_ids, img_ids=img_ids, return_dict=False)[0]

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            v = one_pass(x, t, cond.prompt_embeds, cond.pooled)
            if not true_cfg:
                return v
            # Two separate passes, as FluxPipeline makes them (a batched pass differs in the last bits).
            negative = one_pass(x, t, cond.negative_embeds, cond.negative_pooled)
            return negative + true_cfg_scale * (v - negative)
        return velocity

    def decode(self, pipe, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        from diffusers import FluxPipeline

        unpacked = FluxPipeline._unpack_latents(latents, height, width, pipe.vae_scale_factor)
        unpacked = unpacked / pipe.vae.config.scaling_factor + pipe.vae.config.shift_factor
        return pipe.vae.decode(unpacked.to(pipe.vae.dtype), return_dict=False)[0]

    def student_guidance(self, teacher_guidance: float | None) -> float | None:
        return teacher_guidance  # FLUX-dev's student keeps the distilled guidance input


class SD3Family(_Family):
    """Stable Diffusion 3 / 3.5: classifier-free guidance for the teacher, one pass for the student."""

    name = "sd3"
    pipeline_class_name = "StableDiffusion3Pipeline"
    default_guidance = 7.0
    default_max_sequence_length = 256
    default_max_shift = 1.16

    def encode(self, pipe, prompts: list[str], max_sequence_length: int,
               negative_prompt: str | None = None) -> Conditioning:
        # Negative embeddings ("" by default) are always computed: cheap, and the teacher needs them.
        embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
            prompt=prompts, prompt_2=None, prompt_3=None, device=pipe.transformer.device,
            do_classifier_free_guidance=True, max_sequence_length=max_sequence_length,
            negative_prompt=None if negative_prompt is None else [negative_prompt] * len(prompts))
        return Conditioning(embeds, pooled, None, negative, negative_pooled)

    def latent_shape(self, pipe, height: int, width: int) -> tuple[int, int, int]:
        factor = pipe.vae_scale_factor
        return pipe.transformer.config.in_channels, int(height) // factor, int(width) // factor

    def initial_noise(self, pipe, generators, height, width, dtype) -> torch.Tensor:
        c, h, w = self.latent_shape(pipe, height, width)
        return randn_tensor((len(generators), c, h, w), generator=generators, device=pipe.transformer.device,
                            dtype=dtype)

    def base_sigmas(self, pipe, num_steps: int) -> np.ndarray:
        """What FlowMatchEulerDiscreteScheduler.set_timesteps builds when given no sigmas."""
        scheduler = pipe.scheduler
        n = scheduler.config.num_train_timesteps
        return np.linspace(scheduler.sigma_max * n, scheduler.sigma_min * n, num_steps) / n

    def image_seq_len(self, pipe, latents: torch.Tensor) -> int:
        patch = pipe.transformer.config.patch_size
        return (latents.shape[2] // patch) * (latents.shape[3] // patch)

    def always_pass_mu(self) -> bool:
        return False  # StableDiffusion3Pipeline passes mu only to a dynamically shifting scheduler

    def velocity(self, pipe, latents: torch.Tensor, cond: Conditioning, height: int, width: int,
                 guidance_scale: float | None, true_cfg_scale: float = 1.0
                 ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        transformer = pipe.transformer  # SD3's CFG is guidance_scale; true_cfg_scale is FLUX's alone
        scale = self.default_guidance if guidance_scale is None else guidance_scale
        cfg = scale > 1  # StableDiffusion3Pipeline.do_classifier_free_guidance
        if cfg and cond.negative_embeds is None:
            raise ValueError("classifier-free guidance needs negative prompt embeddings")
        embeds = torch.cat([cond.negative_embeds, cond.prompt_embeds]) if cfg else cond.prompt_embeds
        pooled = torch.cat([cond.negative_pooled, cond.pooled]) if cfg else cond.pooled

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            model_input = torch.cat([x, x]) if cfg else x
            v = transformer(hidden_states=model_input, timestep=t.expand(model_input.shape[0]),
                            encoder_hidden_states=embeds, pooled_projections=pooled, return_dict=False)[0]
            if not cfg:
                return v
            uncond, text = v.chunk(2)
            return uncond + scale * (text - uncond)
        return velocity

    def decode(self, pipe, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        latents = latents / pipe.vae.config.scaling_factor + pipe.vae.config.shift_factor
        return pipe.vae.decode(latents.to(pipe.vae.dtype), return_dict=False)[0]

    def student_guidance(self, teacher_guidance: float | None) -> float | None:
        return 1.0  # the RATS student learns to need no CFG: one transformer pass per step


FAMILIES = (FluxFamily(), SD3Family())
SUPPORTED_PIPELINES = tuple(f.pipeline_class_name for f in FAMILIES)


def family_of(pipe):
    for family in FAMILIES:
        if family.supports(pipe):
            return family
    raise TypeError(f"{type(pipe).__name__} is not supported: RATS Studio drives "
                    f"{' and '.join(SUPPORTED_PIPELINES)} models")


def student_call(pipe, call: dict) -> dict:
    """Call settings for a RATS student: an SD3 student runs without CFG; a FLUX one is unchanged."""
    return {**call, "guidance_scale": family_of(pipe).student_guidance(call.get("guidance_scale"))}
