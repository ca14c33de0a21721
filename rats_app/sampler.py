"""The one flow-matching sampler: teacher, baseline, student and RATS training rollouts.

It reproduces the diffusers pipeline's ``__call__`` step for step (same noise draw, same timestep
schedule, same Euler update in float32), so generation through it is pixel-identical to plain
diffusers, and adds what training needs: gradients through the whole chain (optionally
checkpointed per step), arbitrary sigma grids (a teacher grid that refines the student's), and
the predicted clean latents x0_hat = x_t - sigma * v at every step. What differs between FLUX
and SD3 (packing, guidance, timestep scale, default grid) lives in ``rats_app.families``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers.pipelines.flux.pipeline_flux import calculate_shift, retrieve_timesteps
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from rats_app.families import Conditioning, family_of

__all__ = ["Conditioning", "Rollout", "encode", "latent_shape", "initial_noise", "default_sigmas",
           "refined_sigmas", "schedule", "denoise", "decode", "generate"]


@dataclass
class Rollout:
    """Result of one sampling chain (latents in the family's layout: FLUX packed, SD3 unpacked)."""

    latents: torch.Tensor
    sigmas: torch.Tensor                                   # the grid, N + 1 values ending at 0
    x0_preds: list[torch.Tensor] = field(default_factory=list)  # one per step (at sigmas[i])
    states: list[torch.Tensor] = field(default_factory=list)    # x_t entering each step


def encode(pipe, prompts: list[str], max_sequence_length: int = 512,
           negative_prompt: str | None = None) -> Conditioning:
    return family_of(pipe).encode(pipe, prompts, max_sequence_length, negative_prompt)


def latent_shape(pipe, height: int, width: int) -> tuple[int, int, int]:
    """(channels, latent height, latent width) before any packing."""
    return family_of(pipe).latent_shape(pipe, height, width)


def initial_noise(pipe, generators: list[torch.Generator], height: int, width: int,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Starting noise; sample i is drawn from generators[i] exactly as the pipeline does."""
    return family_of(pipe).initial_noise(pipe, generators, height, width, dtype)


def default_sigmas(num_steps: int, pipe=None) -> np.ndarray:
    """The pipeline's default grid before the scheduler's shift (FLUX's when no pipe is given)."""
    if pipe is None:
        return np.linspace(1.0, 1.0 / num_steps, num_steps)
    return family_of(pipe).base_sigmas(pipe, num_steps)


def refined_sigmas(num_steps: int, subdivisions: int, pipe=None) -> np.ndarray:
    """A grid of num_steps * subdivisions steps that contains every point of the num_steps grid.

    Each interval of the default grid is cut into equal parts, including the last one down to
    sigma = 0 (the scheduler appends that 0), so the shifted grids nest too: the shift is monotone.
    """
    if pipe is None or family_of(pipe).name == "flux":
        return default_sigmas(num_steps * subdivisions)  # FLUX: linspace(1, 1/(N m), N m) is that refinement
    ends = np.append(default_sigmas(num_steps, pipe), 0.0)
    fractions = np.arange(subdivisions) / subdivisions
    return (ends[:-1, None] + (ends[1:] - ends[:-1])[:, None] * fractions[None, :]).reshape(-1)


def schedule(pipe, num_steps: int, image_seq_len: int,
             sigmas: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Timesteps (N) and sigmas (N + 1) exactly as the pipeline computes them.

    Works on a copy of the scheduler so concurrent callers never share its step state.
    """
    family = family_of(pipe)
    scheduler = copy.deepcopy(pipe.scheduler)
    sigmas = default_sigmas(num_steps, pipe) if sigmas is None else sigmas
    if getattr(scheduler.config, "use_flow_sigmas", False):
        sigmas = None
    kwargs = {}
    if family.always_pass_mu() or scheduler.config.get("use_dynamic_shifting", False):
        kwargs["mu"] = calculate_shift(
            image_seq_len,
            scheduler.config.get("base_image_seq_len", 256),
            scheduler.config.get("max_image_seq_len", 4096),
            scheduler.config.get("base_shift", 0.5),
            scheduler.config.get("max_shift", family.default_max_shift),
        )
    timesteps, _ = retrieve_timesteps(scheduler, num_steps, pipe.transformer.device, sigmas=sigmas, **kwargs)
    return timesteps, scheduler.sigmas.to(pipe.transformer.device)


def denoise(pipe, latents: torch.Tensor, cond: Conditioning, height: int, width: int,
            num_steps: int, sigmas: np.ndarray | None = None, guidance_scale: float | None = None,
            grad: bool = False, checkpoint: bool = False, record: bool = False,
            true_cfg_scale: float = 1.0) -> Rollout:
    """Run the Euler flow chain from ``latents`` (noise at sigma = 1) to sigma = 0.

    ``guidance_scale`` None means the family's pipeline default (FLUX 3.5, SD3 7.0); for SD3 a
    scale of 1 or less runs one pass per step without classifier-free guidance. ``true_cfg_scale``
    > 1 is FluxPipeline's true CFG (needs negative embeddings in ``cond``).
    """
    family = family_of(pipe)
    timesteps, grid = schedule(pipe, num_steps, family.image_seq_len(pipe, latents), sigmas)
    velocity = family.velocity(pipe, latents, cond, height, width, guidance_scale, true_cfg_scale)
    rollout = Rollout(latents=latents, sigmas=grid)
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


def decode(pipe, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Latents -> images in [-1, 1] (B x 3 x H x W), differentiable."""
    return family_of(pipe).decode(pipe, latents, height, width)


@torch.no_grad()
def generate(pipe, prompts: list[str], num_steps: int, seeds: list[int],
             height: int, width: int, max_sequence_length: int | None = None, guidance_scale: float | None = None,
             true_cfg_scale: float = 1.0, negative_prompt: str | None = None):
    """Images as the plain pipeline would make them, one seed per prompt: returns PIL images.

    ``max_sequence_length`` None is the pipeline's default (FLUX 512, SD3 256)."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    family = family_of(pipe)
    cond = encode(pipe, prompts, max_sequence_length or family.default_max_sequence_length,
                  family.negative_prompt_for(true_cfg_scale, negative_prompt))
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    noise = initial_noise(pipe, generators, height, width, cond.prompt_embeds.dtype)
    rollout = denoise(pipe, noise, cond, height, width, num_steps, guidance_scale=guidance_scale,
                      true_cfg_scale=true_cfg_scale)
    images = decode(pipe, rollout.latents, height, width)
    return pipe.image_processor.postprocess(images, output_type="pil")
