"""ImageReward (BLIP-based preference model, Xu et al. 2023).

Status here: the ``image-reward`` package (1.5) imports transformers internals that transformers 5
removed, pins ``timm==0.6.13`` and downloads ``bert-base-uncased`` at load time, so on this
project's stack (transformers 5.23) it cannot load. Where the package does import (an environment
with transformers 4.x), this loader uses it, including its differentiable ``score_gard`` path.
Otherwise the reward reports ``unavailable`` with the reason — never a made-up score.
Weights: RATS_IMAGEREWARD_CHECKPOINT (``ImageReward.pt``) and RATS_IMAGEREWARD_MED_CONFIG
(``med_config.json``), else the package's own download of ``ImageReward-v1.0``.
"""

from __future__ import annotations

import os

import torch

from rats_app.errors import RewardUnavailable
from rats_app.rewards.base import ImageNormalization, Reward, preprocess

BLIP_NORMALIZATION = ImageNormalization(224, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
WHY = ("the image-reward package does not import with transformers 5 (this project pins transformers 5.23; "
       "image-reward 1.5 needs transformers 4.x and timm 0.6.13)")


class ImageRewardModel(Reward):
    name = "imagereward"

    def __init__(self, model, device: torch.device):
        self.model = model.eval().requires_grad_(False)
        self.device = device

    def _score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        tokens = self.model.blip.tokenizer(prompts, padding="max_length", truncation=True, max_length=35,
                                           return_tensors="pt").to(self.device)
        pixels = preprocess(images.to(self.device, torch.float32), BLIP_NORMALIZATION)
        return self.model.score_gard(tokens.input_ids, tokens.attention_mask, pixels).reshape(-1)


def load_imagereward(device: str | None = None) -> ImageRewardModel:
    try:
        import ImageReward as image_reward  # noqa: N813 (the package's own name)
    except Exception as exc:
        raise RewardUnavailable(f"imagereward: {WHY} [{type(exc).__name__}: {str(exc).splitlines()[0][:120]}]") from None
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    checkpoint = os.environ.get("RATS_IMAGEREWARD_CHECKPOINT", "ImageReward-v1.0")
    med_config = os.environ.get("RATS_IMAGEREWARD_MED_CONFIG")
    try:
        model = image_reward.load(checkpoint, device=str(device), med_config=med_config)
    except Exception as exc:
        raise RewardUnavailable(f"imagereward: could not load {checkpoint!r}: {str(exc).splitlines()[0][:200]} "
                                "(set RATS_IMAGEREWARD_CHECKPOINT and RATS_IMAGEREWARD_MED_CONFIG)") from None
    return ImageRewardModel(model, device)
