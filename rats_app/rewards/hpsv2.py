"""HPSv2 (v2.0 and v2.1): Human Preference Score, an open_clip ViT-H-14 fine-tune.

Score = 100 * cos(image, text) — the HPS the paper reports (hpsv2.score returns it / 100).
Weights: the file named by RATS_HPSV2_CHECKPOINT (or RATS_HPSV2_1_CHECKPOINT for v2.1), else the
copy the hpsv2 package downloaded into its cache (``hpsv2.utils.root_path``, ~/.cache/hpsv2), else
``HPS_v2_compressed.pt`` / ``HPS_v2.1_compressed.pt`` from the hub repo ``xswu/HPSv2``. The
checkpoint is read with ``torch.load(weights_only=True)`` (or safetensors) and converted to a
transformers CLIP, so scoring needs neither torchvision nor the LAION download that
``hpsv2.score`` makes first. Tokenizer: RATS_HPSV2_TOKENIZER (a CLIP tokenizer directory or hub id,
default ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``; the hpsv2 wheel does not ship open_clip's vocab).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rats_app.errors import RewardUnavailable
from rats_app.rewards.base import CLIP_NORMALIZATION
from rats_app.rewards.clip_preference import ClipPreferenceReward
from rats_app.rewards.open_clip_convert import convert_open_clip
from rats_app.rewards.sources import resolve_dir, resolve_file

HUB_REPO = "xswu/HPSv2"
VERSIONS = {"v2.0": ("HPS_v2_compressed.pt", "RATS_HPSV2_CHECKPOINT"),
            "v2.1": ("HPS_v2.1_compressed.pt", "RATS_HPSV2_1_CHECKPOINT")}
DEFAULT_TOKENIZER = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


def hpsv2_cache_dir() -> Path:
    """Where the hpsv2 package keeps downloaded checkpoints (its ``root_path``), if it imports."""
    try:
        from hpsv2.utils import root_path  # the package, where it works

        return Path(root_path)
    except Exception:  # not installed, or it cannot import here (it needs torchvision)
        return Path(os.environ.get("HPS_ROOT", Path.home() / ".cache" / "hpsv2"))


def read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """State dict from a .safetensors file or a torch checkpoint (weights only, never a pickle)."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RewardUnavailable(f"cannot read checkpoint {path}: {str(exc).splitlines()[0][:200]}") from None
    if isinstance(data, dict) and "state_dict" in data:
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise RewardUnavailable(f"checkpoint {path} holds no state dict of tensors")
    return data


def load_hpsv2(version: str = "v2.1", device: str | None = None, dtype: torch.dtype = torch.float32,
               checkpoint: str | None = None, tokenizer: str | None = None) -> ClipPreferenceReward:
    if version not in VERSIONS:
        raise RewardUnavailable(f"unknown HPSv2 version {version!r}; expected one of {sorted(VERSIONS)}")
    filename, env = VERSIONS[version]
    name = "hpsv2" if version == "v2.0" else "hpsv2.1"
    requested = checkpoint or os.environ.get(env)
    cached = hpsv2_cache_dir() / filename  # a checkpoint hpsv2.score() downloaded earlier
    if requested is None and cached.is_file():
        requested = str(cached)
    path = resolve_file(name, requested or filename, env, hub_repo=HUB_REPO)
    tokenizer_dir = resolve_dir(name, tokenizer or os.environ.get("RATS_HPSV2_TOKENIZER", DEFAULT_TOKENIZER),
                                "RATS_HPSV2_TOKENIZER")
    try:
        model = convert_open_clip(read_checkpoint(path), source=path)
    except ValueError as exc:
        raise RewardUnavailable(f"{name}: {exc}") from None
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tokenizer_dir)
    model.config.text_config.eos_token_id = tok.eos_token_id
    model.text_model.eos_token_id = tok.eos_token_id
    model.to(device=device or ("cuda" if torch.cuda.is_available() else "cpu"), dtype=dtype)
    normalization = CLIP_NORMALIZATION.__class__(model.config.vision_config.image_size, CLIP_NORMALIZATION.mean,
                                                 CLIP_NORMALIZATION.std)
    return ClipPreferenceReward(model, tok, normalization, name=name, use_logit_scale=False)
