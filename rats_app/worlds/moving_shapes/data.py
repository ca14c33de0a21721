"""Batches of Moving Shapes clips for pretraining (rendered on the fly, reproducibly)."""

from __future__ import annotations

import numpy as np
import torch

from rats_app.worlds.moving_shapes.render import Sample, render_clip, sample_clip


def to_tensor(clips: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) clips -> float B x 3 x F x H x W in [-1, 1] (the Wan VAE's layout and range)."""
    array = np.stack(list(clips)).astype(np.float32)
    return torch.from_numpy(array).permute(0, 4, 1, 2, 3) / 127.5 - 1.0


def to_uint8(clips: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`to_tensor` (with rounding and clipping): B x F x H x W x 3 uint8."""
    array = ((clips.detach().float().clamp(-1, 1) + 1.0) * 127.5).round()
    return array.permute(0, 2, 3, 4, 1).to(torch.uint8).cpu().numpy()


def sample_batch(prompts: list[str], batch_size: int, rng: np.random.Generator,
                 p_degraded: float = 0.5) -> tuple[list[Sample], torch.Tensor, np.ndarray]:
    """Draw prompts uniformly, render one clip each; returns samples, clips and prompt indices."""
    index = rng.integers(len(prompts), size=batch_size)
    samples = [sample_clip(prompts[i], rng, p_degraded) for i in index]
    return samples, to_tensor([render_clip(s) for s in samples]), index
