"""The RATS trainer: horizon matching + reward-aware gate + terminal reward, on a LoRA.

One step, per batch of prompts (see docs/method.md):
  1. one noise per prompt, shared by student and teacher;
  2. teacher (base + EMA LoRA, swapped in place) samples K*m steps without gradients on a grid
     that contains the student's sigmas;
  3. student (base + LoRA) samples K steps with gradients, recording x0_hat at its sigmas;
  4. rewards of both decoded outputs; gate g = sg[sigmoid((R_T - R_S) / tau)];
  5. loss = -lambda * mean(R_S) + alpha * mean(g * sum_h w_h d_h); update LoRA, then the EMA.

Steps 1-4 are ``rollout()``, public so that measurements (benchmarks/loss_balance.py) run exactly
what training runs. The trainer reports to callbacks (rats_app.training.callbacks) and knows no
file layout. Several processes: data parallel (LoRA gradients averaged) or FSDP (rats_app.distributed).
"""

from __future__ import annotations

import inspect
import math
import resource
import time
from dataclasses import dataclass

import numpy as np
import torch

from rats_app.config import TrainConfig
from rats_app.distributed import (
    average_gradients,
    fsdp_requested,
    full,
    full_optimizer_state,
    load_full_optimizer_state,
    shard_like,
    shard_transformer,
)
from rats_app.errors import ConfigError
from rats_app.families import Conditioning, Size, budget_calls, family_of, guidance_plan, student_call
from rats_app.io import channels_last_uint8, filmstrip
from rats_app.lora import EmaLora, add_lora, lora_parameters, lora_state_dict
from rats_app.rats_loss import object_weights, rats_loss
from rats_app.sampler import Rollout, denoise
from rats_app.training.budgets import StepBudgets
from rats_app.training.callbacks import CallbackList, Checkpoint, RunInfo, Samples, StepMetrics, TrainerCallback
from rats_app.training.schedules import lr_scheduler, make_optimizer
from rats_app.worlds.base import truth_means

TRAINING_SOLVER = "euler"  # the student's and the teacher's rollouts: Euler on refinable grids


@dataclass
class Components:
    """What a run trains with; ``load_components`` builds them from the config, tests build tiny ones."""

    pipe: object
    info: object            # rats_app.models.ModelInfo
    reward: object          # rats_app.rewards.Reward
    watch_rewards: dict
    prompts: list[str]


@dataclass
class RolloutResult:
    prompts: list[str]
    student: Rollout
    teacher: Rollout | None           # None when alpha = 0 (terminal reward only)
    student_images: torch.Tensor      # decoded, [0, 1]
    reward_student: torch.Tensor      # (B,), differentiable
    reward_teacher: torch.Tensor      # (B,), detached (the student's own when there is no teacher)
    student_horizons: list[torch.Tensor]
    teacher_horizons: list[torch.Tensor]
    match_weights: torch.Tensor | None = None  # B x latent positions (match_object_weight), else None
    teacher_images: torch.Tensor | None = None  # decoded, [0, 1] (None without a teacher)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated, or the process's peak resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RatsTrainer:
    def __init__(self, config: TrainConfig, components: Components, output_dir, accelerator=None):
        self.config, self.accelerator = config, accelerator
        self.output_dir = output_dir
        self.pipe, self.info = components.pipe, components.info
        self.family = family_of(self.pipe)
        self.reward = self._for_media(components.reward)
        self.watch_rewards = {n: self._for_media(r) for n, r in components.watch_rewards.items()}
        self.prompts = components.prompts
        self.device = self.family.device
        self.dtype = self.pipe.transformer.dtype
        if config.sampling_sigmas_by_nfe and "sigmas" not in inspect.signature(type(self.pipe).__call__).parameters:
            name = "student_sigmas_by_nfe" if config.student_sigmas_by_nfe else "sample_sigmas_by_nfe"
            raise ConfigError(f"{name}: {type(self.pipe).__name__}'s call takes no sigmas, so the LoRA could not "
                              "be sampled on its own grid outside RATS Studio; leave it empty")
        self.size: Size = self.info.size(self.family)
        if self.family.media == "video":
            self.family.check_size(self.size)  # a bad frame count or canvas fails here, before any work
        defaults = self.info.call_defaults
        self.max_sequence_length = defaults.get("max_sequence_length", self.family.default_max_sequence_length)
        # The teacher samples with the model's guidance; the student with what its family's student needs
        # (FLUX and Wan: the same, so it stays pixel-identical to the plain call with the LoRA; SD3: none)
        # or with its own CFG scale (student_cfg); its LoRA records the scale to sample with (sample_cfg, else that).
        self.guidance_scale = defaults.get("guidance_scale", self.family.default_guidance)
        self.true_cfg_scale = float(defaults.get("true_cfg_scale", 1.0))
        (self.teacher_guidance, self.student_guidance, self.sampling_guidance, self.sampling_guidance_by_nfe,
         self.negative_prompt) = guidance_plan(
            self.family, {"guidance_scale": self.guidance_scale, "true_cfg_scale": self.true_cfg_scale,
                          "negative_prompt": defaults.get("negative_prompt")},
            config.student_cfg, config.sampling_cfg, config.sample_cfg_by_nfe)
        self.params = add_lora(self.pipe.transformer, config.lora_rank, config.lora_alpha, config.lora_targets,
                               config.seed)
        for p in self.params.values():
            p.data = p.data.float()  # trainable LoRA in float32 even when the base is bfloat16
        self.sharded = fsdp_requested(config.parallel, accelerator)
        if self.sharded:  # FSDP2 replaces the parameters with sharded ones: collect them again
            shard_transformer(self.pipe.transformer, self.device)
            self.params = lora_parameters(self.pipe.transformer)
        self.ema = EmaLora(self.params, config.ema_decay)
        self.optimizer = make_optimizer(config, list(self.params.values()))
        self.budgets = StepBudgets(config)
        self.step = 0
        self._text_cache: dict[str, Conditioning] = {}
        if config.vae_tiling:
            self.pipe.vae.enable_tiling()
        if config.cache_text_embeddings:
            self._condition(self.prompts + self.sample_prompts)
            if self.device.type == "cuda":  # frozen and no longer needed on the GPU
                for name in ("text_encoder", "text_encoder_2", "text_encoder_3"):
                    if getattr(self.pipe, name, None) is not None:
                        getattr(self.pipe, name).to("cpu")

    def _for_media(self, reward):
        """Clips are scored frame by frame by an image reward (on ``reward_frames`` of them)."""
        if self.family.media == "video" and getattr(reward, "media", "image") == "image":
            from rats_app.rewards.video import FrameWiseReward

            return FrameWiseReward(reward, self.config.reward_frames)
        return reward

    # ------------------------------------------------------------------ what the run is
    @property
    def sample_prompts(self) -> list[str]:
        world = self.info.world
        if self.config.sample_prompts:
            return list(self.config.sample_prompts)
        return world.sample_prompts() if world is not None and self.config.prompts == "world" else self.prompts[:8]

    @property
    def is_main(self) -> bool:
        return self.accelerator is None or self.accelerator.is_main_process

    @property
    def processes(self) -> int:
        return self.accelerator.num_processes if self.accelerator else 1

    def run_info(self) -> RunInfo:
        cfg = self.config
        canvas = {"height": self.size.height, "width": self.size.width}
        if self.size.frames is not None:
            canvas["num_frames"] = self.size.frames
        call = {"num_inference_steps": cfg.student_steps, **canvas, **self.info.call_defaults}
        differs = self.sampling_guidance != self.teacher_guidance
        call = student_call(self.family, call, cfg.sampling_cfg) if differs else call
        by_nfe = budget_calls(self.family, call, cfg.sample_cfg_by_nfe, cfg.sampling_sigmas_by_nfe)
        return RunInfo(config=cfg, output_dir=self.output_dir, family=self.family.name,
                       pipeline_class=type(self.pipe).__name__, processes=self.processes, student_call=call,
                       teacher_steps=cfg.student_steps * self.budgets.teacher_subdivisions(cfg.student_steps),
                       student_guidance_differs=differs, call_by_nfe=by_nfe,
                       solver=TRAINING_SOLVER, media=self.family.media)

    # ------------------------------------------------------------------ one rollout
    @torch.no_grad()
    def _condition(self, prompts: list[str]) -> Conditioning:
        """Frozen text encoders: encode each distinct prompt once and cache it (on the device)."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        for start in range(0, len(missing), 64):
            chunk = missing[start:start + 64]
            cond = self.family.encode(chunk, self.max_sequence_length, self.negative_prompt)
            for p, part in zip(chunk, cond.split()):
                self._text_cache[p] = part.to(self.device)
        return Conditioning.cat([self._text_cache[p] for p in prompts])

    def batch(self, step: int, micro: int = 0) -> tuple[list[str], torch.Tensor]:
        """The prompts and the shared noise of one micro-batch: a function of seed, step and stream,
        the stream being process * accumulation + micro, so N processes and N accumulated
        micro-batches on one process draw the same global batch."""
        cfg = self.config
        process = self.accelerator.process_index if self.accelerator else 0
        rng = np.random.default_rng([cfg.seed, step, process * cfg.gradient_accumulation_steps + micro])
        prompts = [self.prompts[i] for i in rng.integers(len(self.prompts), size=cfg.batch_size)]
        seeds = rng.integers(2**31, size=cfg.batch_size)
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        return prompts, self.family.initial_noise(generators, self.size, torch.float32)

    def to_unit(self, latents: torch.Tensor) -> torch.Tensor:
        return (self.family.decode(latents, self.size).float() / 2 + 0.5).clamp(0, 1)

    def _chain(self, noise, cond, num_steps, **kwargs) -> Rollout:
        return denoise(self.family, noise, cond, self.size, num_steps, record=True, solver=TRAINING_SOLVER,
                       batch_guidance=self.config.batch_guidance, **kwargs)

    def rollout(self, prompts: list[str], noise: torch.Tensor, student_steps: int | None = None) -> RolloutResult:
        """Teacher chain (no gradients), student chain (with gradients) and both rewards, from one noise."""
        cfg = self.config
        k = student_steps or cfg.student_steps
        m = self.budgets.teacher_subdivisions(k)
        cond = self._condition(prompts)
        teacher = None
        if cfg.alpha > 0:
            # The teacher goes first: swapping the EMA LoRA in and out modifies the LoRA weights in
            # place, which must not happen while the student's graph holds them for backward.
            with self.ema.swapped(), torch.no_grad():
                teacher = self._chain(noise, cond, k * m, sigmas=self.budgets.teacher_grid(self.family, k),
                                      **self.teacher_guidance)
                teacher_images = self.to_unit(teacher.latents)
                r_teacher = self.reward.score(teacher_images, prompts).float()
        student = self._chain(noise, cond, k, sigmas=self.budgets.student_grid(k), grad=True, checkpoint=cfg.gradient_checkpointing,
                              **self.student_guidance)
        images = self.to_unit(student.latents)
        r_student = self.reward.score(images, prompts).float()
        horizons = cfg.horizon_indices if k == cfg.student_steps else list(range(k))
        if teacher is None:  # terminal reward only: nothing to match
            return RolloutResult(prompts, student, None, images, r_student, r_student.detach(), [], [])
        pick = (lambda r, i: r.x0_preds[i]) if cfg.match_on == "x0" else (lambda r, i: r.states[i])
        # "final": the teacher's own end point, not its one-shot guess at sigma_h; "last": that end point
        # only where the student's x0_hat is its output (its last step), the guesses before it.
        final_at = {"x0_hat": (), "final": horizons, "last": [k - 1]}[cfg.teacher_target]
        t_h = [teacher.latents if h in final_at else pick(teacher, h * m) for h in horizons]
        # where the teacher's output puts the object: its positions weigh more in every horizon's distance
        weights = (object_weights(teacher.latents.float(), cfg.match_object_weight, self.family.latent_channel_dim)
                   if cfg.match_object_weight > 0 else None)
        return RolloutResult(prompts, student, teacher, images, r_student, r_teacher,
                             [pick(student, h) for h in horizons], t_h, weights, teacher_images)

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        """bfloat16 base weights with float32 LoRA: autocast makes the matmuls agree."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16)

    def _micro_step(self, micro: int) -> tuple[RolloutResult, object]:
        """One micro-batch: rollout, loss, backward (scaled for accumulation)."""
        cfg = self.config
        with self._autocast():
            out = self.rollout(*self.batch(self.step, micro), student_steps=self.budgets.steps_at(self.step))
            weights = cfg.weights if out.student_horizons and len(cfg.weights) == len(out.student_horizons) else None
            loss = rats_loss(out.reward_student, out.reward_teacher, out.teacher_horizons, out.student_horizons,
                             weights, alpha=cfg.alpha, reward_weight=cfg.reward_weight, tau=cfg.tau, gate=cfg.gate,
                             distance=cfg.match_distance, position_weights=out.match_weights,
                             channel_dim=self.family.latent_channel_dim, pixel_weight=cfg.match_pixels,
                             pixels=self._pixel_pair(out), pixel_object_weight=cfg.match_pixels_object_weight)
        (loss.loss / cfg.gradient_accumulation_steps).backward()
        return out, loss

    def _pixel_pair(self, out: RolloutResult) -> tuple[torch.Tensor, torch.Tensor] | None:
        use = self.config.match_pixels > 0 and out.teacher_images is not None
        return (out.teacher_images, out.student_images) if use else None

    def train_step(self) -> StepMetrics:
        cfg, started = self.config, time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        parts = [self._micro_step(j) for j in range(cfg.gradient_accumulation_steps)]
        params = list(self.params.values())
        if not self.sharded and self.processes > 1:
            average_gradients(self.accelerator, params)  # FSDP reduce-scatters gradients itself
        norm = full(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf))
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.ema.update()
        self.step += 1
        out = parts[-1][0]
        watch = {}
        if self.step % cfg.watch_every == 0:  # a world with a checker has a truth line even with no watch reward
            with torch.no_grad():
                images = out.student_images.detach()
                watch = {n: r.score(images, out.prompts).float().mean().item() for n, r in self.watch_rewards.items()}
                watch.update(truth_means(self.info.world, channels_last_uint8(images), out.prompts))

        def mean(get) -> float:
            return float(np.mean([get(o, loss) for o, loss in parts]))
        has_teacher = out.teacher is not None
        return StepMetrics(
            step=self.step, loss=mean(lambda o, l: l.loss.item()), matching=mean(lambda o, l: l.matching.item()),
            gated_matching=mean(lambda o, l: l.gated_matching.item()),
            reward_student=mean(lambda o, l: o.reward_student.mean().item()),
            reward_teacher=mean(lambda o, l: o.reward_teacher.mean().item()) if has_teacher else None,
            gate_mean=mean(lambda o, l: l.gate.mean().item()) if has_teacher else None, grad_norm=float(norm), lr=lr,
            step_time=time.perf_counter() - started, peak_memory_mb=peak_memory_mb(self.device),
            student_steps=len(out.student.x0_preds), watch=watch,
            pixel_matching=mean(lambda o, l: l.pixel_matching.item()) if parts[0][1].pixel_matching is not None else None)

    # ------------------------------------------------------------------ the loop
    def start_schedule(self) -> None:
        """The learning-rate schedule, positioned at the current step (after a resume too)."""
        cfg = self.config
        self.scheduler = lr_scheduler(self.optimizer, cfg.lr_schedule, cfg.steps, cfg.warmup_steps, min_ratio=0.1,
                                      start_step=self.step)

    def train(self, callbacks: list[TrainerCallback] = ()) -> None:
        """Run to ``config.steps`` or until a callback asks to stop."""
        callbacks = CallbackList(callbacks if self.is_main else [])
        run, cfg = self.run_info(), self.config
        self.start_schedule()
        callbacks.on_train_begin(run, self.step)
        last_checkpoint = time.monotonic()
        while self.step < cfg.steps and not self._agree(callbacks.should_stop()):
            metrics = self.train_step()
            callbacks.on_step_end(run, metrics)
            if cfg.sample_every and self.step % cfg.sample_every == 0:
                self._samples(callbacks, run)
            overdue = cfg.checkpoint_minutes > 0 and time.monotonic() - last_checkpoint >= 60 * cfg.checkpoint_minutes
            if self.step % cfg.checkpoint_every == 0 or self._agree(overdue):
                self._checkpoint(callbacks, run)
                last_checkpoint = time.monotonic()
        self._checkpoint(callbacks, run)
        self._samples(callbacks, run)
        callbacks.on_train_end(run, self.step, stopped=self.step < cfg.steps)

    def _agree(self, flag: bool) -> bool:
        """The main process's answer, on every process."""
        if self.processes == 1:
            return flag
        decision = torch.tensor([1.0 if flag else 0.0], device=self.device)
        return bool(self.accelerator.reduce(decision, reduction="sum").item() > 0)

    def _checkpoint(self, callbacks: CallbackList, run: RunInfo) -> None:
        # Under FSDP gathering is a collective: every process takes part, the main one reports it.
        if self.is_main or self.sharded:
            checkpoint = Checkpoint(self.step, self.state(), self.lora_state(),
                                    self.pipe.transformer.peft_config["default"].to_dict())
            callbacks.on_checkpoint(run, checkpoint)

    def _samples(self, callbacks: CallbackList, run: RunInfo) -> None:
        if self.is_main or self.sharded:  # a sharded forward needs every process
            prompts = self.sample_prompts
            images = self.sample_images(prompts, list(range(len(prompts))))
            callbacks.on_samples(run, Samples(self.step, prompts, sample_grid(images)))

    # ------------------------------------------------------------------ state
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
            raise ConfigError(f"checkpoint lacks LoRA tensor {missing[0]} (different lora_rank/targets?)")
        with torch.no_grad():
            for n, p in self.params.items():
                if p.shape != lora[n].shape:
                    raise ConfigError(f"checkpoint tensor {n} has shape {tuple(lora[n].shape)}, "
                                      f"model has {tuple(p.shape)}")
                p.copy_(shard_like(lora[n], p))
        self.ema.load_state_dict({n: shard_like(t, self.params[n]) for n, t in state["ema"].items()
                                  if n in self.params})
        if self.sharded:
            # The saved groups carry the schedule's initial_lr; torch's loader wants the same keys here.
            for group in self.optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
            load_full_optimizer_state(self.pipe.transformer, self.optimizer, state["optimizer"])
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])

    @torch.no_grad()
    def sample_images(self, prompts: list[str], seeds: list[int]) -> torch.Tensor:
        """Student outputs at K steps (for grids), [0, 1]: B x 3 x H x W, or B x 3 x F x H x W for clips."""
        cond = self._condition(prompts)
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        noise = self.family.initial_noise(generators, self.size, torch.float32)
        with self._autocast():
            k = self.config.student_steps
            rollout = denoise(self.family, noise, cond, self.size, k, sigmas=self.budgets.student_grid(k, sampling=True),
                              **self.sampling_guidance_by_nfe.get(k, self.sampling_guidance),
                              solver=TRAINING_SOLVER)
            return self.to_unit(rollout.latents)


def sample_grid(images: torch.Tensor) -> np.ndarray:
    """[0, 1] images side by side (clips: one filmstrip row each), as uint8."""
    media = channels_last_uint8(images)
    return np.concatenate([filmstrip(clip) for clip in media], axis=0) if media.ndim == 5 else filmstrip(media)
