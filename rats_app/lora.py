"""LoRA on the transformer: add, save (diffusers format, atomically), and the EMA teacher.

The teacher is the same base weights with an EMA of the student's LoRA swapped in place for the
teacher's rollout, so training holds one copy of the base model plus two small sets of LoRA
weights (student, EMA) rather than two models.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model_state_dict

from rats_app.models import LORA_WEIGHT_NAME

ADAPTER = "default"


def add_lora(transformer, rank: int, alpha: float, targets: list[str], seed: int = 0) -> dict[str, torch.nn.Parameter]:
    """Attach a trainable LoRA (A Gaussian, B zero: the student starts equal to the base)."""
    torch.manual_seed(seed)
    transformer.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), init_lora_weights=True)
    try:
        transformer.add_adapter(config, adapter_name=ADAPTER)
    except ValueError as exc:
        raise ValueError(f"lora_targets {targets} do not match modules of this transformer: {exc}") from None
    params = lora_parameters(transformer)
    if not params:
        raise ValueError(f"lora_targets {targets} matched no module of this transformer")
    for p in params.values():
        p.requires_grad_(True)
    return params


def lora_parameters(transformer) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in transformer.named_parameters() if ".lora_" in n}


def lora_state_dict(transformer) -> dict[str, torch.Tensor]:
    """The LoRA's tensors in peft/diffusers naming (what the weights file holds)."""
    return get_peft_model_state_dict(transformer, adapter_name=ADAPTER)


def save_lora(directory: str | os.PathLike, state: dict[str, torch.Tensor], lora_config: dict) -> Path:
    """Write ``pytorch_lora_weights.safetensors`` loadable by ``pipe.load_lora_weights(directory)``.

    ``state``: the LoRA in diffusers/peft naming (full tensors, e.g. gathered under FSDP);
    ``lora_config``: its adapter config, kept as the file's metadata. The layout
    (``transformer.``-prefixed peft keys) is the same for every family's pipeline."""
    from diffusers import FluxPipeline

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float32).cpu().contiguous() for k, v in state.items()}
    metadata = {k: (sorted(v) if isinstance(v, set) else v) for k, v in lora_config.items()}
    with tempfile.TemporaryDirectory(dir=directory, prefix=".lora-") as tmp:
        FluxPipeline.save_lora_weights(tmp, transformer_lora_layers=state,
                                       transformer_lora_adapter_metadata=metadata)
        os.replace(Path(tmp) / LORA_WEIGHT_NAME, directory / LORA_WEIGHT_NAME)
    return directory / LORA_WEIGHT_NAME


class EmaLora:
    """The teacher's LoRA: diffusers' EMAModel of the student's LoRA at a fixed decay, swapped into
    the model in place for the teacher's rollouts (no second copy of the base model)."""

    def __init__(self, params: dict[str, torch.nn.Parameter], decay: float):
        from rats_app.training.schedules import ema_of

        self.params = params
        self.ema = ema_of(params.values(), decay)

    def update(self) -> None:
        self.ema.step(list(self.params.values()))

    @contextlib.contextmanager
    def swapped(self):
        """Inside the block the model runs with the EMA LoRA (no grad needed there)."""
        backup = [p.detach().clone() for p in self.params.values()]
        with torch.no_grad():
            for p, shadow in zip(self.params.values(), self.ema.shadow_params):
                p.copy_(shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, saved in zip(self.params.values(), backup):
                    p.copy_(saved)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Named shadow tensors (what checkpoints hold, independent of the process count)."""
        return {n: t.clone() for n, t in zip(self.params, self.ema.shadow_params)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.params) - set(state))
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} LoRA tensors, e.g. {missing[0]}")
        with torch.no_grad():
            for name, shadow in zip(self.params, self.ema.shadow_params):
                shadow.copy_(state[name])
