"""Losses and draws that both worlds' pretraining share (images B x C x H x W, clips B x C x F x H x W).

Lessons from making the Shapes World teacher (docs/shapes-world.md): the object covers a few
percent of the canvas, so unweighted losses are dominated by the flat background and leave object
colours and edges off; weighting the object's pixels (VAE) and tokens (transformer) fixes that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def spatial_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Differences along the last two axes (width, height)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def object_mask(x: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    """1 where a pixel differs from its frame's median (background) colour, dilated by one pixel.

    Per frame, so a clip whose brightness flickers from frame to frame still finds its object."""
    background = x.flatten(-2).median(dim=-1).values[..., None, None]
    mask = ((x - background).abs().amax(dim=1, keepdim=True) > threshold).float()
    if mask.ndim == 5:  # B x 1 x F x H x W: dilate each frame
        b, _, f, h, w = mask.shape
        frames = mask.transpose(1, 2).reshape(b * f, 1, h, w)
        return F.max_pool2d(frames, 3, stride=1, padding=1).reshape(b, f, 1, h, w).transpose(1, 2)
    return F.max_pool2d(mask, 3, stride=1, padding=1)


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, object_weight: float,
                        edge_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Object-weighted L1 + MSE plus an L1 on spatial gradients (keeps edges sharp)."""
    weight = 1.0 + object_weight * object_mask(target)
    error = recon - target
    pixel = (weight * error.abs()).mean() + (weight * error.pow(2)).mean()
    gx, gy = spatial_gradients(recon)
    tx, ty = spatial_gradients(target)
    edge = F.l1_loss(gx, tx) + F.l1_loss(gy, ty)
    return pixel + edge_weight * edge, {"pixel": pixel.item(), "edge": edge.item()}


def flow_times(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Training times in (0, 1): half logit-normal (the middle of the path matters most), half
    uniform (covers both ends)."""
    uniform = torch.rand(batch, generator=generator)
    logit_normal = torch.sigmoid(torch.randn(batch, generator=generator))
    return torch.where(torch.rand(batch, generator=generator) < 0.5, logit_normal, uniform)


def object_weights(x0: torch.Tensor, object_weight: float, channel_dim: int = 1) -> torch.Tensor:
    """1 + object_weight where a latent position differs from the sample's median latent.

    ``x0``: latents with channels on ``channel_dim`` and positions on the other non-batch axes;
    returns one weight per (sample, position), channels averaged out."""
    channels_last = x0.movedim(channel_dim, -1).flatten(1, -2)  # B x positions x C
    deviation = (channels_last - channels_last.median(dim=1, keepdim=True).values).abs().mean(dim=-1)
    return 1.0 + object_weight * (deviation > 0.2).float()


def drop_prompts(prompts: list[str], probability: float, generator: torch.Generator) -> list[str]:
    """Replace a share of the prompts by "" so the model learns the unconditional velocity CFG needs."""
    if probability <= 0:
        return prompts
    drop = torch.rand(len(prompts), generator=generator) < probability
    return ["" if d else p for p, d in zip(prompts, drop.tolist())]
