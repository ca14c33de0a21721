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


# ---------------------------------------------------------------------------- checking a LoRA file
MAX_LORA_BYTES = int(os.environ.get("RATS_MAX_LORA_MB", "2048")) * 2**20


def _targets_from_metadata(file: Path) -> list[str] | None:
    """The target_modules a diffusers-saved LoRA declares in its adapter metadata (None: not declared)."""
    import json

    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as f:
        meta = (f.metadata() or {}).get("lora_adapter_metadata")
    try:
        targets = json.loads(meta).get("transformer.target_modules") if meta else None
    except (ValueError, AttributeError):
        return None
    return list(targets) if isinstance(targets, (list, tuple)) else None


def _matches(module: str, targets: list[str]) -> bool:
    """peft's rule for a list of target names: the module name is one, or ends with '.' + one."""
    return any(module == t or module.endswith("." + t) for t in targets)


def check_lora_file(pipe, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Everything that can be wrong with a LoRA for this pipeline, found before it touches the
    pipeline: size, format (through diffusers' own converters), keys that name no layer, shapes,
    NaN or infinite values, halves of a pair, and layers its own config targets but it lacks.
    Returns its tensors in diffusers naming; raises UserError naming the first problem."""
    from rats_app.errors import UserError
    from rats_app.models import resolve_lora

    file = resolve_lora(path)
    if file.stat().st_size > MAX_LORA_BYTES:
        raise UserError(f"{file.name} is {file.stat().st_size / 2**20:.0f} MB, over the {MAX_LORA_BYTES >> 20} MB "
                        "limit for a LoRA (RATS_MAX_LORA_MB)")
    try:
        state = type(pipe).lora_state_dict(str(file.parent), weight_name=file.name)
    except Exception as exc:  # not safetensors, truncated, or a layout no converter knows
        raise UserError(f"{file.name} is not a LoRA this model's loader can read ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else 'no detail'})") from None
    state = state[0] if isinstance(state, tuple) else state
    if not state:
        raise UserError(f"{file.name} holds no tensors")
    layers = dict(pipe.transformer.named_modules())
    ranks: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        module, _, part = key.removeprefix("transformer.").rpartition(".lora_")
        if not key.startswith("transformer.") or part not in ("A.weight", "B.weight"):
            raise UserError(f"{file.name}: {key} is not a transformer LoRA weight (lora_A / lora_B)")
        layer = layers.get(module)
        if layer is None or not hasattr(layer, "in_features"):
            raise UserError(f"{file.name}: {key} names no linear layer of this model's "
                            f"{type(pipe.transformer).__name__} — a LoRA for another model?")
        if not torch.isfinite(tensor).all():
            raise UserError(f"{file.name}: {key} holds NaN or infinite values")
        ranks.setdefault(module, {})[part[0]] = tensor
    for module, pair in ranks.items():
        if set(pair) != {"A", "B"}:
            raise UserError(f"{file.name}: {module} has lora_{next(iter(pair))} without its other half")
        layer, a, b = layers[module], pair["A"], pair["B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != layer.in_features or b.shape[0] != layer.out_features \
                or a.shape[0] != b.shape[1]:
            raise UserError(f"{file.name}: {module} has shapes A {tuple(a.shape)}, B {tuple(b.shape)}; this model's "
                            f"layer is {layer.in_features} -> {layer.out_features} — a LoRA for another model?")
    targets = _targets_from_metadata(file)
    if targets:
        missing = [m for m, layer in layers.items() if hasattr(layer, "in_features") and _matches(m, targets)
                   and m not in ranks and ".lora_" not in m and not m.endswith((".base_layer",))]
        if missing:
            raise UserError(f"{file.name} targets {', '.join(targets)} but lacks {len(missing)} of those layers "
                            f"(e.g. {missing[0]}): a truncated LoRA")
    return state
