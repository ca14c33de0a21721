"""A small learned video preference reward: CLIP-style text and clip towers, with temporal pooling.

The clip tower reads each frame together with its difference to the previous frame (so motion,
flicker and stutter are visible to a per-frame encoder), encodes every frame with a CLIP vision
transformer, and pools the frame embeddings with a small temporal transformer that knows frame
order (so a clip played backwards is a different clip). The score is PickScore's formula,
``logit_scale * cos(clip, text)``; it is differentiable in the pixels, so it trains a video student.

Saved as ``config.json`` (this module's ``VideoRewardConfig``, ``model_type: video-preference``),
``model.safetensors`` and the tokenizer files; loaded with ``load_video_preference``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModel

from rats_app.errors import RewardUnavailable
from rats_app.rewards.base import Reward
from rats_app.rewards.video import check_clips, clips_to_tensor

MODEL_TYPE = "video-preference"


@dataclass(frozen=True)
class VideoRewardConfig:
    frames: int = 9
    image_size: int = 32
    patch: int = 4
    hidden: int = 64
    vision_layers: int = 3
    temporal_layers: int = 2
    text_layers: int = 2
    heads: int = 4
    vocab_size: int = 64
    max_length: int = 16
    bos_token_id: int = 0
    eos_token_id: int = 1
    pad_token_id: int = 1

    @classmethod
    def for_tokenizer(cls, tokenizer, **sizes) -> "VideoRewardConfig":
        return cls(vocab_size=len(tokenizer), max_length=tokenizer.model_max_length,
                   bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id, **sizes)


class VideoPreferenceModel(nn.Module):
    def __init__(self, config: VideoRewardConfig):
        super().__init__()
        self.config = config
        h = config.hidden
        self.vision = CLIPVisionModel(CLIPVisionConfig(
            image_size=config.image_size, patch_size=config.patch, num_channels=6, hidden_size=h,
            intermediate_size=2 * h, num_hidden_layers=config.vision_layers, num_attention_heads=config.heads))
        # The text tower pools at the EOS token, so its id must be the tokenizer's (CLIP's default is not).
        self.text = CLIPTextModel(CLIPTextConfig(
            vocab_size=config.vocab_size, hidden_size=h, intermediate_size=2 * h,
            num_hidden_layers=config.text_layers, num_attention_heads=config.heads,
            max_position_embeddings=config.max_length, bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id))
        self.frame_position = nn.Parameter(torch.zeros(1, config.frames + 1, h))
        self.clip_token = nn.Parameter(torch.zeros(1, 1, h))
        layer = nn.TransformerEncoderLayer(h, config.heads, 2 * h, dropout=0.0, batch_first=True, norm_first=True)
        self.temporal = nn.TransformerEncoder(layer, config.temporal_layers, enable_nested_tensor=False)
        self.temporal_norm = nn.LayerNorm(h)
        self.visual_projection = nn.Linear(h, h, bias=False)
        self.text_projection = nn.Linear(h, h, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))  # log(1 / 0.07), CLIP's start

    def embed_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """B x 3 x F x H x W in [0, 1] -> B x hidden, unit length."""
        b, _, f, hgt, wid = clips.shape
        if f != self.config.frames or (hgt, wid) != (self.config.image_size,) * 2:
            raise ValueError(f"this video reward scores {self.config.frames} frames of {self.config.image_size} px, "
                             f"got {f} frames of {hgt} x {wid}")
        frames = clips.transpose(1, 2)  # B x F x 3 x H x W
        difference = torch.cat([torch.zeros_like(frames[:, :1]), frames[:, 1:] - frames[:, :-1]], dim=1)
        pixels = torch.cat([frames * 2 - 1, difference * 2], dim=2).reshape(b * f, 6, hgt, wid)
        per_frame = self.vision(pixel_values=pixels).pooler_output.reshape(b, f, -1)
        tokens = torch.cat([self.clip_token.expand(b, -1, -1), per_frame], dim=1) + self.frame_position
        pooled = self.temporal_norm(self.temporal(tokens)[:, 0])
        return F.normalize(self.visual_projection(pooled), dim=-1)

    def embed_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.text(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return F.normalize(self.text_projection(pooled), dim=-1)


class VideoPreferenceReward(Reward):
    media = "video"

    def __init__(self, model: VideoPreferenceModel, tokenizer, name: str = "video-preference"):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def embed_text(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, padding="max_length", truncation=True,
                                max_length=self.model.config.max_length, return_tensors="pt").to(self.device)
        return self.model.embed_text(tokens.input_ids, tokens.attention_mask)

    def embed_clips(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model.embed_clips(clips.to(self.device, torch.float32))

    def score(self, clips: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        check_clips(clips, prompts)
        return self.model.logit_scale.exp() * (self.embed_clips(clips) * self.embed_text(list(prompts))).sum(-1)

    @torch.no_grad()
    def score_fast(self, clips, prompts: list[str]) -> torch.Tensor:
        if not isinstance(clips, torch.Tensor):
            clips = clips_to_tensor(clips)
        return self.score(clips, prompts).float().cpu()


def save_video_preference(reward: VideoPreferenceReward, path: str | os.PathLike) -> None:
    from safetensors.torch import save_file

    from rats_app.io import write_json

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in reward.model.state_dict().items()}
    tmp = out / "model.safetensors.tmp"
    save_file(state, tmp)
    tmp.replace(out / "model.safetensors")
    reward.tokenizer.save_pretrained(out)
    write_json(out / "config.json", {"model_type": MODEL_TYPE, **asdict(reward.model.config)})


def load_video_preference(path: str | os.PathLike, name: str = "video-preference", device: str | None = None,
                          rebuild: str | None = None) -> VideoPreferenceReward:
    """Load a saved video preference reward (safetensors only); RewardUnavailable says what is missing."""
    from safetensors.torch import load_file

    p = Path(path)
    hint = f" (rebuild it with `{rebuild}`)" if rebuild else ""
    if not (p / "config.json").exists() or not (p / "model.safetensors").exists():
        raise RewardUnavailable(f"{name}: no video preference model at {p} (expected config.json and "
                                f"model.safetensors){hint}")
    try:
        data = json.loads((p / "config.json").read_text())
    except ValueError:
        raise RewardUnavailable(f"{name}: {p / 'config.json'} is not valid JSON{hint}") from None
    if data.pop("model_type", None) != MODEL_TYPE:
        raise RewardUnavailable(f"{name}: {p} is not a {MODEL_TYPE} model")
    try:
        model = VideoPreferenceModel(VideoRewardConfig(**data))
        model.load_state_dict(load_file(p / "model.safetensors"))
        tokenizer = AutoTokenizer.from_pretrained(p)
    except Exception as exc:
        raise RewardUnavailable(f"{name}: could not load {p}: {str(exc).splitlines()[0][:300]}{hint}") from None
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return VideoPreferenceReward(model, tokenizer, name=name)
