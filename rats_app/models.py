"""Loading text-to-image and text-to-video models and LoRAs, with the checks users hit first.

A model is a diffusers pipeline directory of a family RATS Studio drives (``rats_app.families``)
plus two optional files of ours: ``call_defaults.json`` (keyword arguments that differ from the
pipeline's ``__call__`` defaults) and ``world.json`` (the embedded world it belongs to: a closed
prompt vocabulary and its canvas).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rats_app.errors import UserError
from rats_app.families import SUPPORTED_PIPELINES, ModelFamily, Size, family_class
from rats_app.worlds import REPO_ROOT, World, default_world, get_world

DEFAULT_MODEL = default_world().model_dir
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
MAX_NFE = 1000
MAX_SEED = 2**64 - 1  # torch generators take any unsigned 64-bit seed


@dataclass
class ModelInfo:
    """What we know about a model before loading its weights."""

    path: str
    call_defaults: dict = field(default_factory=dict)
    vocabulary: frozenset[str] | None = None   # None: open vocabulary
    height: int | None = None                  # None: the pipeline's default
    width: int | None = None
    frames: int | None = None                  # clips only
    fps: int = 16                              # clips only: playback rate of written videos
    world_id: str | None = None
    pipeline_class: str = ""                   # as model_index.json names it

    @property
    def family(self) -> type[ModelFamily]:
        return family_class(self.pipeline_class)

    @property
    def world(self) -> World | None:
        return get_world(self.world_id) if self.world_id else None

    def size(self, family: ModelFamily) -> Size:
        """The canvas: world.json's, else call_defaults.json's, else the pipeline's default."""
        default = family.default_size()
        return Size(self.height or self.call_defaults.get("height") or default.height,
                    self.width or self.call_defaults.get("width") or default.width,
                    self.frames or self.call_defaults.get("num_frames") or default.frames)

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

    def shipped_lora(self) -> Path | None:
        """The RATS LoRA shipped with the model's world, if there is one."""
        world = self.world
        if world is None or not (world.lora_dir / LORA_WEIGHT_NAME).exists():
            return None
        if resolve_model_path(world.model_dir).resolve() != Path(self.path).resolve():
            return None  # another model of the same world: the shipped LoRA is not for it
        return world.lora_dir


def resolve_model_path(model: str | os.PathLike) -> Path:
    """A relative path that is not under the working directory is taken from the repository root
    (so configs can say ``assets/shapes-flux`` and work from anywhere); a model preset's name or hub
    id (``wan2.1-t2v-1.3b``, ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``) is found as the app finds it —
    its environment variable, then the local Hugging Face cache — or names what is missing."""
    from rats_app.model_presets import locate, preset_for

    path = Path(model)
    if path.exists():
        return path
    if not path.is_absolute() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    preset = preset_for(str(model))
    return locate(preset) if preset is not None else path


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({type(exc).__name__})") from None


def read_model_info(model: str | os.PathLike) -> ModelInfo:
    path = resolve_model_path(model)
    if not path.exists():
        raise UserError(f"model directory not found: {path}")
    if not (path / "model_index.json").exists():
        raise UserError(f"{path} is not a diffusers pipeline directory (no model_index.json)")
    info = ModelInfo(path=str(path), pipeline_class=pipeline_class_name(path))
    defaults = path / "call_defaults.json"
    if defaults.exists():
        info.call_defaults = _read_json(defaults)
        if not isinstance(info.call_defaults, dict):
            raise UserError(f"{defaults} must hold a flat JSON object of keyword arguments")
    world = path / "world.json"
    if world.exists():
        meta = _read_json(world)
        info.vocabulary = frozenset(meta["vocabulary"]) if "vocabulary" in meta else None
        info.height, info.width = meta.get("height", 64), meta.get("width", 64)
        info.frames, info.world_id, info.fps = meta.get("frames"), meta.get("world"), meta.get("fps", 16)
    return info


def world_train_defaults(model: str | os.PathLike) -> dict:
    """The training defaults of the world a model belongs to ({} for another model, or one that is not
    there: the trainer names what is missing when it loads it)."""
    try:
        world = read_model_info(model).world
    except UserError:
        return {}
    return world.train_defaults() if world is not None else {}


def pipeline_class_name(path: str | os.PathLike) -> str:
    """The diffusers pipeline class named in model_index.json, if it is one RATS Studio drives."""
    name = _read_json(Path(path) / "model_index.json").get("_class_name", "")
    if name not in SUPPORTED_PIPELINES:
        raise UserError(f"{path} holds a {name or 'unnamed'} pipeline; RATS Studio drives "
                        f"{', '.join(SUPPORTED_PIPELINES)} models")
    return name


def load_pipeline(model: str | os.PathLike = DEFAULT_MODEL, device: str | None = None,
                  dtype: torch.dtype = torch.float32):
    """Load a supported pipeline from a local directory, offline-safe; returns (pipe, info)."""
    import diffusers

    info = read_model_info(model)
    pipe = getattr(diffusers, info.pipeline_class).from_pretrained(info.path, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.requires_grad_(False)  # inference by default; trainers enable what they train
    pipe.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return pipe, info


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


def lora_record(path: str | os.PathLike) -> dict:
    """The student record a RATS run writes beside its LoRA (rats.json); {} for other LoRAs."""
    file = resolve_lora(path)
    record = file.parent / "rats.json"
    if not record.exists():
        return {}
    data = _read_json(record)
    return data if isinstance(data, dict) else {}


GUIDANCE_KEYS = ("guidance_scale", "true_cfg_scale", "negative_prompt")
BUDGET_KEYS = (*GUIDANCE_KEYS, "sigmas")  # what a RATS LoRA's call_by_nfe may set for one budget


def trained_call(record: dict, nfe: int | None = None) -> dict:
    """The call keys a RATS LoRA samples with at ``nfe`` steps, from its record (``lora_record``): the
    guidance its run wrote in ``call`` (scales and negative prompt, e.g. a CFG scale of its own), and
    what its ``call_by_nfe`` sets for that budget (a scale, a step grid ``sigmas``); {} for other
    LoRAs, which run with the model's."""
    call = record.get("call")
    keys = {k: call[k] for k in GUIDANCE_KEYS if k in call} if isinstance(call, dict) else {}
    by_nfe = record.get("call_by_nfe")
    at_nfe = by_nfe.get(str(nfe)) if isinstance(by_nfe, dict) and nfe is not None else None
    return {**keys, **{k: at_nfe[k] for k in BUDGET_KEYS if k in at_nfe}} if isinstance(at_nfe, dict) else keys


def trained_nfes(path: str | os.PathLike) -> list[int]:
    """The student step counts a RATS LoRA was trained for ([] for another LoRA: nothing is known).
    Records written before student_steps_choices existed hold student_steps alone."""
    record = lora_record(path)
    if not record:  # a run from before rats.json: its config.json has the same keys
        config = resolve_lora(path).parent / "config.json"
        record = _read_json(config) if config.exists() else {}
        record = record if isinstance(record, dict) else {}
    nfes = record.get("trained_nfes") or record.get("student_steps_choices") or [record.get("student_steps")]
    return sorted({int(n) for n in nfes if isinstance(n, int) and not isinstance(n, bool)})


def nfe_note(path: str | os.PathLike | None, nfe: int) -> str:
    """One line saying whether the RATS LoRA was trained for this budget (the app shows it under its slider)."""
    if not path:
        return "No RATS LoRA selected: only the baseline and the teacher are made."
    nfes = trained_nfes(path)
    if not nfes:
        return "This LoRA has no RATS record: the budgets it was trained for are unknown."
    listed = ", ".join(map(str, nfes))
    if nfe not in nfes:
        return (f"RATS LoRA trained for NFE {listed} only: at NFE {nfe} it runs outside its training, and may be "
                "no better than the baseline.")
    record = lora_record(path)
    every_budget = trained_call(record)
    own = {k: v for k, v in trained_call(record, nfe).items() if v != every_budget.get(k)}
    settings = ", ".join(f"{k}={v}" for k, v in own.items() if k != "negative_prompt")
    return f"RATS LoRA trained for NFE {listed}: NFE {nfe} is one of them" + (
        f", sampled with {settings} (its record's setting for this budget)." if settings else ".")


def check_lora(pipe, path: str | os.PathLike) -> Path:
    """Everything that can be wrong with a LoRA for this pipeline, found from the file alone (the
    pipeline is only read): a RATS LoRA for another pipeline class, then rats_app.lora.check_lora_file.
    Returns the weights file."""
    from rats_app.lora import check_lora_file

    file = resolve_lora(path)
    record = lora_record(file)
    if record.get("pipeline") and record["pipeline"] != type(pipe).__name__:
        raise UserError(f"LoRA {file} does not fit this model: it is a RATS LoRA for a {record['pipeline']} "
                        f"({record.get('media', 'image')}) model, and this is a {type(pipe).__name__}")
    try:
        check_lora_file(pipe, file)
    except UserError as exc:
        raise UserError(f"LoRA {file} does not fit this model: {exc}") from None
    return file


def load_lora(pipe, path: str | os.PathLike, adapter_name: str = "default") -> None:
    """Check a LoRA (``check_lora``), then load it as a named adapter: a LoRA that does not fit never
    reaches the pipeline, and a load that fails anyway leaves no half-loaded adapter behind."""
    file = check_lora(pipe, path)
    try:
        pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=adapter_name)
    except Exception as exc:  # peft / diffusers raise many types for a LoRA that does not fit
        if adapter_name in getattr(pipe.transformer, "peft_config", {}):
            pipe.delete_adapters(adapter_name)
        raise UserError(f"LoRA {file} does not fit this model: {str(exc).splitlines()[0]}") from None


def check_seed(seed, count: int = 1, name: str = "seed") -> int:
    """A seed as an exact integer such that it and the ``count - 1`` seeds after it (output i uses
    seed + i) fit torch's unsigned 64 bits: from an int, or from text (never via a float, which
    rounds seeds above 2**53)."""
    if isinstance(seed, bool):
        raise UserError(f"{name} must be an integer, got {seed!r}")
    if isinstance(seed, float):
        if not math.isfinite(seed) or seed != int(seed):
            raise UserError(f"{name} must be a whole number, got {seed!r}")
        if abs(seed) > 2**53:
            raise UserError(f"{name} {seed!r} arrived as a float, which cannot hold it exactly; send it as text")
        seed = int(seed)
    if isinstance(seed, str):
        text = seed.strip()
        if not text.lstrip("+-").isdigit():
            raise UserError(f"{name} must be a whole number, got {seed!r}")
        seed = int(text)
    if not isinstance(seed, int):
        raise UserError(f"{name} must be an integer, got {seed!r}")
    if not 0 <= seed <= MAX_SEED - (count - 1):
        top = "2**64 - 1" if count == 1 else f"2**64 - {count} (output i uses seed + i)"
        raise UserError(f"{name} must be between 0 and {top}, got {seed}")
    return seed


def check_nfe(nfe: int, name: str = "nfe") -> int:
    if isinstance(nfe, bool) or int(nfe) != nfe:
        raise UserError(f"{name} must be an integer, got {nfe!r}")
    if not 1 <= int(nfe) <= MAX_NFE:
        raise UserError(f"{name} must be between 1 and {MAX_NFE}, got {nfe}")
    return int(nfe)
