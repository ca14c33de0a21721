"""Batches of Shapes World images for pretraining (rendered on the fly, reproducibly)."""

from __future__ import annotations

import numpy as np
import torch

from rats_app.worlds.shapes.render import Sample, render_scene, sample_scene


def to_tensor(images: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 images -> float tensor Bx3xHxW in [-1, 1] (the VAE's range)."""
    array = np.stack(list(images)).astype(np.float32)
    return torch.from_numpy(array).permute(0, 3, 1, 2) / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`to_tensor` (with rounding and clipping)."""
    array = ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5).round()
    return array.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()


def sample_batch(prompts: list[str], batch_size: int, rng: np.random.Generator,
                 p_degraded: float = 0.5) -> tuple[list[Sample], torch.Tensor, np.ndarray]:
    """Draw prompts uniformly, render one sample each; returns samples, images and prompt indices."""
    index = rng.integers(len(prompts), size=batch_size)
    samples = [sample_scene(prompts[i], rng, p_degraded) for i in index]
    return samples, to_tensor([render_scene(s) for s in samples]), index
