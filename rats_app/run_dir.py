"""A training run's output directory: what is in it, and the rules that keep it safe.

    DIR/pytorch_lora_weights.safetensors   the student LoRA (diffusers format), refreshed at checkpoints
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
from pathlib import Path

import numpy as np
from PIL import Image

from rats_app.config import ConfigError, TrainConfig
from rats_app.io import load_torch_state, save_torch_state, write_json, write_text

CHECKPOINT = Path("checkpoint") / "state.pt"
RESUMABLE_CHANGES = {"steps", "sample_every", "checkpoint_every", "device", "watch_every", "parallel"}


def prepare(output_dir: str | Path, config: TrainConfig, resume: bool) -> dict | None:
    """Check the directory before any work; returns the checkpoint state when resuming."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output dir {out} exists and is not a directory")
    if not resume:
        if out.exists() and any(out.iterdir()):
            what = "another run" if (out / "config.json").exists() else "files"
            raise ConfigError(f"output dir {out} already holds {what}; choose a new directory, "
                              "or pass --resume to continue the run in it")
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", config.to_dict())
        write_text(out / "config.yaml", _yaml(config.to_dict()))
        write_json(out / "run.json", {"status": "running", "step": 0})
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
    write_json(saved_config, {**saved, **{k: v for k, v in config.to_dict().items() if k in RESUMABLE_CHANGES}})
    _truncate_metrics(out / "metrics.jsonl", int(state["step"]))
    return state


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past the checkpoint (a crash after it); they will be redone."""
    if path.exists():
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
        write_text(path, "".join(ln + "\n" for ln in lines))


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=True)


class RunDirectory:
    def __init__(self, path: Path, is_main: bool = True):
        self.path = Path(path)
        self.is_main = is_main

    def append_metrics(self, record: dict) -> None:
        if self.is_main:
            with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def save_checkpoint(self, trainer) -> None:
        # Under FSDP gathering the state is a collective: every process takes part, the main one writes.
        if not self.is_main and not trainer.sharded:
            return
        from rats_app.lora import save_lora

        state, lora = trainer.state(), trainer.lora_state()
        if not self.is_main:
            return
        save_torch_state(self.path / CHECKPOINT, state)
        save_lora(trainer.pipe.transformer, self.path, state=lora)
        write_json(self.path / "run.json", {"status": "running", "step": trainer.step})

    def save_samples(self, trainer, step: int) -> None:
        if not self.is_main and not trainer.sharded:  # a sharded forward needs every process
            return
        prompts = trainer.config.sample_prompts or _default_sample_prompts(trainer)
        images = trainer.sample_images(prompts, list(range(len(prompts))))
        if not self.is_main:
            return
        array = (images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        grid = np.concatenate(list(array), axis=1)
        path = self.path / "samples" / f"step_{step:06d}.png"
        from rats_app.generate import save_png

        save_png(Image.fromarray(grid), path)

    def finish(self, trainer, stopped: bool) -> None:
        if not self.is_main:
            return
        processes = trainer.accelerator.num_processes if trainer.accelerator else 1
        write_json(self.path / "run.json", {"status": "stopped" if stopped else "finished", "step": trainer.step,
                                            "processes": processes})
        write_text(self.path / "README.md", model_card(trainer, stopped))
        metrics = self.path / "metrics.jsonl"
        if metrics.exists():
            from rats_app.plots import curves_figure, save_figure

            rows = [json.loads(ln) for ln in metrics.read_text().splitlines() if ln.strip()]
            save_figure(curves_figure(rows), self.path / "curves.png")


def _default_sample_prompts(trainer) -> list[str]:
    from rats_app.trainer import SAMPLE_PROMPTS

    return SAMPLE_PROMPTS if trainer.config.prompts == "world" else trainer.prompts[:8]


def model_card(trainer, stopped: bool) -> str:
    cfg = trainer.config
    lines = []
    metrics = trainer.output_dir / "metrics.jsonl"
    if metrics.exists():
        lines = [json.loads(ln) for ln in metrics.read_text().splitlines() if ln.strip()]
    last = lines[-20:]
    mean = lambda k: np.mean([r[k] for r in last if r.get(k) is not None]) if any(r.get(k) is not None for r in last) else float("nan")  # noqa: E731
    # Where the student's guidance differs from the teacher's (SD3: it learns to need no CFG), say so.
    student_call = (f", guidance_scale={trainer.student_guidance!r}"
                    if trainer.student_guidance != trainer.guidance_scale else "")
    # The model's own call settings (e.g. Shapes World's short max_sequence_length and true CFG).
    python_literal = lambda v: json.dumps(v) if isinstance(v, str) else repr(v)  # noqa: E731  ("" as in the docs)
    student_call += "".join(f", {k}={python_literal(v)}" for k, v in trainer.call_defaults.items()
                            if not (k == "guidance_scale" and student_call))
    return f"""---
library_name: diffusers
base_model: {cfg.model}
tags: [lora, rats, few-step, {trainer.family.name}]
---
# RATS LoRA ({cfg.preset}) for `{cfg.model}`

A {cfg.student_steps}-step student trained with RATS (reward-aware trajectory shaping) by RATS Studio.
Status: **{"stopped early" if stopped else "finished"}** after {trainer.step} of {cfg.steps} steps.

```python
from diffusers import {type(trainer.pipe).__name__}
pipe = {type(trainer.pipe).__name__}.from_pretrained("{cfg.model}")
pipe.load_lora_weights("{trainer.output_dir}")
image = pipe(prompt, num_inference_steps={cfg.student_steps}{student_call}).images[0]
```

| setting | value |
|---|---|
| preset | {cfg.preset} |
| reward (trained) | {cfg.reward} |
| alpha / lambda / tau / gate | {cfg.alpha} / {cfg.reward_weight} / {cfg.tau} / {cfg.gate} |
| student / teacher steps | {cfg.student_steps} / {cfg.student_steps * cfg.teacher_subdivisions} |
| LoRA rank / alpha / targets | {cfg.lora_rank} / {cfg.lora_alpha} / {", ".join(cfg.lora_targets)} |
| learning rate / batch / EMA decay | {cfg.learning_rate} / {cfg.batch_size} / {cfg.ema_decay} |

Last {len(last)} steps: student reward {mean("reward_student"):.3f}, teacher reward {mean("reward_teacher"):.3f},
gate {mean("gate_mean"):.3f}, matching loss {mean("matching"):.4f}.
Full config: `config.yaml`; per-step metrics: `metrics.jsonl`; sample grids: `samples/`.
"""
