"""Model presets (not method presets, which are TrainConfig.preset): where a model's weights come from
and the settings RATS uses for it.

| preset | weights | resolution | teacher | student LoRA targets |
|---|---|---|---|---|
| flux.1-dev | RATS_FLUX_DEV or hub black-forest-labs/FLUX.1-dev (gated: accept the licence, log in) | 1024 | 50 steps, guidance 3.5 | attention + text stream + feed-forward |
| flux.1-schnell | RATS_FLUX_SCHNELL or hub black-forest-labs/FLUX.1-schnell | 1024 | 8 steps, no guidance | attention + text stream + feed-forward |
| sd3.5-medium | RATS_SD35_MEDIUM or hub stabilityai/stable-diffusion-3.5-medium (gated) | 1024 | 40 steps, CFG 4.5 | attention + text stream + feed-forward |
| sd3.5-large | RATS_SD35_LARGE or hub stabilityai/stable-diffusion-3.5-large (gated) | 1024 | 28 steps, CFG 3.5 | attention + text stream + feed-forward |
| wan2.1-t2v-1.3b | RATS_WAN_1_3B or hub Wan-AI/Wan2.1-T2V-1.3B-Diffusers | 480x832, 81 frames | 50 steps, CFG 5, UniPC flow_shift 3 | self- and cross-attention + feed-forward |
| wan2.1-t2v-14b | RATS_WAN_14B or hub Wan-AI/Wan2.1-T2V-14B-Diffusers | 480x832, 81 frames | 50 steps, CFG 5, UniPC flow_shift 3 | self- and cross-attention + feed-forward |
| local directory | any supported pipeline directory given as the model | from the model | 50 steps | attention |

The embedded worlds' models (Shapes World, Moving Shapes) are not presets: they come from the
world registry (rats_app.worlds) and are always on the machine.

FLUX-dev's guidance is a distilled *input*: teacher and student both take it (one pass per step).
SD3's is classifier-free guidance: the teacher makes two passes per step, and the RATS student
is trained and run at ``guidance_scale=1`` — one pass — so it learns to need no CFG. Wan's CFG
stays on for the student (two passes), so a Wan RATS LoRA runs with the model's own call settings;
it trains on the flow-matching Euler grid of the model's shift and runs with that solver
(recorded in its rats.json), while teacher and baseline use the checkpoint's UniPC.

A preset whose weights are missing says which id or path it looked for and how to supply it —
never a silent download attempt: hub ids are used only when already in the local cache, or when
the hub is reachable and HF_HUB_OFFLINE is not set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rats_app.errors import UserError

ATTENTION = ["to_q", "to_k", "to_v", "to_out.0"]
# FLUX's text stream and feed-forward layers: the default targets miss them (shared notes).
FLUX_FULL = ATTENTION + ["add_q_proj", "add_k_proj", "add_v_proj", "to_add_out", "ff.net.0.proj", "ff.net.2",
                         "ff_context.net.0.proj", "ff_context.net.2", "proj_mlp", "proj_out"]
# SD3's joint blocks: image and text attention projections and both feed-forward paths.
SD3_FULL = ATTENTION + ["add_q_proj", "add_k_proj", "add_v_proj", "to_add_out", "ff.net.0.proj", "ff.net.2",
                        "ff_context.net.0.proj", "ff_context.net.2"]
# Wan's blocks: self- (attn1) and cross-attention (attn2) projections match ATTENTION; plus the feed-forward.
WAN_FULL = ATTENTION + ["ffn.net.0.proj", "ffn.net.2"]


@dataclass(frozen=True)
class ModelPreset:
    name: str
    source: str                  # local path or hub id
    env: str | None              # environment variable naming a local copy
    resolution: int
    teacher_steps: int
    guidance: float | None       # FLUX-dev's distilled guidance value, SD3's CFG scale; None: no guidance
    lora_targets: list[str] = field(default_factory=lambda: list(ATTENTION))
    note: str = ""
    width: int | None = None     # None: square (resolution x resolution)
    frames: int | None = None    # video presets: frames per clip

    def call_kwargs(self) -> dict:
        kwargs = {"height": self.resolution, "width": self.width or self.resolution}
        if self.frames is not None:
            kwargs["num_frames"] = self.frames
        if self.guidance is not None:
            kwargs["guidance_scale"] = self.guidance
        return kwargs


MODEL_PRESETS: dict[str, ModelPreset] = {
    "flux.1-dev": ModelPreset("flux.1-dev", "black-forest-labs/FLUX.1-dev", "RATS_FLUX_DEV", 1024, 50, 3.5,
                              FLUX_FULL, note="gated on the hub: accept the licence and `huggingface-cli login`"),
    "flux.1-schnell": ModelPreset("flux.1-schnell", "black-forest-labs/FLUX.1-schnell", "RATS_FLUX_SCHNELL", 1024,
                                  8, None, FLUX_FULL, note="already a 1-4 step model; its teacher runs 8 steps"),
    "sd3.5-medium": ModelPreset("sd3.5-medium", "stabilityai/stable-diffusion-3.5-medium", "RATS_SD35_MEDIUM", 1024,
                                40, 4.5, SD3_FULL, note="gated on the hub: accept the licence and `huggingface-cli login`"),
    "wan2.1-t2v-1.3b": ModelPreset("wan2.1-t2v-1.3b", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "RATS_WAN_1_3B", 480, 50,
                                   5.0, WAN_FULL, note="about 28 GB of weights in float32 (UMT5-XXL included)",
                                   width=832, frames=81),
    "wan2.1-t2v-14b": ModelPreset("wan2.1-t2v-14b", "Wan-AI/Wan2.1-T2V-14B-Diffusers", "RATS_WAN_14B", 480, 50, 5.0,
                                  WAN_FULL, note="train it sharded: docs/real-models.md (FSDP)", width=832, frames=81),
    "sd3.5-large": ModelPreset("sd3.5-large", "stabilityai/stable-diffusion-3.5-large", "RATS_SD35_LARGE", 1024,
                               28, 3.5, SD3_FULL, note="gated on the hub: accept the licence and `huggingface-cli login`"),
}


def preset_for(model: str) -> ModelPreset | None:
    """The preset a model argument names, by preset name or by hub id (None: neither)."""
    return MODEL_PRESETS.get(model) or next((p for p in MODEL_PRESETS.values() if p.source == model), None)


def locate(preset: ModelPreset) -> Path:
    """The local directory holding the preset's weights, or UserError saying how to supply them."""
    candidates = [os.environ.get(preset.env)] if preset.env and os.environ.get(preset.env) else []
    candidates.append(preset.source)
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if (path / "model_index.json").exists():
            return path
    if preset.env is None:
        raise UserError(f"{preset.name}: no diffusers pipeline (model_index.json) at {preset.source}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(preset.source, local_files_only=True))
    except LocalEntryNotFoundError:  # not in the local cache
        pass
    hint = (f"{preset.name}: weights not found. Set {preset.env} to a local diffusers directory, or download "
            f"{preset.source} (huggingface-cli download {preset.source})")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise UserError(hint + "; HF_HUB_OFFLINE=1 is set, so nothing is downloaded")
    raise UserError(hint + (f"; {preset.note}" if preset.note else ""))


def availability() -> dict[str, str]:
    """preset name -> 'available: PATH' or 'unavailable: why' (no download is attempted)."""
    status = {}
    for name, preset in MODEL_PRESETS.items():
        try:
            status[name] = f"available: {locate(preset)}"
        except UserError as exc:
            status[name] = f"unavailable: {exc}"
    return status
