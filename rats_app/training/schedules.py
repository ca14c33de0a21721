"""The optimizer, learning-rate schedules and EMA weights, from torch, transformers and diffusers
rather than by hand.

Every loop in the project (the RATS trainer, the worlds' pretraining stages, reward training)
takes its schedule from :func:`lr_scheduler` and its moving average from :func:`ema_of`.
"""

from __future__ import annotations

from typing import Iterable

import torch
from diffusers.training_utils import EMAModel
from transformers import (
    get_constant_schedule_with_warmup,
    get_cosine_with_min_lr_schedule_with_warmup_lr_rate,
    get_wsd_schedule,
)

from rats_app.errors import ConfigError

SCHEDULES = ("constant", "cosine", "stable-cosine")


def lr_scheduler(optimizer: torch.optim.Optimizer, kind: str, total_steps: int, warmup_steps: int = 0,
                 min_ratio: float = 0.0, decay_from: int = 0, start_step: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step schedule (call ``.step()`` after each optimizer step).

    constant: linear warm-up from 0, then flat. cosine: linear warm-up, then cosine down to
    ``min_ratio`` x the base rate at the last step. stable-cosine: warm-up, flat until
    ``decay_from``, then cosine down to ``min_ratio`` (transformers' warmup-stable-decay).
    ``start_step``: a resumed run's step; the optimizer's rate is set for it.
    """
    last_epoch = start_step - 1
    if start_step:  # torch's schedulers resume from each group's initial_lr
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
    if kind == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup_steps, last_epoch=last_epoch)
    if kind == "cosine":
        # The lr_rate variant warms up as (n + 1) / warmup (no wasted step at rate 0) and reaches
        # min_ratio at the last step.
        return get_cosine_with_min_lr_schedule_with_warmup_lr_rate(optimizer, warmup_steps, total_steps,
                                                                   min_lr_rate=min_ratio, last_epoch=last_epoch)
    if kind == "stable-cosine":
        stable = max(0, decay_from - warmup_steps)
        return get_wsd_schedule(optimizer, warmup_steps, num_decay_steps=max(1, total_steps - warmup_steps - stable),
                                num_stable_steps=stable, min_lr_ratio=min_ratio, last_epoch=last_epoch)
    raise ValueError(f"unknown learning-rate schedule {kind!r}; expected one of {SCHEDULES}")


def ema_of(parameters: Iterable[torch.nn.Parameter], decay: float, warmup: bool = False) -> EMAModel:
    """diffusers' EMAModel over ``parameters``.

    warmup=False: the same decay from the first update on (the RATS teacher follows the student
    at a fixed rate). warmup=True: diffusers' default ramp min(decay, (1 + n) / (10 + n)), which
    lets a model trained from scratch be averaged from early on (pretraining).
    """
    if warmup:
        return EMAModel(list(parameters), decay=decay)
    # update_after_step=-1 keeps EMAModel from copying the weights outright at its first update.
    return EMAModel(list(parameters), decay=decay, min_decay=decay, update_after_step=-1)


def make_optimizer(config, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW, or bitsandbytes' 8-bit AdamW (CUDA only) for ``optimizer="adamw8bit"`` (a TrainConfig)."""
    if config.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ConfigError("optimizer: adamw8bit needs the bitsandbytes package (pip install bitsandbytes, "
                              "CUDA only); use adamw") from None
        return bnb.optim.AdamW8bit(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
