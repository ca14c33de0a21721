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


def save_lora(transformer, directory: str | os.PathLike, lora_config: dict | None = None,
              state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``pytorch_lora_weights.safetensors`` loadable by ``pipe.load_lora_weights(directory)``.

    ``state`` is the LoRA already gathered (FSDP); by default it is read from the transformer. The
    file layout (``transformer.``-prefixed peft keys) is the same for FLUX and SD3 pipelines."""
    from diffusers import FluxPipeline

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = lora_state_dict(transformer) if state is None else state
    state = {k: v.detach().to(torch.float32).cpu().contiguous() for k, v in state.items()}
    metadata = lora_config or transformer.peft_config[ADAPTER].to_dict()
    metadata = {k: (sorted(v) if isinstance(v, set) else v) for k, v in metadata.items()}
    with tempfile.TemporaryDirectory(dir=directory, prefix=".lora-") as tmp:
        FluxPipeline.save_lora_weights(tmp, transformer_lora_layers=state,
                                       transformer_lora_adapter_metadata=metadata)
        os.replace(Path(tmp) / LORA_WEIGHT_NAME, directory / LORA_WEIGHT_NAME)
    return directory / LORA_WEIGHT_NAME


class EmaLora:
    """Exponential moving average of the LoRA weights; swapped in for the teacher's rollouts."""

    def __init__(self, params: dict[str, torch.nn.Parameter], decay: float):
        self.params = params
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in params.items()}

    @torch.no_grad()
    def update(self) -> None:
        for n, p in self.params.items():
            self.shadow[n].lerp_(p.detach(), 1.0 - self.decay)

    @contextlib.contextmanager
    def swapped(self):
        """Inside the block the model runs with the EMA LoRA (no grad needed there)."""
        backup = {n: p.detach().clone() for n, p in self.params.items()}
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(self.shadow[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in self.params.items():
                    p.copy_(backup[n])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: t.clone() for n, t in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} LoRA tensors, e.g. {missing[0]}")
        for n in self.shadow:
            self.shadow[n].copy_(state[n])

