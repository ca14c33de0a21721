"""Export a diffusers-format LoRA for ComfyUI and kohya-style tools.

    python -m rats_app.lora_export --lora runs/my-rats --out my-rats-comfyui.safetensors [--format auto]

diffusers: ``transformer.<module>.lora_A.weight`` / ``.lora_B.weight`` (scale from the adapter
metadata). Two targets, chosen by ``--format`` (``auto``: ``wan`` for a Wan LoRA, else ``kohya``):

- ``kohya``: ``lora_transformer_<module with dots as underscores>.lora_down.weight`` /
  ``.lora_up.weight`` plus an ``.alpha`` scalar per module, the naming ComfyUI reads for FLUX
  LoRAs (OneTrainer style). One-to-one and invertible.
- ``wan``: the original Wan2.1 layout ComfyUI and the Wan repository read:
  ``diffusion_model.blocks.<i>.self_attn.q.lora_down.weight`` (``attn1`` -> ``self_attn``, ``attn2``
  -> ``cross_attn``, ``to_q/k/v/out.0`` -> ``q/k/v/o``, ``ffn.net.0.proj`` / ``ffn.net.2`` ->
  ``ffn.0`` / ``ffn.2``) plus ``.alpha``; diffusers' own converter reads it back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from rats_app.errors import UserError, run_cli
from rats_app.io import atomic_write
from rats_app.models import resolve_lora

PREFIX = "lora_transformer_"


def diffusers_to_kohya(state: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    out = {}
    for key, tensor in state.items():
        if not key.startswith("transformer.") or not key.endswith((".lora_A.weight", ".lora_B.weight")):
            raise UserError(f"not a diffusers transformer LoRA key: {key}")
        module, kind = key[len("transformer."):].rsplit(".lora_", 1)
        name = PREFIX + module.replace(".", "_")
        out[f"{name}.{'lora_down' if kind.startswith('A') else 'lora_up'}.weight"] = tensor
        out[f"{name}.alpha"] = torch.tensor(float(alpha))
    return out


WAN_MODULES = {"attn1": "self_attn", "attn2": "cross_attn"}
WAN_PROJECTIONS = {"to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "o"}
WAN_FFN = {"ffn.net.0.proj": "ffn.0", "ffn.net.2": "ffn.2"}


def _wan_module(module: str) -> str:
    """``blocks.3.attn1.to_q`` -> ``blocks.3.self_attn.q``; ``blocks.3.ffn.net.2`` -> ``blocks.3.ffn.2``."""
    block, _, rest = module.partition(".")
    index, _, rest = rest.partition(".")
    if block != "blocks":
        raise UserError(f"{module} is not a Wan transformer block module (only blocks.* export to the Wan layout)")
    if rest in WAN_FFN:
        return f"blocks.{index}.{WAN_FFN[rest]}"
    attention, _, projection = rest.partition(".")
    if attention not in WAN_MODULES or projection not in WAN_PROJECTIONS:
        raise UserError(f"{module} has no counterpart in the original Wan layout")
    return f"blocks.{index}.{WAN_MODULES[attention]}.{WAN_PROJECTIONS[projection]}"


def diffusers_to_wan(state: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    out = {}
    for key, tensor in state.items():
        if not key.startswith("transformer.") or not key.endswith((".lora_A.weight", ".lora_B.weight")):
            raise UserError(f"not a diffusers transformer LoRA key: {key}")
        module, kind = key[len("transformer."):].rsplit(".lora_", 1)
        name = "diffusion_model." + _wan_module(module)
        out[f"{name}.{'lora_down' if kind.startswith('A') else 'lora_up'}.weight"] = tensor
        out[f"{name}.alpha"] = torch.tensor(float(alpha))
    return out


def is_wan_lora(state: dict[str, torch.Tensor]) -> bool:
    return any(".attn1." in k or ".ffn.net." in k for k in state) and all(k.startswith("transformer.blocks.")
                                                                          for k in state)


def kohya_to_diffusers(state: dict[str, torch.Tensor], module_names: list[str]) -> dict[str, torch.Tensor]:
    """Inverse mapping; underscores are ambiguous, so the model's module names disambiguate."""
    by_flat = {PREFIX + m.replace(".", "_"): m for m in module_names}
    out = {}
    for key, tensor in state.items():
        name, kind = key.split(".", 1)
        if kind == "alpha":
            continue
        if name not in by_flat:
            raise UserError(f"kohya key {key} matches no module of this model")
        suffix = "lora_A.weight" if kind == "lora_down.weight" else "lora_B.weight"
        out[f"transformer.{by_flat[name]}.{suffix}"] = tensor
    return out


def read_lora(path: str | Path) -> tuple[dict[str, torch.Tensor], float | None]:
    """Tensors and lora_alpha (from diffusers' adapter metadata) of a LoRA file or directory."""
    file = resolve_lora(path)
    with safe_open(str(file), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata() or {}
    alpha = None
    for value in meta.values():
        try:
            data = json.loads(value)
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict):  # diffusers prefixes the adapter config keys with "transformer."
            for key in ("lora_alpha", "transformer.lora_alpha"):
                if key in data:
                    alpha = float(data[key])
    return state, alpha


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rats_app.lora_export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lora", required=True, help="diffusers LoRA directory or .safetensors file")
    parser.add_argument("--out", required=True, help="output .safetensors (kohya / ComfyUI keys)")
    parser.add_argument("--alpha", type=float, default=None, help="override lora_alpha (default: from metadata)")
    parser.add_argument("--format", choices=["auto", "kohya", "wan"], default="auto",
                        help="key layout: kohya (FLUX/SD3 in ComfyUI), wan (original Wan2.1); auto picks by the LoRA")
    args = parser.parse_args(argv)

    def work() -> str:
        state, alpha = read_lora(args.lora)
        alpha = args.alpha if args.alpha is not None else alpha
        if alpha is None:
            raise UserError("the LoRA has no lora_alpha metadata; pass --alpha (usually the rank)")
        if not args.out.endswith(".safetensors"):
            raise UserError(f"--out must end in .safetensors, got {args.out}")
        layout = args.format if args.format != "auto" else ("wan" if is_wan_lora(state) else "kohya")
        converted = (diffusers_to_wan if layout == "wan" else diffusers_to_kohya)(state, alpha)
        atomic_write(args.out, lambda tmp: save_file(converted, tmp, metadata={"format": "pt"}))
        return f"wrote {len(converted)} tensors ({layout} layout) to {args.out}"
    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
