"""The reward interface: ``score(images, prompts) -> tensor[B]``, differentiable in the images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ImageNormalization:
    """How a reward model wants its pixels: square side, resize/crop, per-channel mean and std."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CLIP_NORMALIZATION = ImageNormalization(224, (0.48145466, 0.4578275, 0.40821073),
                                        (0.26862954, 0.26130258, 0.27577711))


def check_batch(images: torch.Tensor, prompts: list[str]) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a B x 3 x H x W tensor in [0, 1], got "
                         f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}")
    if images.shape[1] != 3:
        raise ValueError(f"images must be RGB (3 channels), got {images.shape[1]} channels")
    if len(prompts) != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {len(prompts)} prompts")


def preprocess(images: torch.Tensor, norm: ImageNormalization) -> torch.Tensor:
    """Resize the short side to ``norm.size`` (bicubic, antialiased), centre-crop, normalise.

    Done in torch (not PIL) so gradients reach the pixels.
    """
    h, w = images.shape[-2:]
    if (h, w) != (norm.size, norm.size):
        scale = norm.size / min(h, w)
        nh, nw = max(norm.size, round(h * scale)), max(norm.size, round(w * scale))
        images = F.interpolate(images, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
        top, left = (nh - norm.size) // 2, (nw - norm.size) // 2
        images = images[..., top:top + norm.size, left:left + norm.size]
    mean = torch.tensor(norm.mean, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(norm.std, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std


def pil_to_tensor(images) -> torch.Tensor:
    """PIL images / uint8 arrays (H x W x 3) -> B x 3 x H x W float in [0, 1]."""
    arrays = []
    for image in images:
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"expected RGB images (H x W x 3), got shape {array.shape}; convert with .convert('RGB')")
        arrays.append(array.astype(np.float32) / 255.0)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


class Reward:
    """Base class. Subclasses implement ``_score`` on checked, [0, 1] images."""

    name: str = "reward"
    media: str = "image"  # what it scores: "image" (B x 3 x H x W) or "video" (B x 3 x F x H x W)

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Differentiable scores (B,), on the reward model's device."""
        check_batch(images, prompts)
        return self._score(images, list(prompts))

    @torch.no_grad()
    def score_fast(self, images, prompts: list[str]) -> torch.Tensor:
        """No-grad path for display: accepts a tensor or PIL images; returns CPU floats."""
        if not isinstance(images, torch.Tensor):
            images = pil_to_tensor(images)
        return self.score(images, prompts).float().cpu()

    def _score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        raise NotImplementedError
