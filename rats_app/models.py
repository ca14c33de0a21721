"""Loading text-to-image models and LoRAs, with the checks users hit first.

A model is a diffusers ``FluxPipeline`` or ``StableDiffusion3Pipeline`` directory plus two optional
files of ours: ``call_defaults.json`` (keyword arguments that differ from the pipeline's ``__call__`` defaults)
and ``world.json`` (a closed prompt vocabulary, for models trained on a small world).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS = REPO_ROOT / "assets"
DEFAULT_MODEL = ASSETS / "shapes-flux"
SHIPPED_RATS_LORA = ASSETS / "shapes-flux-rats"
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
MAX_NFE = 1000


class UserError(ValueError):
    """A problem with what the user asked for; the message is shown as is (one line, no traceback)."""


@dataclass
class ModelInfo:
    """What we know about a model before loading its weights."""

    path: str
    call_defaults: dict = field(default_factory=dict)
    vocabulary: frozenset[str] | None = None   # None: open vocabulary
    height: int = 64
    width: int = 64

    def check_prompt(self, prompt: str) -> str:
        """Return the normalised prompt, or raise UserError naming what is wrong with it."""
        text = " ".join(str(prompt).split())
        if not text:
            raise UserError("empty prompt")
        if self.vocabulary is not None:
            unknown = [w for w in text.lower().split() if w not in self.vocabulary]
            if unknown:
                raise UserError(f"unknown word {unknown[0]!r} for this model ({self.path}); it knows only: "
                                f"{' '.join(sorted(self.vocabulary))}")
        return text


def resolve_model_path(model: str | os.PathLike) -> Path:
    """A relative path that is not under the working directory is taken from the repository root
    (so configs can say ``assets/shapes-flux`` and work from anywhere)."""
    path = Path(model)
    if not path.exists() and not path.is_absolute() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


def read_model_info(model: str | os.PathLike) -> ModelInfo:
    path = resolve_model_path(model)
    if not path.exists():
        raise UserError(f"model directory not found: {path}")
    if not (path / "model_index.json").exists():
        raise UserError(f"{path} is not a diffusers pipeline directory (no model_index.json)")
    info = ModelInfo(path=str(path))
    defaults = path / "call_defaults.json"
    if defaults.exists():
        info.call_defaults = json.loads(defaults.read_text())
        if not isinstance(info.call_defaults, dict):
            raise UserError(f"{defaults} must hold a flat JSON object of keyword arguments")
    world = path / "world.json"
    if world.exists():
        meta = json.loads(world.read_text())
        info.vocabulary = frozenset(meta["vocabulary"])
        info.height, info.width = meta.get("height", 64), meta.get("width", 64)
    return info


def load_pipeline(model: str | os.PathLike = DEFAULT_MODEL, device: str | None = None,
                  dtype: torch.dtype = torch.float32):
    """Load a FluxPipeline or StableDiffusion3Pipeline from a local directory, offline-safe;
    returns (pipe, info)."""
    info = read_model_info(model)
    pipe = pipeline_class(info.path).from_pretrained(info.path, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.requires_grad_(False)  # inference by default; trainers enable what they train
    pipe.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return pipe, info


def pipeline_class(path: str | os.PathLike):
    """The diffusers pipeline class named in model_index.json, if it is one RATS Studio drives."""
    import diffusers

    from rats_app.families import SUPPORTED_PIPELINES

    name = json.loads((Path(path) / "model_index.json").read_text()).get("_class_name", "")
    if name not in SUPPORTED_PIPELINES:
        raise UserError(f"{path} holds a {name or 'unnamed'} pipeline; RATS Studio drives "
                        f"{' and '.join(SUPPORTED_PIPELINES)} models")
    return getattr(diffusers, name)


def resolve_lora(path: str | os.PathLike) -> Path:
    """A LoRA directory (holding pytorch_lora_weights.safetensors) or a .safetensors file."""
    p = Path(path)
    if p.is_dir():
        p = p / LORA_WEIGHT_NAME
        if not p.exists():
            raise UserError(f"no {LORA_WEIGHT_NAME} in LoRA directory {path}")
    elif not p.exists():
        raise UserError(f"LoRA not found: {path}")
    if p.suffix != ".safetensors":
        raise UserError(f"LoRA must be a .safetensors file (never a pickle): {p}")
    return p


def load_lora(pipe, path: str | os.PathLike, adapter_name: str = "default") -> None:
    """Load a diffusers-format LoRA into the pipeline; a mismatch names the file."""
    file = resolve_lora(path)
    try:
        pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=adapter_name)
    except Exception as exc:  # peft / diffusers raise many types for a LoRA that does not fit
        raise UserError(f"LoRA {file} does not fit this model: {str(exc).splitlines()[0]}") from exc


def check_nfe(nfe: int, name: str = "nfe") -> int:
    if isinstance(nfe, bool) or int(nfe) != nfe:
        raise UserError(f"{name} must be an integer, got {nfe!r}")
    if not 1 <= int(nfe) <= MAX_NFE:
        raise UserError(f"{name} must be between 1 and {MAX_NFE}, got {nfe}")
    return int(nfe)
