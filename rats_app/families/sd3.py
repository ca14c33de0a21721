"""Stable Diffusion 3 / 3.5 (``StableDiffusion3Pipeline``): unpacked B x C x h x w latents, the
timestep on the 0-1000 scale, classifier-free guidance in one batched pass of two halves. The
RATS student is trained and run without guidance (one pass per step): it learns to need no CFG."""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor

from rats_app.families.base import Conditioning, ModelFamily, Velocity


class SD3Family(ModelFamily):
    name = "sd3"
    pipeline_class_name = "StableDiffusion3Pipeline"
    default_guidance = 7.0
    default_max_sequence_length = 256
    default_max_shift = 1.16

    def encode(self, prompts, max_sequence_length, negative_prompt=None) -> Conditioning:
        # Negative embeddings ("" by default) are always computed: cheap, and the teacher needs them.
        embeds, negative, pooled, negative_pooled = self.pipe.encode_prompt(
            prompt=prompts, prompt_2=None, prompt_3=None, device=self.device, do_classifier_free_guidance=True,
            max_sequence_length=max_sequence_length,
            negative_prompt=None if negative_prompt is None else [negative_prompt] * len(prompts))
        return Conditioning(embeds, pooled, None, negative, negative_pooled)

    def initial_noise(self, generators, size, dtype) -> torch.Tensor:
        factor = self.pipe.vae_scale_factor
        shape = (len(generators), self.pipe.transformer.config.in_channels, size.height // factor, size.width // factor)
        return randn_tensor(shape, generator=generators, device=self.device, dtype=dtype)

    def image_seq_len(self, latents) -> int:
        patch = self.pipe.transformer.config.patch_size
        return (latents.shape[2] // patch) * (latents.shape[3] // patch)

    def velocity(self, latents, cond, size, guidance_scale, true_cfg_scale=1.0, batch_guidance=True) -> Velocity:
        # SD3's CFG is guidance_scale (true_cfg_scale is FLUX's alone), always one batched pass as the pipeline's.
        transformer = self.pipe.transformer
        scale = self.default_guidance if guidance_scale is None else guidance_scale
        cfg = scale > 1  # StableDiffusion3Pipeline.do_classifier_free_guidance
        if cfg and cond.negative_embeds is None:
            raise ValueError("classifier-free guidance needs negative prompt embeddings")
        embeds = torch.cat([cond.negative_embeds, cond.prompt_embeds]) if cfg else cond.prompt_embeds
        pooled = torch.cat([cond.negative_pooled, cond.pooled]) if cfg else cond.pooled

        def velocity(x, t):
            model_input = torch.cat([x, x]) if cfg else x
            v = transformer(hidden_states=model_input, timestep=t.expand(model_input.shape[0]),
                            encoder_hidden_states=embeds, pooled_projections=pooled, return_dict=False)[0]
            if not cfg:
                return v
            uncond, text = v.chunk(2)
            return uncond + scale * (text - uncond)
        return velocity

    def decode(self, latents, size) -> torch.Tensor:
        vae = self.pipe.vae
        latents = latents / vae.config.scaling_factor + vae.config.shift_factor
        return vae.decode(latents.to(vae.dtype), return_dict=False)[0]

    def student_guidance(self, teacher_guidance):
        return 1.0  # one transformer pass per step
