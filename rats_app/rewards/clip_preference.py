"""CLIP-style preference rewards (PickScore's formula): logit_scale * cos(image, text).

Serves PickScore (a CLIP-H fine-tuned on Pick-a-Pic), plain CLIP score, and the Shapes World
reward (a tiny CLIP trained the same way on world preference pairs).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import AutoTokenizer, CLIPModel

from rats_app.errors import RewardUnavailable
from rats_app.rewards.base import ImageNormalization, Reward, preprocess


class ClipPreferenceReward(Reward):
    def __init__(self, model: CLIPModel, tokenizer, normalization: ImageNormalization,
                 name: str = "clip", use_logit_scale: bool = True, max_length: int | None = None,
                 clamp_at_zero: bool = False):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.normalization = normalization
        self.name = name
        self.use_logit_scale = use_logit_scale
        self.clamp_at_zero = clamp_at_zero  # CLIP score's convention: 100 * max(cos, 0)
        self.max_length = max_length or min(tokenizer.model_max_length, model.config.text_config.max_position_embeddings)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def embed_text(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(self.device)
        features = self.model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
        features = getattr(features, "pooler_output", features)
        return torch.nn.functional.normalize(features.float(), dim=-1)

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        pixels = preprocess(images.to(self.device, torch.float32), self.normalization)
        features = self.model.get_image_features(pixel_values=pixels.to(self.model.dtype))
        features = getattr(features, "pooler_output", features)
        return torch.nn.functional.normalize(features.float(), dim=-1)

    def _score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        cosine = (self.embed_images(images) * self.embed_text(prompts)).sum(-1)
        if self.clamp_at_zero:
            cosine = cosine.clamp(min=0.0)
        scale = self.model.logit_scale.exp().float() if self.use_logit_scale else 100.0
        return scale * cosine


def load_clip_preference(path: str | os.PathLike, name: str, normalization: ImageNormalization | None = None,
                         device: str | None = None, dtype: torch.dtype = torch.float32,
                         use_logit_scale: bool = True, clamp_at_zero: bool = False,
                         tokenizer_path: str | os.PathLike | None = None) -> ClipPreferenceReward:
    """Load a CLIPModel + tokenizer directory (transformers layout, safetensors weights only)."""
    p = Path(path)
    if not (p / "config.json").exists():
        raise RewardUnavailable(f"{name}: no CLIP model at {p} (expected config.json and model.safetensors)")
    try:
        config = json.loads((p / "config.json").read_text())
    except ValueError:
        raise RewardUnavailable(f"{name}: {p / 'config.json'} is not valid JSON") from None
    if config.get("model_type") != "clip":
        raise RewardUnavailable(f"{name}: {p} holds a {config.get('model_type')!r} model, not a CLIP model")
    if not list(p.glob("*.safetensors")):
        raise RewardUnavailable(f"{name}: {p} has no .safetensors weights (pickled weights are never loaded)")
    try:
        model = CLIPModel.from_pretrained(p, dtype=dtype, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or p)
    except Exception as exc:
        raise RewardUnavailable(f"{name}: could not load {p}: {str(exc).splitlines()[0][:300]}") from None
    if normalization is None:
        normalization = ImageNormalization(model.config.vision_config.image_size, *_normalization_from(p))
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return ClipPreferenceReward(model, tokenizer, normalization, name=name, use_logit_scale=use_logit_scale,
                                clamp_at_zero=clamp_at_zero)


def _normalization_from(path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std from a preprocessor_config.json when present, else CLIP's."""
    from rats_app.rewards.base import CLIP_NORMALIZATION

    config = path / "preprocessor_config.json"
    if config.exists():
        data = json.loads(config.read_text())
        return tuple(data.get("image_mean", CLIP_NORMALIZATION.mean)), tuple(data.get("image_std", CLIP_NORMALIZATION.std))
    return CLIP_NORMALIZATION.mean, CLIP_NORMALIZATION.std
