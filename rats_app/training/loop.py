"""One resumable optimisation loop for the stages of a world's pretraining and for reward training.

A stage gives its modules, optimizer, schedule, optional EMA and a ``loss_fn(step)`` that draws
its batch from a per-step seed; the loop does the rest: backward, clipping, optimizer and schedule
steps, the EMA, a JSON log line every ``log_every`` steps and an atomic checkpoint every
``checkpoint_every`` steps. A stage stopped at any point resumes from its last checkpoint, and
because each batch depends only on the step, a resumed stage trains exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from rats_app.io import append_jsonl, load_torch_state, save_torch_state

LossFn = Callable[[int], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class Stage:
    name: str                 # the checkpoint is <work>/<name>_ckpt.pt; log lines say stage=<name>
    steps: int
    checkpoint_every: int = 250
    log_every: int = 50
    max_grad_norm: float = 1.0


def flat_state(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{name}.{k}": v for name, m in modules.items() for k, v in m.state_dict().items()}


def load_flat_state(modules: dict[str, torch.nn.Module], state: dict[str, torch.Tensor]) -> None:
    for name, module in modules.items():
        prefix = name + "."
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


def log(work: Path, record: dict) -> None:
    append_jsonl(work / "log.jsonl", record)
    print(json.dumps(record), flush=True)


def run_stage(work: Path, stage: Stage, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
              scheduler, loss_fn: LossFn, ema=None) -> int:
    """Train ``modules`` to ``stage.steps``, resuming from the stage's checkpoint; returns the step."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    checkpoint = work / f"{stage.name}_ckpt.pt"
    step = 0
    if checkpoint.exists():
        state = load_torch_state(checkpoint)
        load_flat_state(modules, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        step = int(state["step"])
    for module in modules.values():
        module.train()
    sums, count, started = defaultdict(float), 0, time.time()
    while step < stage.steps:
        loss, parts = loss_fn(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, stage.max_grad_norm)
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.step(params)
        step += 1
        for key, value in {"loss": loss.item(), **parts, "grad_norm": grad_norm.item()}.items():
            sums[key] += float(value)
        count += 1
        if step % stage.log_every == 0 or step == stage.steps:
            log(work, {"stage": stage.name, "step": step, **{k: round(v / count, 5) for k, v in sums.items()},
                       "lr": optimizer.param_groups[0]["lr"], "s": round(time.time() - started, 1)})
            sums, count = defaultdict(float), 0
        if step % stage.checkpoint_every == 0 or step == stage.steps:
            save_torch_state(checkpoint, {"model": flat_state(modules), "optimizer": optimizer.state_dict(),
                                          "scheduler": scheduler.state_dict(), "step": step,
                                          "ema": ema.state_dict() if ema is not None else None})
    for module in modules.values():
        module.eval()
    return step


def load_averaged(modules: dict[str, torch.nn.Module], checkpoint: dict, decay: float) -> int:
    """Put a stage checkpoint's EMA weights into ``modules`` (what an export ships); returns its step."""
    from rats_app.training.schedules import ema_of

    load_flat_state(modules, checkpoint["model"])
    params = [p for m in modules.values() for p in m.parameters()]
    ema = ema_of(params, decay, warmup=True)
    ema.load_state_dict(checkpoint["ema"])
    ema.copy_to(params)
    return int(checkpoint["step"])
