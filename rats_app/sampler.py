"""The one sampler: teacher, baseline and student generation, and RATS training rollouts.

It reproduces a diffusers pipeline's ``__call__`` step for step (same noise draw, same timestep
schedule, same update), so generation through it is pixel-identical to plain diffusers, and adds
what training needs: gradients through the whole chain (optionally checkpointed per step),
arbitrary sigma grids (a teacher grid that refines the student's), and the predicted clean
latents x0_hat = x_t - sigma * v at every step. Everything that differs between model families
lives in ``rats_app.families``; the loop below is the same for all of them.

Solvers: ``euler`` is the flow-matching Euler update in float32 (what
FlowMatchEulerDiscreteScheduler.step computes), differentiable and on any sigma grid — what RATS
trains with. ``native`` is the model's own scheduler: Euler when that is a flow-matching Euler
scheduler, otherwise its own ``step`` (e.g. the UniPC solver Wan2.1 checkpoints ship).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from rats_app.families import Conditioning, ModelFamily, Size

SOLVERS = ("native", "euler")


@dataclass
class Rollout:
    """Result of one sampling chain (latents in the family's layout)."""

    latents: torch.Tensor
    sigmas: torch.Tensor                                   # the grid, N + 1 values ending at 0
    x0_preds: list[torch.Tensor] = field(default_factory=list)  # one per step (at sigmas[i])
    states: list[torch.Tensor] = field(default_factory=list)    # x_t entering each step


@dataclass
class Schedule:
    timesteps: torch.Tensor   # N, on the scale the transformer is called with
    sigmas: torch.Tensor      # N + 1, ending at 0
    scheduler: object | None  # a private scheduler whose step() the loop calls; None: the Euler update

    def step(self, i: int, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.scheduler is None:  # FlowMatchEulerDiscreteScheduler.step: the update in float32, cast back
            return (x.to(torch.float32) + (self.sigmas[i + 1] - self.sigmas[i]) * v).to(v.dtype)
        return self.scheduler.step(v, self.timesteps[i], x, return_dict=False)[0]


def schedule(family: ModelFamily, num_steps: int, image_seq_len: int, sigmas: np.ndarray | None = None,
             solver: str = "native") -> Schedule:
    """Timesteps and sigmas exactly as the pipeline computes them, on a private scheduler copy
    (concurrent callers never share step state). ``sigmas`` (Euler only): a grid before the shift."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
    native = family.pipe.scheduler
    euler = solver == "euler" or isinstance(native, FlowMatchEulerDiscreteScheduler)
    scheduler = family.euler_scheduler() if euler else copy.deepcopy(native)
    kwargs = {}
    if family.passes_mu(scheduler):
        config = scheduler.config
        kwargs["mu"] = calculate_shift(image_seq_len, config.get("base_image_seq_len", 256),
                                       config.get("max_image_seq_len", 4096), config.get("base_shift", 0.5),
                                       config.get("max_shift", family.default_max_shift))
    if euler:
        grid = family.base_sigmas(num_steps) if sigmas is None else sigmas
        scheduler.set_timesteps(sigmas=grid, device=family.device, **kwargs)
    elif sigmas is not None:
        raise ValueError(f"{type(native).__name__} takes no custom sigma grid; use solver='euler'")
    else:
        scheduler.set_timesteps(num_steps, device=family.device, **kwargs)
        scheduler.set_begin_index(0)
    return Schedule(scheduler.timesteps, scheduler.sigmas.to(family.device), None if euler else scheduler)


def denoise(family: ModelFamily, latents: torch.Tensor, cond: Conditioning, size: Size, num_steps: int,
            sigmas: np.ndarray | None = None, guidance_scale: float | None = None, true_cfg_scale: float = 1.0,
            grad: bool = False, checkpoint: bool = False, record: bool = False, solver: str = "native",
            batch_guidance: bool = False) -> Rollout:
    """Run the chain from ``latents`` (noise at sigma = 1) to sigma = 0.

    ``guidance_scale`` None means the family's pipeline default. ``true_cfg_scale`` > 1 is
    FluxPipeline's true CFG (needs negative embeddings in ``cond``). ``batch_guidance``: CFG's two
    passes as one (training rollouts; generation keeps the pipeline's own passes)."""
    plan = schedule(family, num_steps, family.image_seq_len(latents), sigmas, solver)
    velocity = family.velocity(latents, cond, size, guidance_scale, true_cfg_scale, batch_guidance)
    rollout = Rollout(latents=latents, sigmas=plan.sigmas)
    with torch.set_grad_enabled(grad):
        for i, t in enumerate(plan.timesteps):
            if grad and checkpoint:
                v = grad_checkpoint(velocity, latents, t, use_reentrant=False)
            else:
                v = velocity(latents, t)
            if record:
                rollout.states.append(latents)
                rollout.x0_preds.append(latents - plan.sigmas[i] * v)
            latents = plan.step(i, latents, v)
    rollout.latents = latents
    return rollout


@torch.no_grad()
def generate(family: ModelFamily, prompts: list[str], num_steps: int, seeds: list[int], size: Size,
             max_sequence_length: int | None = None, guidance_scale: float | None = None,
             true_cfg_scale: float = 1.0, negative_prompt: str | None = None, solver: str = "native",
             sigmas: list[float] | None = None) -> list:
    """What the plain pipeline returns for these prompts, one seed each (images: PIL).

    ``max_sequence_length`` None is the pipeline's default; ``sigmas``: the pipeline's own keyword, a
    grid of num_steps values (before the shift) instead of its default one (Euler only)."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    if sigmas is not None and len(sigmas) != num_steps:
        raise ValueError(f"a grid of {len(sigmas)} sigmas for {num_steps} steps")
    negative = family.negative_prompt_for(guidance_scale, true_cfg_scale, negative_prompt)
    cond = family.encode(prompts, max_sequence_length or family.default_max_sequence_length, negative)
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    noise = family.initial_noise(generators, size, cond.prompt_embeds.dtype)
    rollout = denoise(family, noise, cond, size, num_steps, guidance_scale=guidance_scale,
                      true_cfg_scale=true_cfg_scale, solver=solver,
                      sigmas=None if sigmas is None else np.asarray(sigmas, dtype=np.float64))
    return family.postprocess(family.decode(rollout.latents, size))
