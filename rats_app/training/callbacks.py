"""What the trainer tells the outside world, as plain data, in the style of transformers' TrainerCallback.

The trainer knows no file layout and no UI: the run directory (``RunDirectory``), the CLI's
progress bar and the app's job manager are callbacks. Callbacks run on the main process only;
``should_stop`` is asked there and the answer is shared with every process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


@dataclass
class StepMetrics:
    step: int
    loss: float
    matching: float
    gated_matching: float
    reward_student: float
    reward_teacher: float | None
    gate_mean: float | None
    grad_norm: float
    lr: float
    step_time: float
    peak_memory_mb: float
    student_steps: int = 0
    watch: dict[str, float] = field(default_factory=dict)
    pixel_matching: float | None = None  # the ungated pixel distance, when match_pixels > 0


@dataclass(frozen=True)
class RunInfo:
    """What a run is, for callbacks that describe it (model card, progress)."""

    config: object                # the TrainConfig
    output_dir: Path
    family: str                   # "flux", "sd3", ...
    pipeline_class: str           # e.g. "FluxPipeline"
    processes: int
    student_call: dict            # keyword arguments of the plain pipeline call that runs the student
    teacher_steps: int
    student_guidance_differs: bool  # the student runs with another guidance than the teacher (SD3)
    solver: str = "euler"           # the sampler solver the student trained with (rats_app.sampler)
    media: str = "image"
    call_by_nfe: dict = field(default_factory=dict)  # "NFE" -> the call keys it samples with instead


@dataclass(frozen=True)
class Samples:
    step: int
    prompts: list[str]
    grid: np.ndarray              # uint8 H x W x 3: the sample images side by side


@dataclass(frozen=True)
class Checkpoint:
    step: int
    state: dict                   # resumable: step, LoRA, EMA, optimizer (full tensors)
    lora: dict[str, torch.Tensor]  # the student LoRA in diffusers naming
    lora_config: dict             # its adapter config (the weights file's metadata)


class TrainerCallback:
    """Override what you need; every hook is optional."""

    def on_train_begin(self, run: RunInfo, step: int) -> None:
        pass

    def on_step_end(self, run: RunInfo, metrics: StepMetrics) -> None:
        pass

    def on_samples(self, run: RunInfo, samples: Samples) -> None:
        pass

    def on_checkpoint(self, run: RunInfo, checkpoint: Checkpoint) -> None:
        pass

    def on_train_end(self, run: RunInfo, step: int, stopped: bool) -> None:
        pass

    def should_stop(self) -> bool:
        return False


class CallbackList(TrainerCallback):
    """Calls each callback in order; ``should_stop`` is true when any one says so."""

    def __init__(self, callbacks: list[TrainerCallback]):
        self.callbacks = list(callbacks)

    def on_train_begin(self, run, step):
        for c in self.callbacks:
            c.on_train_begin(run, step)

    def on_step_end(self, run, metrics):
        for c in self.callbacks:
            c.on_step_end(run, metrics)

    def on_samples(self, run, samples):
        for c in self.callbacks:
            c.on_samples(run, samples)

    def on_checkpoint(self, run, checkpoint):
        for c in self.callbacks:
            c.on_checkpoint(run, checkpoint)

    def on_train_end(self, run, step, stopped):
        for c in self.callbacks:
            c.on_train_end(run, step, stopped)

    def should_stop(self) -> bool:
        return any(c.should_stop() for c in self.callbacks)
