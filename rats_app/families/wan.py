"""Wan2.1 text-to-video (``WanPipeline``): 5-D latents B x C x F x H x W, the UMT5 text encoder,
classifier-free guidance with a negative prompt in two separate passes per step, the timestep on
the 0-1000 scale, and the pipeline's own scheduler (the hub checkpoints ship UniPC with
``flow_shift``; training rollouts use the flow-matching Euler grid on the same shift).

The RATS student keeps the teacher's guidance: a Wan LoRA run with the model's call settings
(``WanPipeline.__call__`` with ``load_lora_weights``) is then the student exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from rats_app.errors import UserError
from rats_app.families.base import Conditioning, ModelFamily, Size, Velocity, guided


class WanFamily(ModelFamily):
    name = "wan"
    pipeline_class_name = "WanPipeline"
    media = "video"
    default_guidance = 5.0
    default_max_sequence_length = 512
    call_keys = ModelFamily.call_keys | {"num_frames"}

    @property
    def temporal_factor(self) -> int:
        return self.pipe.vae_scale_factor_temporal

    @property
    def spatial_factor(self) -> int:
        return self.pipe.vae_scale_factor_spatial

    def default_size(self) -> Size:
        return Size(480, 832, 81)  # WanPipeline.__call__'s defaults

    def check_size(self, size: Size) -> Size:
        """A clear error before any work (WanPipeline would round silently and warn)."""
        if size.frames is None or size.frames < 1 or (size.frames - 1) % self.temporal_factor:
            raise UserError(f"num_frames must be {self.temporal_factor}k+1 for this model (its VAE compresses "
                            f"time {self.temporal_factor}x), got {size.frames}")
        patch = self.pipe.transformer.config.patch_size
        multiple = (self.spatial_factor * patch[1], self.spatial_factor * patch[2])
        if size.height % multiple[0] or size.width % multiple[1]:
            raise UserError(f"height and width must be multiples of {multiple[0]} and {multiple[1]} for this model "
                            f"(VAE factor {self.spatial_factor} x patch {patch[1]}), got {size.height}x{size.width}")
        return size

    def negative_prompt_for(self, guidance_scale, true_cfg_scale, negative_prompt):
        scale = self.default_guidance if guidance_scale is None else guidance_scale
        return (negative_prompt or "") if scale > 1 else None  # WanPipeline encodes it only for CFG

    def encode(self, prompts, max_sequence_length, negative_prompt=None) -> Conditioning:
        guided = negative_prompt is not None
        embeds, negative = self.pipe.encode_prompt(
            prompt=prompts, negative_prompt=[negative_prompt] * len(prompts) if guided else None,
            do_classifier_free_guidance=guided, max_sequence_length=max_sequence_length, device=self.device)
        dtype = self.pipe.transformer.dtype
        return Conditioning(embeds.to(dtype), negative_embeds=negative.to(dtype) if guided else None)

    def latent_shape(self, size: Size) -> tuple[int, int, int, int]:
        self.check_size(size)
        return (self.pipe.transformer.config.in_channels, (size.frames - 1) // self.temporal_factor + 1,
                size.height // self.spatial_factor, size.width // self.spatial_factor)

    def initial_noise(self, generators, size, dtype) -> torch.Tensor:
        # WanPipeline.prepare_latents draws float32 latents whatever the transformer's dtype.
        return randn_tensor((len(generators), *self.latent_shape(size)), generator=generators, device=self.device,
                            dtype=torch.float32)

    def image_seq_len(self, latents) -> int:
        p = self.pipe.transformer.config.patch_size
        return int(np.prod([latents.shape[2 + i] // p[i] for i in range(3)]))

    def velocity(self, latents, cond, size, guidance_scale, true_cfg_scale=1.0, batch_guidance=False) -> Velocity:
        transformer = self.pipe.transformer
        scale = self.default_guidance if guidance_scale is None else guidance_scale
        cfg = scale > 1  # WanPipeline.do_classifier_free_guidance
        if cfg and cond.negative_embeds is None:
            raise ValueError("classifier-free guidance needs negative prompt embeddings")

        def one_pass(x, t, embeds):
            return transformer(hidden_states=x.to(transformer.dtype), timestep=t.expand(x.shape[0]),
                               encoder_hidden_states=embeds, return_dict=False)[0]

        def velocity(x, t):
            if not cfg:
                return one_pass(x, t, cond.prompt_embeds)
            # A separate unconditional pass, as WanPipeline makes it, unless batch_guidance asks for one.
            return guided(one_pass, x, t, (cond.prompt_embeds,), (cond.negative_embeds,), scale, batch_guidance)
        return velocity

    def decode(self, latents, size) -> torch.Tensor:
        vae = self.pipe.vae
        z_dim = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean, device=latents.device).view(1, z_dim, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std, device=latents.device).view(1, z_dim, 1, 1, 1)
        latents = latents.to(vae.dtype) * std.to(vae.dtype) + mean.to(vae.dtype)  # WanPipeline: z / (1/std) + mean
        return vae.decode(latents, return_dict=False)[0]

    def postprocess(self, pixels: torch.Tensor) -> list[np.ndarray]:
        """Float frames in [0, 1], F x H x W x 3 per clip (WanPipeline's ``output_type="np"``)."""
        return list(self.pipe.video_processor.postprocess_video(pixels, output_type="np"))
