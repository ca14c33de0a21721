"""A training run's output directory: what is in it, and the rules that keep it safe.

    DIR/pytorch_lora_weights.safetensors   the student LoRA (diffusers format), refreshed at checkpoints
    DIR/rats.json                          how the student runs: solver, steps, call settings, family
    DIR/config.json, DIR/config.yaml       the resolved config
    DIR/metrics.jsonl                      one JSON line per step
    DIR/samples/step_000050.png            sample grids at fixed prompts and seeds
    DIR/checkpoint/state.pt                LoRA, EMA, optimizer, step (read with weights_only=True)
    DIR/run.json                           status: running / finished / stopped
    DIR/README.md                          model card
    DIR/curves.png                         R_S, R_T, gate and matching loss per step

A new run refuses a non-empty directory; ``resume`` continues only a run with the same config
(``steps`` may grow). Every file is written atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from rats_app.config import TrainConfig
from rats_app.errors import ConfigError
from rats_app.io import append_jsonl, load_torch_state, read_jsonl, save_png, save_torch_state, write_json, write_text
from rats_app.lora import save_lora
from rats_app.training.callbacks import Checkpoint, RunInfo, Samples, StepMetrics, TrainerCallback

CHECKPOINT = Path("checkpoint") / "state.pt"
STUDENT_FILE = "rats.json"


def student_record(run: RunInfo) -> dict:
    """What the app and the CLI need to run the student as it was trained (beside the LoRA)."""
    return {"solver": run.solver, "student_steps": run.config.student_steps, "family": run.family,
            "pipeline": run.pipeline_class, "media": run.media, "base_model": run.config.model,
            "call": run.student_call}
RESUMABLE_CHANGES = {"steps", "sample_every", "checkpoint_every", "device", "watch_every", "parallel"}


def check_run_dir(output_dir: str | Path, config: TrainConfig, resume: bool) -> dict | None:
    """Everything that can be wrong with the directory, checked before any work and without
    writing; returns the checkpoint state when resuming."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output dir {out} exists and is not a directory")
    if not resume:
        if out.exists() and any(out.iterdir()):
            what = "another run" if (out / "config.json").exists() else "files"
            raise ConfigError(f"output dir {out} already holds {what}; choose a new directory, "
                              "or pass --resume to continue the run in it")
        return None
    saved_config = out / "config.json"
    if not saved_config.exists():
        raise ConfigError(f"nothing to resume in {out}: no config.json")
    saved = json.loads(saved_config.read_text())
    changed = sorted(k for k, v in config.to_dict().items() if saved.get(k) != v and k not in RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(f"cannot resume {out}: config differs from the run's in {', '.join(changed)}")
    checkpoint = out / CHECKPOINT
    if not checkpoint.exists():
        raise ConfigError(f"cannot resume {out}: no checkpoint at {checkpoint}")
    try:
        state = load_torch_state(checkpoint)
        int(state["step"]), state["lora"], state["ema"], state["optimizer"]
    except Exception as exc:
        raise ConfigError(f"cannot resume {out}: checkpoint {checkpoint} is corrupt or not ours "
                          f"({type(exc).__name__})") from None
    return state


def open_run_dir(output_dir: str | Path, config: TrainConfig, state: dict | None) -> None:
    """Write the run's config (a new run) or bring the directory to the checkpoint (a resumed one)."""
    out = Path(output_dir)
    if state is None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", config.to_dict())
        write_text(out / "config.yaml", _yaml(config.to_dict()))
        write_json(out / "run.json", {"status": "running", "step": 0})
        return
    saved = json.loads((out / "config.json").read_text())
    write_json(out / "config.json", {**saved, **{k: v for k, v in config.to_dict().items() if k in RESUMABLE_CHANGES}})
    _truncate_metrics(out / "metrics.jsonl", int(state["step"]))


def prepare(output_dir: str | Path, config: TrainConfig, resume: bool) -> dict | None:
    """Check, then open the directory; returns the checkpoint state when resuming."""
    state = check_run_dir(output_dir, config, resume)
    open_run_dir(output_dir, config, state)
    return state


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past the checkpoint (a crash after it; they will be redone) and a line a
    kill cut short."""
    if path.exists():
        rows = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
        write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=True)


class RunDirectory(TrainerCallback):
    """The run's directory, kept by the trainer's events (main process only)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_step_end(self, run: RunInfo, metrics: StepMetrics) -> None:
        append_jsonl(self.path / "metrics.jsonl", asdict(metrics))

    def on_checkpoint(self, run: RunInfo, checkpoint: Checkpoint) -> None:
        save_torch_state(self.path / CHECKPOINT, checkpoint.state)
        save_lora(self.path, checkpoint.lora, checkpoint.lora_config)
        write_json(self.path / STUDENT_FILE, student_record(run))
        write_json(self.path / "run.json", {"status": "running", "step": checkpoint.step})

    def on_samples(self, run: RunInfo, samples: Samples) -> None:
        save_png(Image.fromarray(samples.grid), self.path / "samples" / f"step_{samples.step:06d}.png")

    def on_train_end(self, run: RunInfo, step: int, stopped: bool) -> None:
        write_json(self.path / "run.json", {"status": "stopped" if stopped else "finished", "step": step,
                                            "processes": run.processes})
        rows = read_jsonl(self.path / "metrics.jsonl")
        write_text(self.path / "README.md", model_card(run, step, stopped, rows))
        if rows:
            from rats_app.plots import curves_figure, save_figure

            save_figure(curves_figure(rows), self.path / "curves.png")


def _literal(value) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)  # "" as in the docs


def model_card(run: RunInfo, step: int, stopped: bool, rows: list[dict]) -> str:
    cfg = run.config
    last = rows[-20:]

    def mean(key: str) -> float:
        values = [r[key] for r in last if r.get(key) is not None]
        return float(np.mean(values)) if values else float("nan")

    # The plain call that runs the student: its step count, then the model's own call settings
    # (with the student's guidance where it differs from the teacher's, e.g. SD3's 1.0).
    call = "".join(f", {k}={_literal(v)}" for k, v in run.student_call.items())
    return f"""---
library_name: diffusers
base_model: {cfg.model}
tags: [lora, rats, few-step, {run.family}]
---
# RATS LoRA ({cfg.preset}) for `{cfg.model}`

A {cfg.student_steps}-step student trained with RATS (reward-aware trajectory shaping) by RATS Studio.
Status: **{"stopped early" if stopped else "finished"}** after {step} of {cfg.steps} steps.

```python
from diffusers import {run.pipeline_class}
pipe = {run.pipeline_class}.from_pretrained("{cfg.model}")
pipe.load_lora_weights("{run.output_dir}")
output = pipe(prompt{call})
```

| setting | value |
|---|---|
| preset | {cfg.preset} |
| reward (trained) | {cfg.reward} |
| alpha / lambda / tau / gate | {cfg.alpha} / {cfg.reward_weight} / {cfg.tau} / {cfg.gate} |
| student / teacher steps | {cfg.student_steps} / {run.teacher_steps} |
| LoRA rank / alpha / targets | {cfg.lora_rank} / {cfg.lora_alpha} / {", ".join(cfg.lora_targets)} |
| learning rate / batch / EMA decay | {cfg.learning_rate} / {cfg.batch_size} / {cfg.ema_decay} |

Last {len(last)} steps: student reward {mean("reward_student"):.3f}, teacher reward {mean("reward_teacher"):.3f},
gate {mean("gate_mean"):.3f}, matching loss {mean("matching"):.4f}.
Full config: `config.yaml`; per-step metrics: `metrics.jsonl`; sample grids: `samples/`.
"""
