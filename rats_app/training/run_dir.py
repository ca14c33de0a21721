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

A new run refuses a non-empty directory. ``resume`` continues a run with its own config (only
``steps`` and the output intervals may change): from its checkpoint, or from step 0 if it was
killed before its first one; a finished run continues only to an explicitly larger ``steps``, and
its finished LoRA is kept in archive/step-NNNNNN/ first. Every file is written atomically, and a
metrics line cut short by a kill is dropped.

    DIR/archive/step-000040/               a finished LoRA, kept before the run trained on
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from rats_app.config import TrainConfig
from rats_app.errors import ConfigError
from rats_app.io import append_jsonl, load_torch_state, read_jsonl, save_png, save_torch_state, write_json, write_text
from rats_app.lora import save_lora
from rats_app.models import LORA_WEIGHT_NAME
from rats_app.training.callbacks import Checkpoint, RunInfo, Samples, StepMetrics, TrainerCallback

CHECKPOINT = Path("checkpoint") / "state.pt"
STUDENT_FILE = "rats.json"


def student_record(run: RunInfo) -> dict:
    """What the app and the CLI need to run the student as it was trained (beside the LoRA)."""
    return {"solver": run.solver, "student_steps": run.config.student_steps,
            "trained_nfes": run.config.trained_nfes, "family": run.family,
            "pipeline": run.pipeline_class, "media": run.media, "base_model": run.config.model,
            "call": run.student_call, **({"call_by_nfe": run.call_by_nfe} if run.call_by_nfe else {})}
RESUMABLE_CHANGES = {"steps", "sample_every", "checkpoint_every", "checkpoint_minutes", "device", "watch_every",
                     "parallel"}
ARCHIVE = Path("archive")  # a finished run trained on keeps its LoRA here first: archive/step-000040/


@dataclass(frozen=True)
class Resume:
    """How a run continues: from its checkpoint (None: a run killed before its first checkpoint
    starts again from step 0 with its own config), keeping a finished LoRA first when one is trained on."""

    state: dict | None
    keep_finished_at: int | None = None


def saved_config(output_dir: str | Path) -> dict:
    """The run's own config: config.json, else config.yaml (both are written atomically; either may
    have been edited by hand)."""
    out = Path(output_dir)
    for name, parse in (("config.json", json.loads), ("config.yaml", _load_yaml)):
        path = out / name
        if path.exists():
            try:
                data = parse(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(data, dict):
                return data
    if not (out / "config.json").exists() and not (out / "config.yaml").exists():
        raise ConfigError(f"nothing to resume in {out}: no config.json")
    raise ConfigError(f"cannot resume {out}: its config.json and config.yaml are damaged (not a mapping of keys)")


def _run_status(out: Path) -> dict:
    try:
        data = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _load_checkpoint(out: Path) -> dict | None:
    checkpoint = out / CHECKPOINT
    if not checkpoint.exists():
        return None
    try:
        state = load_torch_state(checkpoint)
        int(state["step"]), state["lora"], state["ema"], state["optimizer"]
    except Exception as exc:
        raise ConfigError(f"cannot resume {out}: checkpoint {checkpoint} is corrupt or not ours "
                          f"({type(exc).__name__})") from None
    return state


def check_run_dir(output_dir: str | Path, config: TrainConfig, resume: bool) -> Resume | None:
    """Everything that can be wrong with the directory, checked before any work and without
    writing; None for a new run, else how the run continues."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output dir {out} exists and is not a directory")
    if not resume:
        if out.exists() and any(out.iterdir()):
            what = "another run" if (out / "config.json").exists() else "files"
            raise ConfigError(f"output dir {out} already holds {what}; choose a new directory, "
                              "or pass --resume to continue the run in it")
        return None
    # Compared as JSON writes them: a by-NFE field's keys come back from config.json as text ("2")
    saved, current = (json.loads(json.dumps(c)) for c in (saved_config(out), config.to_dict()))
    changed = sorted(k for k, v in current.items() if saved.get(k) != v and k not in RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(f"cannot resume {out}: config differs from the run's in {', '.join(changed)}")
    state = _load_checkpoint(out)
    step = int(state["step"]) if state else 0
    if step >= config.steps:
        raise ConfigError(f"the run in {out} is at step {step} of {config.steps}: nothing to resume "
                          f"(give steps=N with N > {step} to train it on)")
    finished = _run_status(out).get("status") == "finished" and (out / LORA_WEIGHT_NAME).exists()
    return Resume(state, keep_finished_at=step if finished else None)


def open_run_dir(output_dir: str | Path, config: TrainConfig, resume: Resume | None) -> None:
    """Write the run's config (a new run), or bring the directory to where the run continues."""
    out = Path(output_dir)
    if resume is None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", config.to_dict())
        write_text(out / "config.yaml", _yaml(config.to_dict()))
        write_json(out / "run.json", {"status": "running", "step": 0})
        return
    if resume.keep_finished_at is not None:  # never overwrite a finished LoRA without keeping it
        kept = out / ARCHIVE / f"step-{resume.keep_finished_at:06d}"
        kept.mkdir(parents=True, exist_ok=True)
        for name in (LORA_WEIGHT_NAME, STUDENT_FILE, "README.md"):
            if (out / name).exists():
                shutil.copy2(out / name, kept / name)
    saved = saved_config(out)
    merged = {**saved, **{k: v for k, v in config.to_dict().items() if k in RESUMABLE_CHANGES}}
    write_json(out / "config.json", merged)
    write_text(out / "config.yaml", _yaml(merged))
    step = int(resume.state["step"]) if resume.state else 0
    _truncate_metrics(out / "metrics.jsonl", step)
    write_json(out / "run.json", {"status": "running", "step": step})


def mark_failed(output_dir: str | Path, step: int, error: str) -> None:
    """A run that stopped on an error says so (and stays resumable from its last checkpoint)."""
    write_json(Path(output_dir) / "run.json", {"status": "failed", "step": step, "error": error})


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past the checkpoint (a crash after it; they will be redone) and a line a
    kill cut short."""
    if path.exists():
        rows = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
        write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=True)


def _load_yaml(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


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


def _budgets(nfes: list[int]) -> str:
    return f"{nfes[0]}-step" if len(nfes) == 1 else f"{', '.join(map(str, nfes))}-step (one LoRA for all of them)"


def _literal(value) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)  # "" as in the docs


def _by_nfe_lines(by_nfe: dict) -> str:
    """The budgets that sample with other guidance than the call above, one line each."""
    lines = [f"At {n} step{'' if n == '1' else 's'}: " + ", ".join(f"{k}={_literal(v)}" for k, v in keys.items()) + "."
             for n, keys in by_nfe.items()]
    return "\n".join(lines) + "\n" if lines else ""


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

A {_budgets(cfg.trained_nfes)} student trained with RATS (reward-aware trajectory shaping) by RATS Studio.
Status: **{"stopped early" if stopped else "finished"}** after {step} of {cfg.steps} steps.

```python
from diffusers import {run.pipeline_class}
pipe = {run.pipeline_class}.from_pretrained("{cfg.model}")
pipe.load_lora_weights("{run.output_dir}")
output = pipe(prompt{call})
```
{_by_nfe_lines(run.call_by_nfe)}
| setting | value |
|---|---|
| preset | {cfg.preset} |
| reward (trained) | {cfg.reward} |
| alpha / lambda / tau / gate | {cfg.alpha} / {cfg.reward_weight} / {cfg.tau} / {cfg.gate} |
| student / teacher steps | {", ".join(map(str, cfg.trained_nfes))} / {run.teacher_steps} |
| LoRA rank / alpha / targets | {cfg.lora_rank} / {cfg.lora_alpha} / {", ".join(cfg.lora_targets)} |
| learning rate / batch / EMA decay | {cfg.learning_rate} / {cfg.batch_size} / {cfg.ema_decay} |

Last {len(last)} steps: student reward {mean("reward_student"):.3f}, teacher reward {mean("reward_teacher"):.3f},
gate {mean("gate_mean"):.3f}, matching loss {mean("matching"):.4f}.
Full config: `config.yaml`; per-step metrics: `metrics.jsonl`; sample grids: `samples/`.
"""
