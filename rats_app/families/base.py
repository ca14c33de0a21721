"""What a model family provides to the one sampler (rats_app.sampler) and the trainer.

A family is bound to one loaded diffusers pipeline and reproduces that pipeline's ``__call__``
piece by piece — prompt encoding, the noise draw and its layout, the transformer call with its
guidance, the default sigma grid and the timestep shift, decoding — so that generation through
the sampler stays pixel-identical to plain diffusers. The sampler's loop is the same for every
family; adding a family means one module that subclasses ``ModelFamily`` and one line in
``rats_app.families.FAMILIES``.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Callable, ClassVar

import numpy as np
import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Size:
    """What to generate: an image (frames None) or a clip of ``frames`` frames."""

    height: int
    width: int
    frames: int | None = None


@dataclass
class Conditioning:
    """Encoded prompts. ``pooled`` / ``text_ids`` exist where the family has them (FLUX, SD3);
    ``negative_*`` are the embeddings classifier-free guidance passes (None when not guided)."""

    prompt_embeds: torch.Tensor
    pooled: torch.Tensor | None = None
    text_ids: torch.Tensor | None = None
    negative_embeds: torch.Tensor | None = None
    negative_pooled: torch.Tensor | None = None

    _PER_PROMPT = ("prompt_embeds", "pooled", "negative_embeds", "negative_pooled")

    def __len__(self) -> int:
        return self.prompt_embeds.shape[0]

    def split(self) -> list["Conditioning"]:
        """One Conditioning per prompt (for caching); ``text_ids`` is shared by the batch."""
        def pick(name, i):
            value = getattr(self, name)
            return value if name not in self._PER_PROMPT or value is None else value[i:i + 1]
        return [Conditioning(**{f.name: pick(f.name, i) for f in fields(self)}) for i in range(len(self))]

    @staticmethod
    def cat(parts: list["Conditioning"]) -> "Conditioning":
        def join(name):
            values = [getattr(p, name) for p in parts]
            if values[0] is None or name not in Conditioning._PER_PROMPT:
                return values[0]
            return torch.cat(values)
        return Conditioning(**{f.name: join(f.name) for f in fields(Conditioning)})

    def to(self, device) -> "Conditioning":
        return Conditioning(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                               for f in fields(self)})


def refine(grid: np.ndarray, subdivisions: int) -> np.ndarray:
    """A sigma grid (before the shift, without its final 0) with every interval, the last one down to
    0 included, cut into ``subdivisions`` equal parts: a teacher's grid that contains the student's."""
    ends = np.append(np.asarray(grid, dtype=np.float64), 0.0)
    fractions = np.arange(subdivisions) / subdivisions
    return (ends[:-1, None] + (ends[1:] - ends[:-1])[:, None] * fractions[None, :]).reshape(-1)


class ModelFamily(ABC):
    """One diffusers pipeline class, as the sampler and the trainer drive it."""

    name: ClassVar[str]
    pipeline_class_name: ClassVar[str]   # as in model_index.json
    media: ClassVar[str] = "image"       # "image" or "video"
    latent_channel_dim: ClassVar[int] = 1  # the channel axis of the family's latents (FLUX packs them: -1)
    default_guidance: ClassVar[float]    # the pipeline's __call__ default guidance_scale
    default_max_sequence_length: ClassVar[int]
    default_max_shift: ClassVar[float] = 1.15  # the max_shift the pipeline falls back to for a dynamic shift
    # __call__ keywords the sampler reproduces (what call_defaults.json may set)
    call_keys: ClassVar[frozenset[str]] = frozenset({"height", "width", "max_sequence_length", "guidance_scale",
                                                     "negative_prompt"})
    # the __call__ keyword of classifier-free guidance (two passes per step, a negative prompt)
    cfg_key: ClassVar[str] = "guidance_scale"

    def __init__(self, pipe):
        self.pipe = pipe

    @classmethod
    def supports(cls, pipe) -> bool:
        import diffusers

        return isinstance(pipe, getattr(diffusers, cls.pipeline_class_name))

    @property
    def device(self) -> torch.device:
        return self.pipe.transformer.device

    def default_size(self) -> Size:
        """The pipeline's own default canvas (what __call__ uses without height and width)."""
        side = self.pipe.default_sample_size * self.pipe.vae_scale_factor
        return Size(side, side)

    # ---------------------------------------------------------------- text
    @abstractmethod
    def encode(self, prompts: list[str], max_sequence_length: int, negative_prompt: str | None = None) -> Conditioning:
        """Prompt embeddings, and the negative ones when ``negative_prompt`` is not None."""

    def negative_prompt_for(self, guidance_scale: float | None, true_cfg_scale: float,
                            negative_prompt: str | None) -> str | None:
        """The negative prompt the pipeline encodes for these settings (None: it encodes none)."""
        return negative_prompt if negative_prompt is not None else ""

    # ---------------------------------------------------------------- latents
    @abstractmethod
    def initial_noise(self, generators: list[torch.Generator], size: Size, dtype: torch.dtype) -> torch.Tensor:
        """The starting noise in the family's layout; sample i drawn from generators[i] as the pipeline does."""

    @abstractmethod
    def image_seq_len(self, latents: torch.Tensor) -> int:
        """Tokens per sample (what a dynamic timestep shift depends on)."""

    # ---------------------------------------------------------------- schedule
    def euler_scheduler(self):
        """A flow-matching Euler scheduler on the model's own shift (what RATS trains on): a copy of the
        pipeline's when it is one, else built from a flow solver's config (UniPC's ``flow_shift``)."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        scheduler = self.pipe.scheduler
        if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
            return copy.deepcopy(scheduler)
        shift = scheduler.config.get("flow_shift") or scheduler.config.get("shift") or 1.0
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=scheduler.config.num_train_timesteps, shift=shift)

    def base_sigmas(self, num_steps: int) -> np.ndarray:
        """The Euler grid before the shift: what FlowMatchEulerDiscreteScheduler.set_timesteps builds
        when given no sigmas (SD3, Wan); FLUX overrides it."""
        scheduler = self.euler_scheduler()
        n = scheduler.config.num_train_timesteps
        return np.linspace(scheduler.sigma_max * n, scheduler.sigma_min * n, num_steps) / n

    def refined_sigmas(self, num_steps: int, subdivisions: int) -> np.ndarray:
        """A grid of num_steps * subdivisions steps that contains every point of the num_steps grid.

        Each interval of the base grid is cut into equal parts, including the last one down to
        sigma = 0 (the scheduler appends that 0), so the shifted grids nest too: the shift is monotone.
        """
        return refine(self.base_sigmas(num_steps), subdivisions)

    def passes_mu(self, scheduler) -> bool:
        """Whether the pipeline passes ``mu`` (the dynamic shift) to set_timesteps."""
        return bool(scheduler.config.get("use_dynamic_shifting", False))

    # ---------------------------------------------------------------- model
    @abstractmethod
    def velocity(self, latents: torch.Tensor, cond: Conditioning, size: Size, guidance_scale: float | None,
                 true_cfg_scale: float = 1.0, batch_guidance: bool = False) -> Velocity:
        """``velocity(x, t)`` as the pipeline's transformer call (with its guidance) computes it.
        ``batch_guidance``: the conditional and unconditional passes of classifier-free guidance as
        one batched pass (faster; differs from the pipeline's two passes in the last bits)."""

    @abstractmethod
    def decode(self, latents: torch.Tensor, size: Size) -> torch.Tensor:
        """Latents -> pixels in [-1, 1]: B x 3 x H x W (images) or B x 3 x F x H x W (clips), differentiable."""

    def postprocess(self, pixels: torch.Tensor) -> list:
        """Decoded pixels -> what the plain pipeline returns: PIL images (clips: float frames)."""
        return self.pipe.image_processor.postprocess(pixels, output_type="pil")

    def cfg_scale(self, call: dict) -> float:
        """The classifier-free guidance scale a call runs with (1 = none)."""
        value = call.get(self.cfg_key)
        return float(self.default_guidance if value is None else value)

    def student_guidance(self, teacher_guidance: float | None) -> float | None:
        """The guidance the RATS student runs with (default: the teacher's; SD3: none)."""
        return teacher_guidance


def guided(one_pass, x: torch.Tensor, t: torch.Tensor, positive: tuple, negative: tuple, scale: float,
           batched: bool) -> torch.Tensor:
    """Classifier-free guidance ``uncond + scale * (cond - uncond)`` from ``one_pass(x, t, *inputs)``:
    two passes as the pipelines make them, or one pass over both halves of a doubled batch."""
    if batched:
        both = one_pass(torch.cat([x, x]), t, *(torch.cat([p, n]) for p, n in zip(positive, negative)))
        conditional, unconditional = both.chunk(2)
    else:
        conditional, unconditional = one_pass(x, t, *positive), one_pass(x, t, *negative)
    return unconditional + scale * (conditional - unconditional)
