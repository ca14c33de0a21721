"""The RATS trainer: horizon matching + reward-aware gate + terminal reward, on a LoRA.

One step, per batch of prompts (see docs/method.md):
  1. one noise per prompt, shared by student and teacher;
  2. student (base + LoRA) samples K steps with gradients, recording x0_hat at its sigmas;
  3. teacher (base + EMA LoRA, swapped in place) samples K*m steps without gradients on a grid
     that contains the student's sigmas;
  4. rewards of both decoded images; gate g = sg[sigmoid((R_T - R_S) / tau)];
  5. loss = -lambda * mean(R_S) + alpha * mean(g * sum_h w_h d_h); update LoRA, then the EMA.

``train()`` takes progress and stop callbacks (the app's Train tab drives them). Data parallel
under ``accelerate launch``: each process draws its own prompts and LoRA gradients are averaged.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rats_app.config import ConfigError, TrainConfig
from rats_app.io import load_tensors, load_torch_state, save_tensors, save_torch_state, write_json, write_text
from rats_app.distributed import (average_gradients, fsdp_requested, full, full_optimizer_state,
                                  load_full_optimizer_state, shard_like, shard_transformer)
from rats_app.lora import EmaLora, add_lora, lora_parameters, lora_state_dict
from rats_app.rats_loss import rats_loss
from rats_app.families import family_of
from rats_app.sampler import Conditioning, decode, denoise, encode, initial_noise, refined_sigmas

SAMPLE_PROMPTS = [
    "a small red circle at the top left on a white background",
    "a large blue square at the center on a gray background",
    "a small yellow triangle at the bottom right on a black background",
    "a large green circle at the top right on a white background",
    "a small purple square at the bottom left on a gray background",
    "a large orange triangle at the top left on a black background",
    "a large purple triangle at the center on a white background",   # held out
    "a small orange circle at the top right on a gray background",   # held out
]


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
    watch: dict[str, float] = field(default_factory=dict)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated, or the process's peak resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_optimizer(config: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ConfigError("optimizer: adamw8bit needs the bitsandbytes package (pip install bitsandbytes, "
                              "CUDA only); use adamw") from None
        return bnb.optim.AdamW8bit(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


class RatsTrainer:
    def __init__(self, config: TrainConfig, output_dir: str | Path, pipe=None, reward=None,
                 watch_rewards: dict | None = None, prompts: list[str] | None = None, accelerator=None):
        from rats_app.models import load_pipeline, read_model_info

        self.config = config
        self.output_dir = Path(output_dir)
        self.accelerator = accelerator
        device = None if config.device == "auto" else config.device
        self.dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
        if pipe is None:
            pipe, info = load_pipeline(config.model, device=device, dtype=self.dtype)
        else:
            try:
                info = read_model_info(config.model)
            except Exception:  # a pipeline built in memory (tests) may have no directory
                info = None
        self.pipe = pipe
        self.device = pipe.transformer.device
        defaults = self.call_defaults = info.call_defaults if info else {}
        self.height = info.height if info else 64
        self.width = info.width if info else 64
        self.family = family_of(pipe)
        self.max_sequence_length = defaults.get("max_sequence_length", self.family.default_max_sequence_length)
        # The teacher samples with the model's guidance (SD3: classifier-free guidance); the student
        # with what its family's student needs (FLUX-dev: the same distilled value; SD3: none).
        self.guidance_scale = defaults.get("guidance_scale", self.family.default_guidance)
        # FluxPipeline's true CFG (a model's call_defaults may ask for it): teacher and student both use it,
        # so the student stays pixel-identical to the plain pipeline call with the LoRA loaded.
        self.true_cfg_scale = float(defaults.get("true_cfg_scale", 1.0))
        self.negative_prompt = self.family.negative_prompt_for(self.true_cfg_scale, defaults.get("negative_prompt"))
        if reward is None:
            from rats_app.rewards.registry import load_reward

            reward = load_reward(config.reward, device=str(self.device))
        self.reward = reward
        self.watch_rewards = watch_rewards if watch_rewards is not None else self._load_watch_rewards()
        self.prompts = prompts if prompts is not None else self._load_prompts(info)
        self.params = add_lora(pipe.transformer, config.lora_rank, config.lora_alpha, config.lora_targets, config.seed)
        for p in self.params.values():
            p.data = p.data.float()  # trainable LoRA in float32 even when the base is bfloat16
        self.sharded = fsdp_requested(config.parallel, accelerator)
        if self.sharded:  # FSDP2 replaces the parameters with sharded ones: collect them again
            shard_transformer(pipe.transformer, self.device)
            self.params = lora_parameters(pipe.transformer)
        self.ema = EmaLora(self.params, config.ema_decay)
        self.optimizer = make_optimizer(config, list(self.params.values()))
        self.step = 0
        self._text_cache: dict[str, Conditioning] = {}
        if config.vae_tiling:
            pipe.vae.enable_tiling()
        if config.cache_text_embeddings:
            self._condition(self.prompts + (config.sample_prompts or SAMPLE_PROMPTS))
            if self.device.type == "cuda":  # frozen and no longer needed on the GPU
                for name in ("text_encoder", "text_encoder_2", "text_encoder_3"):
                    if getattr(pipe, name, None) is not None:
                        getattr(pipe, name).to("cpu")

    # ------------------------------------------------------------------ setup helpers
    def _load_watch_rewards(self) -> dict:
        from rats_app.rewards.registry import load_reward

        return {name: load_reward(name, device=str(self.device)) for name in self.config.watch_rewards}

    def _load_prompts(self, info) -> list[str]:
        if self.config.prompts == "world":
            from rats_app.worlds.shapes.prompts import training_prompts

            return training_prompts()
        from rats_app.generate import read_prompts

        prompts = read_prompts(self.config.prompts)
        if info is not None:
            prompts = [info.check_prompt(p) for p in prompts]
        return prompts

    @property
    def student_guidance(self) -> float | None:
        return self.family.student_guidance(self.guidance_scale)

    @property
    def process_index(self) -> int:
        return self.accelerator.process_index if self.accelerator else 0

    @property
    def is_main(self) -> bool:
        return self.accelerator is None or self.accelerator.is_main_process

    # ------------------------------------------------------------------ one step
    @torch.no_grad()
    def _condition(self, prompts: list[str]) -> Conditioning:
        """Frozen text encoders: encode each distinct prompt once and cache it (on the device)."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        for start in range(0, len(missing), 64):
            chunk = missing[start:start + 64]
            cond = encode(self.pipe, chunk, self.max_sequence_length, self.negative_prompt)
            for p, part in zip(chunk, cond.split()):
                self._text_cache[p] = part.to(self.device)
        return Conditioning.cat([self._text_cache[p] for p in prompts])

    def _batch(self, step: int) -> tuple[list[str], torch.Tensor]:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, step, self.process_index])
        prompts = [self.prompts[i] for i in rng.integers(len(self.prompts), size=cfg.batch_size)]
        seeds = rng.integers(2**31, size=cfg.batch_size)
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        return prompts, initial_noise(self.pipe, generators, self.height, self.width)

    def _to_unit(self, latents: torch.Tensor) -> torch.Tensor:
        return (decode(self.pipe, latents, self.height, self.width).float() / 2 + 0.5).clamp(0, 1)

    def _autocast(self):
        """bfloat16 base weights with float32 LoRA: autocast makes the matmuls agree."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16)

    def train_step(self) -> StepMetrics:
        with self._autocast():
            return self._train_step()

    def _train_step(self) -> StepMetrics:
        cfg, started = self.config, time.perf_counter()
        prompts, noise = self._batch(self.step)
        cond = self._condition(prompts)
        common = dict(height=self.height, width=self.width, record=True, true_cfg_scale=self.true_cfg_scale)
        need_teacher = cfg.alpha > 0
        m = cfg.teacher_subdivisions
        if need_teacher:
            # The teacher goes first: swapping the EMA LoRA in and out modifies the LoRA weights in
            # place, which must not happen while the student's graph holds them for backward.
            with self.ema.swapped(), torch.no_grad():
                teacher = denoise(self.pipe, noise, cond, num_steps=cfg.student_steps * m,
                                  sigmas=refined_sigmas(cfg.student_steps, m, self.pipe),
                                  guidance_scale=self.guidance_scale, **common)
                r_teacher = self.reward.score(self._to_unit(teacher.latents), prompts).float()
        student = denoise(self.pipe, noise, cond, num_steps=cfg.student_steps, grad=True,
                          checkpoint=cfg.gradient_checkpointing, guidance_scale=self.student_guidance, **common)
        student_images = self._to_unit(student.latents)
        r_student = self.reward.score(student_images, prompts).float()
        if need_teacher:
            pick = (lambda r, i: r.x0_preds[i]) if cfg.match_on == "x0" else (lambda r, i: r.states[i])
            if cfg.teacher_target == "final":  # the teacher's own end point, not its one-shot guess at sigma_h
                t_h = [teacher.latents for _ in cfg.horizon_indices]
            else:
                t_h = [pick(teacher, h * m) for h in cfg.horizon_indices]
            s_h = [pick(student, h) for h in cfg.horizon_indices]
        else:  # terminal reward only: no teacher rollout at all
            r_teacher, t_h, s_h = r_student.detach(), [], []
        out = rats_loss(r_student, r_teacher, t_h, s_h, cfg.weights if t_h else [], alpha=cfg.alpha,
                        reward_weight=cfg.reward_weight, tau=cfg.tau, gate=cfg.gate, distance=cfg.match_distance)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        params = list(self.params.values())
        if not self.sharded and self.accelerator is not None and self.accelerator.num_processes > 1:
            average_gradients(self.accelerator, params)  # FSDP reduce-scatters gradients itself
        norm = full(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf))
        self.optimizer.step()
        self.ema.update()
        self.step += 1
        watch = {}
        if self.watch_rewards and self.step % cfg.watch_every == 0:
            with torch.no_grad():
                images = student_images.detach()
                watch = {n: r.score(images, prompts).float().mean().item() for n, r in self.watch_rewards.items()}
        return StepMetrics(
            step=self.step, loss=out.loss.item(), matching=out.matching.item(),
            gated_matching=out.gated_matching.item(), reward_student=r_student.mean().item(),
            reward_teacher=r_teacher.mean().item() if need_teacher else None,
            gate_mean=out.gate.mean().item() if need_teacher else None, grad_norm=float(norm),
            lr=self.optimizer.param_groups[0]["lr"], step_time=time.perf_counter() - started,
            peak_memory_mb=peak_memory_mb(self.device), watch=watch)

    # ------------------------------------------------------------------ the loop
    def train(self, progress: Callable[[StepMetrics], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> Path:
        """Run to ``config.steps`` (or until ``should_stop()``); returns the LoRA directory."""
        from rats_app.run_dir import RunDirectory

        run = RunDirectory(self.output_dir, self.is_main)
        while self.step < self.config.steps:
            if should_stop is not None and should_stop():
                break
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate_at(self.step)
            metrics = self.train_step()
            run.append_metrics(asdict(metrics))
            if progress is not None:
                progress(metrics)
            if self.config.sample_every and self.step % self.config.sample_every == 0:
                run.save_samples(self, self.step)
            if self.step % self.config.checkpoint_every == 0:
                run.save_checkpoint(self)
        run.save_checkpoint(self)
        run.save_samples(self, self.step)
        run.finish(self, stopped=self.step < self.config.steps)
        return self.output_dir

    def learning_rate_at(self, step: int) -> float:
        """Warm-up, then constant or cosine to 10 % (a function of the step: resuming changes nothing)."""
        cfg = self.config
        lr = cfg.learning_rate * min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else cfg.learning_rate
        if cfg.lr_schedule == "cosine":
            progress = min(1.0, step / max(1, cfg.steps - 1))
            lr *= 0.1 + 0.45 * (1 + math.cos(math.pi * progress))
        return lr

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        """Resumable state with full tensors (under FSDP a collective: every process calls it)."""
        optimizer = (full_optimizer_state(self.pipe.transformer, self.optimizer) if self.sharded
                     else self.optimizer.state_dict())
        return {"step": self.step, "optimizer": optimizer,
                "lora": {n: full(p.detach()).clone() for n, p in self.params.items()},
                "ema": {n: full(t) for n, t in self.ema.state_dict().items()}}

    def lora_state(self) -> dict[str, torch.Tensor]:
        """The LoRA in diffusers/peft naming, full tensors (collective under FSDP)."""
        return {k: full(v.detach()) for k, v in lora_state_dict(self.pipe.transformer).items()}

    def load_state(self, state: dict) -> None:
        lora = state["lora"]
        missing = sorted(set(self.params) - set(lora))
        if missing:
            raise ValueError(f"checkpoint lacks LoRA tensor {missing[0]} (different lora_rank/targets?)")
        with torch.no_grad():
            for n, p in self.params.items():
                if p.shape != lora[n].shape:
                    raise ValueError(f"checkpoint tensor {n} has shape {tuple(lora[n].shape)}, model has {tuple(p.shape)}")
                p.copy_(shard_like(lora[n], p))
        self.ema.load_state_dict({n: shard_like(t, self.params[n]) for n, t in state["ema"].items()
                                  if n in self.params})
        if self.sharded:
            load_full_optimizer_state(self.pipe.transformer, self.optimizer, state["optimizer"])
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])

    @torch.no_grad()
    def sample_images(self, prompts: list[str], seeds: list[int]) -> torch.Tensor:
        """Student images at K steps (for grids), [0, 1], B x 3 x H x W."""
        cond = self._condition(prompts)
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        noise = initial_noise(self.pipe, generators, self.height, self.width)
        with self._autocast():
            rollout = denoise(self.pipe, noise, cond, self.height, self.width, self.config.student_steps,
                              guidance_scale=self.student_guidance, true_cfg_scale=self.true_cfg_scale)
            return self._to_unit(rollout.latents)
