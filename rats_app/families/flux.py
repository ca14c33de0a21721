"""FLUX (``FluxPipeline``): 2x2 latent patches packed into tokens, the timestep as sigma, and either
a distilled guidance *input* (FLUX.1-dev: one pass per step), none (schnell), or FluxPipeline's
true CFG with a negative prompt (two separate passes)."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import FluxPipeline
from diffusers.utils.torch_utils import randn_tensor

from rats_app.families.base import Conditioning, ModelFamily, Size, Velocity, guided


class FluxFamily(ModelFamily):
    name = "flux"
    pipeline_class_name = "FluxPipeline"
    default_guidance = 3.5
    default_max_sequence_length = 512
    latent_channel_dim = -1  # packed latents: B x tokens x (channels x 2 x 2)
    call_keys = ModelFamily.call_keys | {"true_cfg_scale"}
    cfg_key = "true_cfg_scale"  # guidance_scale is FLUX.1-dev's distilled guidance input, one pass

    def cfg_scale(self, call):
        scale = float(call.get("true_cfg_scale") or 1.0)
        return scale if self.negative_prompt_for(None, scale, call.get("negative_prompt")) is not None else 1.0

    def negative_prompt_for(self, guidance_scale, true_cfg_scale, negative_prompt):
        return negative_prompt if true_cfg_scale > 1 else None  # FluxPipeline encodes it only for true CFG

    def encode(self, prompts, max_sequence_length, negative_prompt=None) -> Conditioning:
        """With a negative prompt (true CFG) its embeddings come too, one per prompt."""
        def run(texts):
            return self.pipe.encode_prompt(prompt=texts, prompt_2=None, device=self.device,
                                           max_sequence_length=max_sequence_length)
        embeds, pooled, text_ids = run(prompts)
        if negative_prompt is None:
            return Conditioning(embeds, pooled, text_ids)
        negative, negative_pooled, _ = run([negative_prompt] * len(prompts))
        return Conditioning(embeds, pooled, text_ids, negative, negative_pooled)

    def latent_shape(self, size: Size) -> tuple[int, int, int]:
        """(channels, latent height, latent width) before packing, as FluxPipeline.prepare_latents."""
        factor = self.pipe.vae_scale_factor
        return (self.pipe.transformer.config.in_channels // 4, 2 * (size.height // (factor * 2)),
                2 * (size.width // (factor * 2)))

    def initial_noise(self, generators, size, dtype) -> torch.Tensor:
        c, h, w = self.latent_shape(size)
        noise = randn_tensor((len(generators), c, h, w), generator=generators, device=self.device, dtype=dtype)
        return FluxPipeline._pack_latents(noise, len(generators), c, h, w)

    def image_seq_len(self, latents) -> int:
        return latents.shape[1]

    def base_sigmas(self, num_steps) -> np.ndarray:
        return np.linspace(1.0, 1.0 / num_steps, num_steps)

    def refined_sigmas(self, num_steps, subdivisions) -> np.ndarray:
        return self.base_sigmas(num_steps * subdivisions)  # linspace(1, 1/(N m), N m) refines the N grid

    def passes_mu(self, scheduler) -> bool:
        return True  # FluxPipeline computes mu for every scheduler (used only when shifting is dynamic)

    def velocity(self, latents, cond, size, guidance_scale, true_cfg_scale=1.0, batch_guidance=False) -> Velocity:
        transformer = self.pipe.transformer
        batch = latents.shape[0]
        _, h, w = self.latent_shape(size)
        img_ids = FluxPipeline._prepare_latent_image_ids(batch, h // 2, w // 2, latents.device, latents.dtype)
        guidance = None
        if transformer.config.guidance_embeds:  # FLUX-dev: guidance is an input, one pass per step
            scale = self.default_guidance if guidance_scale is None else guidance_scale
            guidance = torch.full([1], scale, device=latents.device, dtype=torch.float32).expand(batch)
        true_cfg = true_cfg_scale > 1 and cond.negative_embeds is not None  # FluxPipeline's do_true_cfg

        def one_pass(x, t, embeds, pooled):
            rows = x.shape[0]
            g = None if guidance is None else guidance[:1].expand(rows)
            return transformer(hidden_states=x, timestep=t.expand(rows).to(x.dtype) / 1000, guidance=g,
                               pooled_projections=pooled, encoder_hidden_states=embeds,
                               txt_ids=cond.text_ids, img_ids=img_ids, return_dict=False)[0]

        def velocity(x, t):
            if not true_cfg:
                return one_pass(x, t, cond.prompt_embeds, cond.pooled)
            # Two separate passes, as FluxPipeline makes them, unless batch_guidance asks for one.
            return guided(one_pass, x, t, (cond.prompt_embeds, cond.pooled), (cond.negative_embeds,
                          cond.negative_pooled), true_cfg_scale, batch_guidance)
        return velocity

    def decode(self, latents, size) -> torch.Tensor:
        vae = self.pipe.vae
        unpacked = FluxPipeline._unpack_latents(latents, size.height, size.width, self.pipe.vae_scale_factor)
        unpacked = unpacked / vae.config.scaling_factor + vae.config.shift_factor
        return vae.decode(unpacked.to(vae.dtype), return_dict=False)[0]
