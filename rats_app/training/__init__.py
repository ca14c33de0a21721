"""One way to train: ``run_training(config, output_dir, resume, callbacks)``.

The CLI (``python -m rats_app.train``), the app's job manager, the benchmarks and the tests all
train through it: resolve the config against the model's world, check the run directory, build
(or take) the components, restore a checkpoint, and train with the run directory as a callback.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from rats_app.config import WORLD, TrainConfig
from rats_app.errors import ConfigError
from rats_app.training.callbacks import CallbackList, RunInfo, Samples, StepMetrics, TrainerCallback
from rats_app.training.run_dir import CHECKPOINT, RunDirectory, check_run_dir, open_run_dir
from rats_app.training.trainer import Components, RatsTrainer, RolloutResult

__all__ = ["CallbackList", "Components", "PreparedRun", "RatsTrainer", "RolloutResult", "RunInfo", "Samples",
           "StepMetrics", "TrainerCallback", "load_components", "prepare_run", "resolve_config", "resume_config",
           "run_training"]


def resolve_config(config: TrainConfig, info=None) -> TrainConfig:
    """Resolve what ``'world'`` means for this model (its world's reward), before anything is saved."""
    if config.reward != WORLD:
        return config
    from rats_app.models import read_model_info

    world = (info or read_model_info(config.model)).world
    if world is None:
        raise ConfigError(f"reward: 'world' needs a model of an embedded world; {config.model} has none "
                          "(name a reward, e.g. reward=hpsv2)")
    return dataclasses.replace(config, reward=world.reward)


def training_prompts(config: TrainConfig, info) -> list[str]:
    if config.prompts == WORLD:
        if info.world is None:
            raise ConfigError(f"prompts: 'world' needs a model of an embedded world; {info.path} has none "
                              "(give a prompts file)")
        return info.world.training_prompts()
    from rats_app.io import read_prompts

    return [info.check_prompt(p) for p in read_prompts(config.prompts)]


def load_components(config: TrainConfig) -> Components:
    """Model, rewards and prompts as the config names them (reward names already resolved)."""
    from rats_app.models import load_pipeline, read_model_info
    from rats_app.rewards.registry import load_reward, loaders

    info = read_model_info(config.model)  # bad paths, names and prompts fail before any weights load
    for key, name in [("reward", config.reward), *(("watch_rewards", n) for n in config.watch_rewards)]:
        if name not in loaders():
            raise ConfigError(f"{key}: unknown reward {name!r}; known: {', '.join(loaders())}")
    prompts = training_prompts(config, info)
    device = None if config.device == "auto" else config.device
    dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
    pipe, info = load_pipeline(config.model, device=device, dtype=dtype)
    device_name = str(pipe.transformer.device)
    reward = load_reward(config.reward, device=device_name)
    watch = {name: load_reward(name, device=device_name) for name in config.watch_rewards}
    return Components(pipe, info, reward, watch, prompts)


class PreparedRun:
    """A run whose directory, config and components were checked: only training is left."""

    def __init__(self, trainer: RatsTrainer):
        self.trainer = trainer

    @property
    def output_dir(self) -> Path:
        return self.trainer.output_dir

    def train(self, callbacks: list[TrainerCallback] = ()) -> RatsTrainer:
        self.trainer.train([RunDirectory(self.output_dir), *callbacks])
        return self.trainer


def prepare_run(config: TrainConfig, output_dir: str | Path, resume: bool = False,
                components: Components | None = None, accelerator=None) -> PreparedRun:
    """Everything that can fail at the start of a run, in order, before the directory is written:
    the config against the model's world, the directory, the model, rewards and prompts."""
    config = resolve_config(config, components.info if components else None)
    is_main = accelerator is None or accelerator.is_main_process
    plan = check_run_dir(output_dir, config, resume) if is_main else None
    trainer = RatsTrainer(config, components or load_components(config), Path(output_dir), accelerator)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    state = plan.state if plan is not None else None
    if not is_main and resume and (Path(output_dir) / CHECKPOINT).exists():
        from rats_app.io import load_torch_state

        state = load_torch_state(Path(output_dir) / CHECKPOINT)
    if state is not None:
        trainer.load_state(state)
    if is_main:
        open_run_dir(output_dir, config, plan)
    return PreparedRun(trainer)


def resume_config(output_dir: str | Path, changes: dict | None = None) -> TrainConfig:
    """A run's own config, with only the given changes (e.g. a larger ``steps``) applied."""
    from rats_app.training.run_dir import saved_config

    return TrainConfig.from_dict({**saved_config(output_dir), **(changes or {})})


def run_training(config: TrainConfig, output_dir: str | Path, resume: bool = False,
                 callbacks: list[TrainerCallback] = (), components: Components | None = None,
                 accelerator=None) -> RatsTrainer:
    """Train (or continue) the run in ``output_dir``; returns the trainer when it is done or stopped."""
    return prepare_run(config, output_dir, resume, components, accelerator).train(callbacks)
