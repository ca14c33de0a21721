"""The one flow-matching sampler: teacher, baseline, student and RATS training rollouts.

It reproduces ``FluxPipeline.__call__`` step for step (same noise draw, same timestep schedule,
same Euler update in float32), so generation through it is pixel-identical to plain diffusers,
and adds what training needs: gradients through the whole chain (optionally checkpointed per
step), arbitrary sigma grids (a teacher grid that refines the student's), and the predicted clean
latents x0_hat = x_t - sigma * v at every step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers import FluxPipeline
from diffusers.pipelines.flux.pipeline_flux import calculate_shift, retrieve_timesteps
from diffusers.utils.torch_utils import randn_tensor
from torch.utils.checkpoint import checkpoint as grad_checkpoint


@dataclass
class Conditioning:
    """Encoded prompts, as FluxPipeline.encode_prompt returns them."""

    prompt_embeds: torch.Tensor
    pooled: torch.Tensor
    text_ids: torch.Tensor

    def __len__(self) -> int:
        return self.prompt_embeds.shape[0]


@dataclass
class Rollout:
    """Result of one sampling chain (packed latents, B x tokens x channels)."""

    latents: torch.Tensor
    sigmas: torch.Tensor                                   # the grid, N + 1 values ending at 0
    x0_preds: list[torch.Tensor] = field(default_factory=list)  # one per step (at sigmas[i])
    states: list[torch.Tensor] = field(default_factory=list)    # x_t entering each step


def encode(pipe: FluxPipeline, prompts: list[str], max_sequence_length: int = 512) -> Conditioning:
    embeds, pooled, text_ids = pipe.encode_prompt(
        prompt=prompts, prompt_2=None, device=pipe.transformer.device,
        max_sequence_length=max_sequence_length)
    return Conditioning(embeds, pooled, text_ids)


def latent_shape(pipe: FluxPipeline, height: int, width: int) -> tuple[int, int, int]:
    """(channels, latent height, latent width) before packing, as FluxPipeline.prepare_latents."""
    factor = pipe.vae_scale_factor
    return pipe.transformer.config.in_channels // 4, 2 * (height // (factor * 2)), 2 * (width // (factor * 2))


def initial_noise(pipe: FluxPipeline, generators: list[torch.Generator], height: int, width: int,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Packed starting noise; sample i is drawn from generators[i] exactly as FluxPipeline does."""
    c, h, w = latent_shape(pipe, height, width)
    device = pipe.transformer.device
    noise = randn_tensor((len(generators), c, h, w), generator=generators, device=device, dtype=dtype)
    return FluxPipeline._pack_latents(noise, len(generators), c, h, w)


def default_sigmas(num_steps: int) -> np.ndarray:
    """FluxPipeline's default grid before the scheduler's shift: linspace(1, 1/N, N)."""
    return np.linspace(1.0, 1.0 / num_steps, num_steps)


def refined_sigmas(num_steps: int, subdivisions: int) -> np.ndarray:
    """A grid of num_steps * subdivisions steps that contains every point of the num_steps grid."""
    return default_sigmas(num_steps * subdivisions)


def schedule(pipe: FluxPipeline, num_steps: int, image_seq_len: int,
             sigmas: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Timesteps (N) and sigmas (N + 1) exactly as FluxPipeline computes them.

    Works on a copy of the scheduler so concurrent callers never share its step state.
    """
    scheduler = copy.deepcopy(pipe.scheduler)
    sigmas = default_sigmas(num_steps) if sigmas is None else sigmas
    if getattr(scheduler.config, "use_flow_sigmas", False):
        sigmas = None
    mu = calculate_shift(
        image_seq_len,
        scheduler.config.get("base_image_seq_len", 256),
        scheduler.config.get("max_image_seq_len", 4096),
        scheduler.config.get("base_shift", 0.5),
        scheduler.config.get("max_shift", 1.15),
    )
    timesteps, _ = retrieve_timesteps(scheduler, num_steps, pipe.transformer.device, sigmas=sigmas, mu=mu)
    return timesteps, scheduler.sigmas.to(pipe.transformer.device)


def denoise(pipe: FluxPipeline, latents: torch.Tensor, cond: Conditioning, height: int, width: int,
            num_steps: int, sigmas: np.ndarray | None = None, guidance_scale: float = 3.5,
            grad: bool = False, checkpoint: bool = False, record: bool = False) -> Rollout:
    """Run the Euler flow chain from ``latents`` (packed noise at sigma = 1) to sigma = 0."""
    transformer = pipe.transformer
    batch = latents.shape[0]
    _, h, w = latent_shape(pipe, height, width)
    img_ids = FluxPipeline._prepare_latent_image_ids(batch, h // 2, w // 2, latents.device, latents.dtype)
    timesteps, grid = schedule(pipe, num_steps, latents.shape[1], sigmas)
    guidance = None
    if transformer.config.guidance_embeds:
        guidance = torch.full([1], guidance_scale, device=latents.device, dtype=torch.float32).expand(batch)
    rollout = Rollout(latents=latents, sigmas=grid)

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return transformer(hidden_states=x, timestep=t.expand(batch).to(x.dtype) / 1000, guidance=guidance,
                           pooled_projections=cond.pooled, encoder_hidden_states=cond.prompt_embeds,
                           txt_ids=cond.text_ids, img_ids=img_ids, return_dict=False)[0]

    with torch.set_grad_enabled(grad):
        for i, t in enumerate(timesteps):
            if grad and checkpoint:
                v = grad_checkpoint(velocity, latents, t, use_reentrant=False)
            else:
                v = velocity(latents, t)
            if record:
                rollout.states.append(latents)
                rollout.x0_preds.append(latents - grid[i] * v)
            # FlowMatchEulerDiscreteScheduler.step: the update in float32, cast back.
            latents = (latents.to(torch.float32) + (grid[i + 1] - grid[i]) * v).to(v.dtype)
    rollout.latents = latents
    return rollout


def decode(pipe: FluxPipeline, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Packed latents -> images in [-1, 1] (B x 3 x H x W), differentiable."""
    unpacked = FluxPipeline._unpack_latents(latents, height, width, pipe.vae_scale_factor)
    unpacked = unpacked / pipe.vae.config.scaling_factor + pipe.vae.config.shift_factor
    return pipe.vae.decode(unpacked.to(pipe.vae.dtype), return_dict=False)[0]


@torch.no_grad()
def generate(pipe: FluxPipeline, prompts: list[str], num_steps: int, seeds: list[int],
             height: int, width: int, max_sequence_length: int = 512, guidance_scale: float = 3.5):
    """Images as FluxPipeline would make them, one seed per prompt: returns PIL images."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    cond = encode(pipe, prompts, max_sequence_length)
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    noise = initial_noise(pipe, generators, height, width, cond.prompt_embeds.dtype)
    rollout = denoise(pipe, noise, cond, height, width, num_steps, guidance_scale=guidance_scale)
    images = decode(pipe, rollout.latents, height, width)
    return pipe.image_processor.postprocess(images, output_type="pil")
