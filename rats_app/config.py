"""Training configuration: a validated dataclass, loadable from YAML, overridable from the CLI.

Every field carries help text (shown by ``python -m rats_app.train --help`` and in the app's
Train tab). Unknown keys and bad values raise ``ConfigError`` naming the key and the value.
Fields marked "ours" are our reconstruction where the RATS paper is silent (docs/method.md).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rats_app import fields as config_fields
from rats_app.errors import ConfigError
from rats_app.fields import option as _f
from rats_app.worlds import REPO_ROOT, default_world

# The default world's teacher, as a path relative to the repository (configs stay portable).
DEFAULT_MODEL = str(default_world().model_dir.relative_to(REPO_ROOT))
WORLD = "world"  # prompts / reward: the ones of the model's embedded world


METHOD_PRESETS: dict[str, dict[str, Any]] = {
    "rats": {},                                                   # the full method
    "distill": {"reward_weight": 0.0, "gate": "always"},          # teacher imitation only
    "reward": {"alpha": 0.0},                                     # terminal reward only
}


@dataclass
class TrainConfig:
    # --- what to train
    preset: str = _f("rats", "named method: rats (full), distill (lambda = 0, gate always), reward (alpha = 0)",
                     choices=tuple(METHOD_PRESETS), advanced=False)
    model: str = _f(DEFAULT_MODEL, "base pipeline directory (relative paths also resolve from the repository "
                    "root)", advanced=False)
    reward: str = _f(WORLD, "reward the student is trained on: a registry name, or 'world' (the preference "
                     "reward of the model's embedded world)", advanced=False)
    watch_rewards: list = _f([], "other rewards logged on the same images every watch_every steps (hacking watch)")
    watch_every: int = _f(10, "steps between watch-reward evaluations", low=1)
    prompts: str = _f(WORLD, "'world' (the training prompts of the model's embedded world) or a text file, one "
                      "prompt per line", advanced=False)
    # --- the method
    student_steps: int = _f(3, "K: student sampling steps (its timesteps are the horizons)", low=1, high=50,
                            advanced=False)
    student_steps_choices: list = _f([1, 2, 3, 4, 6, 8], "draw K per step from these: one LoRA for every budget "
                                     "(every student step a horizon; student_steps, one of them, is the sample "
                                     "grids' K); empty = always student_steps", advanced=False)
    student_steps_weights: list = _f([], "relative draw weights of student_steps_choices (same length); empty = "
                                     "uniform. Small K learns slowest and costs least per step, so weighting it "
                                     "buys its budget the most steps per minute")
    teacher_steps: int = _f(12, "teacher steps; rounded up to a multiple of student_steps so its grid "
                            "contains the student's", low=1, high=1000)
    horizons: list = _f([], "student step indices to match at (0 = sigma 1); empty = all K")
    horizon_weights: list = _f([], "per-horizon weights w_h (same length as the horizons); empty = all 1")
    match_on: str = _f("x0", "match predicted clean latents (x0) or the noisy states (state)", choices=("x0", "state"))
    teacher_target: str = _f("last", "with match_on x0, what the student's x0_hat at a horizon is pulled toward: "
                             "the teacher's x0_hat at that sigma (x0_hat), or the clean latents the teacher's "
                             "rollout ends at (final: its sharp multi-step output), or that end point at the student's last step "
                             "(when it is a horizon) and x0_hat before it (last: the student's output is pulled to "
                             "the teacher's output)",
                             choices=("x0_hat", "final", "last"))
    match_distance: str = _f("l2", "distance d between teacher and student", choices=("l2", "cosine"))
    match_object_weight: float = _f(0.0, "extra weight of the latent positions where the teacher's output differs "
                                    "from its median latent (the object on a plain background) in d: 0 = every "
                                    "position alike; 4 = the object's positions count 5x (a small object's colour "
                                    "is a few percent of a canvas-wide mean)", low=0.0)
    match_pixels: float = _f(0.0, "beta: weight of a gated pixel distance between the student's and the teacher's "
                             "decoded outputs (our addition, off = 0: the latent distance over the canvas hardly "
                             "sees a small object's colour), object-weighted by match_pixels_object_weight", low=0.0)
    match_pixels_object_weight: float = _f(10.0, "extra weight of the pixels where the teacher's output differs "
                                           "from its median colour (the object) in the pixel term", low=0.0)
    alpha: float = _f(0.2, "alpha: weight of the gated horizon-matching term", low=0.0, advanced=False)
    reward_weight: float = _f(0.01, "lambda: weight of the terminal reward term -lambda * R_S", low=0.0)
    tau: float = _f(1.0, "tau: gate temperature, g = sigmoid((R_T - R_S) / tau)", low=0.0, low_open=True)
    gate: str = _f("soft", "soft: sigmoid; hard: 1 if R_T > R_S else 0; always: g = 1",
                   choices=("soft", "hard", "always"))
    ema_decay: float = _f(0.998, "EMA decay of the teacher's LoRA (teacher = base + EMA of student LoRA)",
                          low=0.0, high=1.0)
    student_cfg: float = _f(0.0, "classifier-free guidance scale the student is trained with (and sampled, "
                            "unless sample_cfg) "
                            "(FLUX: true_cfg_scale; Wan, SD3: guidance_scale); 0 = the model's own. Ours: a scale "
                            "tuned for many steps overshoots in few (Shapes World: at CFG 3 a 2-step object lands "
                            "~20 RGB levels off its colour); a RATS LoRA records it and runs with it", low=0.0)
    sample_cfg: float = _f(0.0, "classifier-free guidance scale the LoRA's record gives for sampling (the app, "
                           "generate, evaluate and its plain diffusers call); 0 = the scale it was trained with. "
                           "Ours: on Shapes World 1.5 for a student trained at 2 sharpened 1 and 2 steps but cost "
                           "held-out correctness at 3 to 8, so it stays off there", low=0.0)
    student_sigmas_by_nfe: dict = _f({}, "the student's own step grid at chosen step counts, NFE: sigmas before the "
                                     "shift (e.g. {2: [1.0, 0.6]}; K values from 1 down, the last above 0): it is "
                                     "trained on that grid (its horizons; the teacher's refined grid contains it) "
                                     "and the LoRA's record samples that budget with it (the pipeline's `sigmas`). "
                                     "Few-step students sample best where their last step starts (as LCM, TCD and "
                                     "Lightning pick their timesteps)")
    sample_sigmas_by_nfe: dict = _f({}, "the step grid the LoRA's record gives for sampling at chosen step counts, "
                                    "NFE: sigmas (as student_sigmas_by_nfe, which it overrides for sampling); "
                                    "training is untouched")
    sample_cfg_by_nfe: dict = _f({}, "the sampling CFG scale at chosen step counts, NFE: scale (e.g. {2: 1.75}); "
                                 "the LoRA's record gives it for those budgets, sample_cfg for the others. Like "
                                 "the per-step-count CFG that few-step LoRAs publish: the fewer the steps, the "
                                 "further a scale tuned for more of them overshoots")
    # --- LoRA and optimisation
    lora_rank: int = _f(8, "LoRA rank", low=1, high=512)
    lora_alpha: float = _f(8.0, "LoRA alpha (scale = alpha / rank)", low=0.0, low_open=True)
    lora_targets: list = _f(["to_q", "to_k", "to_v", "to_out.0"], "transformer modules that get LoRA")
    learning_rate: float = _f(2e-3, "AdamW learning rate", low=0.0, low_open=True, advanced=False)
    lr_schedule: str = _f("cosine", "constant, or cosine (decays to 10 % of learning_rate at the last step)",
                          choices=("constant", "cosine"))
    warmup_steps: int = _f(10, "steps of linear learning-rate warm-up from 0", low=0)
    weight_decay: float = _f(0.0, "AdamW weight decay", low=0.0)
    max_grad_norm: float = _f(1.0, "gradient clipping (0 = off)", low=0.0)
    steps: int = _f(110, "optimisation steps", low=1, high=1_000_000, advanced=False)
    batch_size: int = _f(8, "prompts per micro-batch (per process)", low=1, high=4096)
    gradient_accumulation_steps: int = _f(1, "micro-batches per optimizer step (the paper's Wan run: batch 1 x 8)",
                                          low=1, high=1024)
    batch_guidance: bool = _f(True, "classifier-free guidance's two passes as one batched forward in the training "
                              "rollouts (faster; the last bits differ from the pipeline's two passes, which "
                              "generation keeps)")
    reward_frames: int = _f(0, "video: frames an image reward scores per clip (0 = all, k = k evenly spaced, "
                            "first and last included)", low=0)
    gradient_checkpointing: bool = _f(False, "recompute each student step in backward (saves memory)")
    dtype: str = _f("float32", "base weights' dtype; with bfloat16 the LoRA stays float32 under autocast",
                    choices=("float32", "bfloat16"))
    optimizer: str = _f("adamw", "adamw, or adamw8bit (bitsandbytes) to shrink optimizer state",
                        choices=("adamw", "adamw8bit"))
    cache_text_embeddings: bool = _f(True, "encode every training prompt once, then move the text encoders "
                                     "off the GPU (they are frozen)")
    vae_tiling: bool = _f(False, "decode in tiles (large resolutions on small GPUs)")
    seed: int = _f(0, "seed for prompts, noise and LoRA init", low=0, high=2**63 - 1, advanced=False)
    # --- outputs
    sample_every: int = _f(50, "steps between sample grids (0 = only at the end)", low=0)
    checkpoint_every: int = _f(100, "steps between resumable checkpoints", low=1)
    checkpoint_minutes: float = _f(5.0, "minutes of wall time between checkpoints whatever checkpoint_every says "
                                   "(0 = off); a stop, Ctrl-C or SIGTERM also checkpoints", low=0.0)
    sample_prompts: list = _f([], "prompts of the sample grid; empty = the world's sample prompts (else the "
                              "first 8 training prompts)")
    device: str = _f("auto", "auto, cpu or cuda")
    parallel: str = _f("auto", "several processes: ddp (average LoRA gradients), fsdp (shard base and LoRA "
                       "with FSDP2), auto (fsdp under an accelerate FSDP config, else ddp)",
                       choices=("auto", "ddp", "fsdp"))

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        config_fields.validate(self)
        for h in self.horizons:
            if not isinstance(h, int) or not 0 <= h < self.student_steps:
                raise ConfigError(f"horizons: {h!r} is not a student step index in [0, {self.student_steps - 1}]")
        if self.horizon_weights and len(self.horizon_weights) != len(self.horizon_indices):
            raise ConfigError(f"horizon_weights: {len(self.horizon_weights)} weights for "
                              f"{len(self.horizon_indices)} horizons")
        if any(not isinstance(w, (int, float)) or w < 0 for w in self.horizon_weights):
            raise ConfigError(f"horizon_weights: {self.horizon_weights!r} must be non-negative numbers")
        if not all(isinstance(t, str) and t for t in self.lora_targets) or not self.lora_targets:
            raise ConfigError(f"lora_targets: {self.lora_targets!r} must be a non-empty list of module names")
        if any(isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50 for k in self.student_steps_choices):
            raise ConfigError(f"student_steps_choices: {self.student_steps_choices!r} must be step counts in [1, 50]")
        fixed_k = "set student_steps_choices=[] to train one K"
        if self.student_steps_weights and len(self.student_steps_weights) != len(self.student_steps_choices):
            raise ConfigError(f"student_steps_weights: {len(self.student_steps_weights)} weights for "
                              f"{len(self.student_steps_choices)} student_steps_choices")
        if self.student_steps_weights and (
                any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in self.student_steps_weights)
                or not sum(self.student_steps_weights) > 0):
            raise ConfigError(f"student_steps_weights: {self.student_steps_weights!r} must be non-negative numbers, "
                              "not all 0")
        if self.student_steps_choices and self.horizons:
            raise ConfigError(f"horizons: with student_steps_choices every student step is a horizon ({fixed_k})")
        if self.student_steps_choices and self.horizon_weights:
            raise ConfigError(f"horizon_weights: with student_steps_choices the horizons change with K ({fixed_k})")
        if self.student_steps_choices and self.student_steps not in self.student_steps_choices:
            raise ConfigError(f"student_steps: {self.student_steps} is not one of student_steps_choices "
                              f"{self.student_steps_choices}, which decide K ({fixed_k} = {self.student_steps})")
        if self.student_steps_choices and self.student_steps not in self.student_steps_distribution:
            # the sample grids and the LoRA's default NFE use student_steps: it must be a K that trains
            raise ConfigError(f"student_steps: {self.student_steps} has weight 0 in student_steps_weights "
                              f"{self.student_steps_weights}, so the run would never train it")
        self.sample_cfg_by_nfe = nfe_scales(self.sample_cfg_by_nfe)
        self.student_sigmas_by_nfe = nfe_grids(self.student_sigmas_by_nfe, "student_sigmas_by_nfe")
        self.sample_sigmas_by_nfe = nfe_grids(self.sample_sigmas_by_nfe, "sample_sigmas_by_nfe")
        if self.teacher_target != "x0_hat" and self.match_on != "x0":
            raise ConfigError(f"teacher_target: {self.teacher_target!r} needs match_on: 'x0' (a noisy state has no "
                              "final image)")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device: {self.device!r} is not auto, cpu or cuda")

    # ------------------------------------------------------------------ derived values
    @property
    def horizon_indices(self) -> list[int]:
        return sorted(self.horizons) if self.horizons else list(range(self.student_steps))

    @property
    def weights(self) -> list[float]:
        return [float(w) for w in self.horizon_weights] or [1.0] * len(self.horizon_indices)

    @property
    def student_steps_distribution(self) -> dict[int, float]:
        """K -> the share of optimisation steps that train it (choices may repeat; weight 0 drops one)."""
        if not self.student_steps_choices:
            return {self.student_steps: 1.0}
        weights = self.student_steps_weights or [1.0] * len(self.student_steps_choices)
        shares: dict[int, float] = {}
        for k, w in zip(self.student_steps_choices, weights):
            shares[k] = shares.get(k, 0.0) + float(w) / sum(weights)
        return {k: p for k, p in sorted(shares.items()) if p > 0}

    @property
    def sampling_cfg(self) -> float:
        """The CFG scale the LoRA's record gives for sampling: sample_cfg, else student_cfg (0: the model's)."""
        return self.sample_cfg or self.student_cfg

    @property
    def sampling_sigmas_by_nfe(self) -> dict[int, list[float]]:
        """The grids the LoRA's record gives for sampling: the student's own, where not overridden."""
        return dict(sorted({**self.student_sigmas_by_nfe, **self.sample_sigmas_by_nfe}.items()))

    def sampling_cfg_at(self, nfe: int) -> float:
        """The CFG scale the LoRA's record gives for sampling at ``nfe`` steps (0: the model's)."""
        return self.sample_cfg_by_nfe.get(nfe, self.sampling_cfg)

    @property
    def trained_nfes(self) -> list[int]:
        """The student step counts this run trains (what its LoRA is made for)."""
        return list(self.student_steps_distribution)

    @property
    def teacher_subdivisions(self) -> int:
        return -(-self.teacher_steps // self.student_steps)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Preset values first, then the given keys; unknown keys are named in the error."""
        config_fields.check_keys(cls, data)
        preset = data.get("preset", "rats")
        if preset not in METHOD_PRESETS:
            raise ConfigError(f"preset: {preset!r} is not one of {list(METHOD_PRESETS)}")
        return config_fields.from_mapping(cls, {**METHOD_PRESETS[preset], **data})

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(read_yaml_mapping(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _nfe_key(name: str, nfe) -> int:
    """A by-NFE mapping's key as an int; keys read back from JSON are text ("2")."""
    key = int(nfe) if isinstance(nfe, str) and nfe.strip().isdigit() else nfe
    if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= 50:
        raise ConfigError(f"{name}: {nfe!r} is not a step count in [1, 50]")
    return key


def nfe_grids(mapping: dict, name: str) -> dict[int, list[float]]:
    """A by-NFE grid field as {int NFE: its grid}: NFE values, falling from at most 1 and above 0."""
    grids = {}
    for nfe, grid in mapping.items():
        key = _nfe_key(name, nfe)
        numbers = isinstance(grid, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in grid)
        if not numbers or len(grid) != key:
            raise ConfigError(f"{name}: {grid!r} at NFE {key} must be a list of {key} sigmas")
        if not (1.0 >= grid[0] and grid[-1] > 0 and all(a > b for a, b in zip(grid, grid[1:]))):
            raise ConfigError(f"{name}: {grid!r} at NFE {key} must fall from at most 1 to above 0")
        grids[key] = [float(v) for v in grid]
    return dict(sorted(grids.items()))


def nfe_scales(mapping: dict) -> dict[int, float]:
    """sample_cfg_by_nfe as {int NFE: float scale}."""
    scales = {}
    for nfe, scale in mapping.items():
        key = _nfe_key("sample_cfg_by_nfe", nfe)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < float("inf"):
            raise ConfigError(f"sample_cfg_by_nfe: the scale {scale!r} at NFE {key} must be a number > 0")
        scales[key] = float(scale)
    return dict(sorted(scales.items()))


def with_world_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Config keys over the training defaults of the world their model belongs to (a Moving Shapes
    student is trained differently from a Shapes World one); keys given explicitly, and those the
    method preset sets, win."""
    from rats_app.models import world_train_defaults

    preset = METHOD_PRESETS.get(data.get("preset", "rats"), {})
    defaults = world_train_defaults(data.get("model", DEFAULT_MODEL))
    if "student_steps_choices" in data:  # the world's draw weights belong to its own choices
        defaults.pop("student_steps_weights", None)
    return {**{k: v for k, v in defaults.items() if k not in preset}, **data}


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of config keys")
    return data


def parse_override(config: TrainConfig, assignment: str) -> dict[str, Any]:
    """``key=value`` from the command line (rats_app.fields.parse_assignment)."""
    return config_fields.parse_assignment(type(config), assignment)
