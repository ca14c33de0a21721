"""ImageReward (Xu et al. 2023) on this stack: its BLIP scorer rebuilt from transformers' BLIP modules.

The ``image-reward`` package cannot load here (it imports transformers internals removed in
transformers 5, pins timm 0.6.13 and downloads bert-base-uncased while loading), so the scorer
is rebuilt from its published architecture, whose layout transformers' BLIP modules match:

- image: BLIP's ViT-L/16 (224 px, 24 blocks, width 1024) -> ``BlipVisionModel``;
- text: BLIP's "med" BERT-base with cross-attention over the image tokens (``encoder_width``
  1024) -> ``BlipTextModel`` (no pooler);
- BLIP-pretrain's ``vision_proj`` / ``text_proj`` (in the checkpoint, unused for the score) and
  the MLP head 768 -> 1024 -> 128 -> 64 -> 16 -> 1.

Score, as ImageReward computes it: the text's [CLS] feature after cross-attention, through the MLP,
then (r - 0.16717362830052426) / 1.0333394966054072. Preprocessing is in torch (bicubic resize to
224, centre crop, CLIP mean and std), so the score is differentiable in the pixels.

Weights: ``ImageReward.pt`` (a state dict, read with ``torch.load(weights_only=True)``) and
``med_config.json`` from RATS_IMAGEREWARD_CHECKPOINT / RATS_IMAGEREWARD_MED_CONFIG, else the
image-reward package's cache (~/.cache/ImageReward), else the hub repo THUDM/ImageReward.
Tokenizer: bert-base-uncased plus ImageReward's [DEC] and [ENC] tokens, from
RATS_IMAGEREWARD_TOKENIZER (a directory), the hub cache or the hub.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from torch import nn
from transformers import BertTokenizer, BlipTextConfig, BlipVisionConfig, BlipVisionModel
from transformers.models.blip.modeling_blip_text import BlipTextModel

from rats_app.errors import RewardUnavailable
from rats_app.rewards.base import CLIP_NORMALIZATION, Reward, preprocess
from rats_app.rewards.sources import resolve_dir, resolve_file

MEAN, STD = 0.16717362830052426, 1.0333394966054072
MAX_TEXT_TOKENS = 35
HUB_REPO = "THUDM/ImageReward"
PACKAGE_CACHE = Path.home() / ".cache" / "ImageReward"
HEAD_WIDTHS = (1024, 128, 64, 16, 1)
HEAD_LINEAR_INDICES = (0, 2, 4, 6, 7)  # the checkpoint's nn.Sequential: Linear, Dropout, ..., Linear, Linear
VIT_LARGE = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                 image_size=224, patch_size=16)
EMBED_DIM = 256


class ImageRewardModel(nn.Module):
    """BLIP image encoder + cross-attending text encoder + MLP head, in our module names."""

    def __init__(self, text_config: BlipTextConfig, vision_config: BlipVisionConfig):
        super().__init__()
        self.vision = BlipVisionModel(vision_config)
        self.text = BlipTextModel(text_config, add_pooling_layer=False)
        self.vision_proj = nn.Linear(vision_config.hidden_size, EMBED_DIM)
        self.text_proj = nn.Linear(text_config.hidden_size, EMBED_DIM)
        widths = (text_config.hidden_size, *HEAD_WIDTHS)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < 3:  # ImageReward's dropouts sit after the first three linears
                layers.append(nn.Dropout((0.2, 0.2, 0.1)[i]))
        self.head = nn.Sequential(*layers)

    def forward(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        image = self.vision(pixel_values=pixels).last_hidden_state
        image_mask = torch.ones(image.shape[:-1], dtype=torch.long, device=image.device)
        text = self.text(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image,
                         encoder_attention_mask=image_mask, is_decoder=False).last_hidden_state
        return ((self.head(text[:, 0].float()) - MEAN) / STD).squeeze(-1)


# ---------------------------------------------------------------------------- the checkpoint's layout
_VISION_RULES = [  # (official key pattern under blip.visual_encoder., ours under vision.)
    (r"cls_token", "embeddings.class_embedding"),
    (r"pos_embed", "embeddings.position_embedding"),
    (r"patch_embed\.proj\.(weight|bias)", r"embeddings.patch_embedding.\1"),
    (r"blocks\.(\d+)\.norm1\.(weight|bias)", r"encoder.layers.\1.layer_norm1.\2"),
    (r"blocks\.(\d+)\.norm2\.(weight|bias)", r"encoder.layers.\1.layer_norm2.\2"),
    (r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", r"encoder.layers.\1.self_attn.qkv.\2"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"encoder.layers.\1.self_attn.projection.\2"),
    (r"blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"encoder.layers.\1.mlp.\2.\3"),
    (r"norm\.(weight|bias)", r"post_layernorm.\1"),
]
BUFFERS = ("blip.text_encoder.embeddings.position_ids",)  # BLIP's persistent buffer (an arange), not a weight


def our_key(key: str) -> str | None:
    """The module path a key of the official checkpoint maps to (None: no such key in ImageReward)."""
    if key.startswith("blip.visual_encoder."):
        rest = key[len("blip.visual_encoder."):]
        for pattern, target in _VISION_RULES:
            if re.fullmatch(pattern, rest):
                return "vision." + re.sub(pattern, target, rest)
        return None
    if key.startswith("blip.text_encoder."):
        return "text." + key[len("blip.text_encoder."):]
    if key.startswith(("blip.vision_proj.", "blip.text_proj.")):
        return key[len("blip."):]
    match = re.fullmatch(r"mlp\.layers\.(\d+)\.(weight|bias)", key)
    if match and int(match[1]) in HEAD_LINEAR_INDICES:
        return f"head.{match[1]}.{match[2]}"
    return None


def official_keys(vision_layers: int = 24, text_layers: int = 12) -> list[str]:
    """Every key of ImageReward's state dict, from its published architecture (BLIP_Pretrain with a
    ViT-L visual encoder, the med BertModel without pooler, the projections, the MLP head)."""
    keys = ["blip.visual_encoder.cls_token", "blip.visual_encoder.pos_embed"]
    keys += [f"blip.visual_encoder.patch_embed.proj.{p}" for p in ("weight", "bias")]
    for i in range(vision_layers):
        for part in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            keys += [f"blip.visual_encoder.blocks.{i}.{part}.{p}" for p in ("weight", "bias")]
    keys += [f"blip.visual_encoder.norm.{p}" for p in ("weight", "bias")]
    text = "blip.text_encoder."
    keys += [text + "embeddings.position_ids", text + "embeddings.word_embeddings.weight",
             text + "embeddings.position_embeddings.weight"]
    keys += [text + f"embeddings.LayerNorm.{p}" for p in ("weight", "bias")]
    for i in range(text_layers):
        for block in ("attention", "crossattention"):
            for part in ("self.query", "self.key", "self.value", "output.dense", "output.LayerNorm"):
                keys += [f"{text}encoder.layer.{i}.{block}.{part}.{p}" for p in ("weight", "bias")]
        for part in ("intermediate.dense", "output.dense", "output.LayerNorm"):
            keys += [f"{text}encoder.layer.{i}.{part}.{p}" for p in ("weight", "bias")]
    keys += [f"blip.{proj}.{p}" for proj in ("vision_proj", "text_proj") for p in ("weight", "bias")]
    keys += [f"mlp.layers.{i}.{p}" for i in HEAD_LINEAR_INDICES for p in ("weight", "bias")]
    return keys


def _count(state: dict, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return 1 + max((int(m[1]) for k in state if (m := pattern.match(k))), default=-1)


def configs(state: dict[str, torch.Tensor], med: dict) -> tuple[BlipTextConfig, BlipVisionConfig]:
    """The text config from med_config.json, the vision config from the checkpoint's own shapes
    (the official one is ViT-L/16 at 224; a tiny stand-in of the same layout reads as itself)."""
    width = state["blip.visual_encoder.pos_embed"].shape[-1]
    patch = state["blip.visual_encoder.patch_embed.proj.weight"].shape[-1]
    grid = round((state["blip.visual_encoder.pos_embed"].shape[1] - 1) ** 0.5)
    vision = BlipVisionConfig(hidden_size=width, num_hidden_layers=_count(state, "blip.visual_encoder.blocks."),
                              num_attention_heads=max(1, width // 64), patch_size=patch, image_size=grid * patch,
                              intermediate_size=state["blip.visual_encoder.blocks.0.mlp.fc1.weight"].shape[0],
                              hidden_act="gelu", layer_norm_eps=1e-6)
    text = BlipTextConfig(vocab_size=med["vocab_size"], hidden_size=med["hidden_size"],
                          encoder_hidden_size=width, intermediate_size=med["intermediate_size"],
                          num_hidden_layers=med["num_hidden_layers"], num_attention_heads=med["num_attention_heads"],
                          max_position_embeddings=med["max_position_embeddings"],
                          layer_norm_eps=med.get("layer_norm_eps", 1e-12), hidden_act=med.get("hidden_act", "gelu"),
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, is_decoder=True)
    return text, vision  # is_decoder=True only builds the cross-attention; the forward runs bidirectional


def convert(state: dict[str, torch.Tensor], med: dict, source: str) -> ImageRewardModel:
    """Our model with the checkpoint's weights; a key it does not know, or one missing, is named."""
    unknown = sorted(k for k in state if our_key(k) is None and k not in BUFFERS)
    if unknown:
        raise RewardUnavailable(f"imagereward: {source} has a key ImageReward does not: {unknown[0]}"
                                f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}")
    text_config, vision_config = configs(state, med)
    expected = official_keys(vision_config.num_hidden_layers, text_config.num_hidden_layers)
    missing = [k for k in expected if k not in state]
    if missing:
        raise RewardUnavailable(f"imagereward: {source} lacks {missing[0]}"
                                f"{f' (and {len(missing) - 1} more keys)' if len(missing) > 1 else ''}")
    model = ImageRewardModel(text_config, vision_config)
    ours = {our_key(k): v for k, v in state.items() if k not in BUFFERS}
    try:
        model.load_state_dict(ours, strict=True)
    except RuntimeError as exc:
        raise RewardUnavailable(f"imagereward: {source} does not fit the architecture its med_config.json "
                                f"describes: {str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc}") from None
    return model.eval()


# ---------------------------------------------------------------------------- the reward
class ImageReward(Reward):
    name = "imagereward"

    def __init__(self, model: ImageRewardModel, tokenizer):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        size = model.vision.config.image_size
        self.normalization = CLIP_NORMALIZATION.__class__(size, CLIP_NORMALIZATION.mean, CLIP_NORMALIZATION.std)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=MAX_TEXT_TOKENS,
                                return_tensors="pt").to(self.device)
        pixels = preprocess(images.to(self.device, torch.float32), self.normalization)
        return self.model(pixels.to(next(self.model.parameters()).dtype), tokens.input_ids, tokens.attention_mask)


def read_state(path: str) -> dict[str, torch.Tensor]:
    """ImageReward.pt as a state dict (never a pickle: weights_only=True); a broken file is named."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RewardUnavailable(f"imagereward: {path} is not a readable torch checkpoint (truncated or not a "
                                f"state dict: {type(exc).__name__})") from None
    if isinstance(data, dict) and "state_dict" in data:
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise RewardUnavailable(f"imagereward: {path} holds no state dict of tensors")
    return data


def build_tokenizer(directory: str):
    """bert-base-uncased's tokenizer plus ImageReward's [DEC] (bos) and [ENC] tokens."""
    tokenizer = BertTokenizer.from_pretrained(directory)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


def _located(env: str, name: str) -> str:
    """An explicit path, else the image-reward package's cache, else the hub (cached or downloadable)."""
    value = os.environ.get(env)
    if value is None and (PACKAGE_CACHE / name).is_file():
        value = str(PACKAGE_CACHE / name)
    return resolve_file("imagereward", value or name, env, hub_repo=HUB_REPO)


def load_imagereward(device: str | None = None, dtype: torch.dtype = torch.float32) -> ImageReward:
    checkpoint = _located("RATS_IMAGEREWARD_CHECKPOINT", "ImageReward.pt")
    med_path = _located("RATS_IMAGEREWARD_MED_CONFIG", "med_config.json")
    tokenizer_dir = resolve_dir("imagereward", os.environ.get("RATS_IMAGEREWARD_TOKENIZER", "bert-base-uncased"),
                                "RATS_IMAGEREWARD_TOKENIZER")
    try:
        med = json.loads(Path(med_path).read_text())
    except (OSError, ValueError) as exc:
        raise RewardUnavailable(f"imagereward: {med_path} is not a readable med_config.json ({type(exc).__name__})") \
            from None
    model = convert(read_state(checkpoint), med, checkpoint)
    tokenizer = build_tokenizer(tokenizer_dir)
    if len(tokenizer) != model.text.config.vocab_size:
        raise RewardUnavailable(f"imagereward: the tokenizer in {tokenizer_dir} has {len(tokenizer)} tokens with "
                                f"[DEC] and [ENC]; the checkpoint's text encoder has {model.text.config.vocab_size}")
    model.to(device=device or ("cuda" if torch.cuda.is_available() else "cpu"), dtype=dtype)
    return ImageReward(model, tokenizer)
