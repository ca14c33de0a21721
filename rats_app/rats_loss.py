"""The RATS objective as pure tensor functions (no models, no state).

    L = -lambda * mean(R_S) + alpha * mean_b( g_b * sum_h w_h * d(teacher_h, student_h) )
                            [+ beta * mean_b( g_b * d_px(teacher image, student image) )]
    d: mean over latent positions, optionally weighted (the object's positions above the background)
    g = stop_grad(sigmoid((R_T - R_S) / tau))            ("soft" gate; "hard" and "always" too)

The paper publishes the mechanism (horizon matching, stop-gradient sigmoid gate on the
teacher-minus-student reward, terminal reward); this exact form is our reconstruction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PIXEL_OBJECT_THRESHOLD = 0.05  # [0, 1] units, mean over RGB: about 13 levels off the background's colour


def object_weights(x0: torch.Tensor, object_weight: float, channel_dim: int = 1,
                   threshold: float = 0.2) -> torch.Tensor:
    """1 + object_weight where a position differs from the sample's median by more than ``threshold``
    (mean absolute difference over channels; 0.2 suits the worlds' normalised latents).

    ``x0``: latents with channels on ``channel_dim`` and positions on the other non-batch axes;
    returns one weight per (sample, position), channels averaged out. On a flat background with
    one object (the worlds) the median is the background, so the object's positions get the weight."""
    channels_last = _positions(x0, channel_dim)  # B x positions x C
    deviation = (channels_last - channels_last.median(dim=1, keepdim=True).values).abs().mean(dim=-1)
    return 1.0 + object_weight * (deviation > threshold).float()


def _positions(latents: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """B x ... -> B x positions x channels."""
    return latents.movedim(channel_dim, -1).flatten(1, -2)


def horizon_distance(teacher: torch.Tensor, student: torch.Tensor, kind: str = "l2",
                     position_weights: torch.Tensor | None = None, channel_dim: int = 1) -> torch.Tensor:
    """Per-sample distance between two batches of latents (B, ...) -> (B,).

    l2: mean squared difference; cosine: 1 - cosine similarity of the flattened latents.
    ``position_weights`` (B x positions, channels on ``channel_dim``): l2 becomes the weighted mean
    over positions of the channel-mean squared difference, cosine compares the latents with each
    position scaled by the square root of its weight.
    """
    if teacher.shape != student.shape:
        raise ValueError(f"teacher {tuple(teacher.shape)} and student {tuple(student.shape)} shapes differ")
    if position_weights is not None:
        t, s = _positions(teacher.float(), channel_dim), _positions(student.float(), channel_dim)
        if position_weights.shape != t.shape[:2]:
            raise ValueError(f"position weights {tuple(position_weights.shape)} do not match the latents' "
                             f"(batch, positions) {tuple(t.shape[:2])}")
        w = position_weights.detach().float()
        if kind == "l2":
            return ((t - s).pow(2).mean(dim=-1) * w).sum(dim=1) / w.sum(dim=1)
        t, s = (t * w.sqrt().unsqueeze(-1)).flatten(1), (s * w.sqrt().unsqueeze(-1)).flatten(1)
    else:
        t, s = teacher.flatten(1).float(), student.flatten(1).float()
    if kind == "l2":
        return (t - s).pow(2).mean(dim=1)
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(t, s, dim=1, eps=1e-8)
    raise ValueError(f"unknown distance {kind!r}; expected 'l2' or 'cosine'")


def reward_gate(teacher_reward: torch.Tensor, student_reward: torch.Tensor, tau: float = 1.0,
                mode: str = "soft") -> torch.Tensor:
    """Per-sample gate in [0, 1], always detached (stop-gradient).

    soft: sigmoid((R_T - R_S) / tau): 0.5 at a tie, toward 1 when the teacher is preferred,
    toward 0 (never exactly) as the student overtakes it. hard: 1[R_T > R_S]. always: 1.
    """
    diff = (teacher_reward - student_reward).detach().float()
    if mode == "soft":
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        return torch.sigmoid(diff / tau)
    if mode == "hard":
        return (diff > 0).float()
    if mode == "always":
        return torch.ones_like(diff)
    raise ValueError(f"unknown gate {mode!r}; expected 'soft', 'hard' or 'always'")


@dataclass
class RatsLoss:
    loss: torch.Tensor          # scalar to backpropagate
    matching: torch.Tensor      # mean over batch of sum_h w_h d_h (ungated)
    gated_matching: torch.Tensor  # mean over batch of g * sum_h w_h d_h
    reward_term: torch.Tensor   # mean(R_S)
    gate: torch.Tensor          # (B,) detached
    pixel_matching: torch.Tensor | None = None  # mean over batch of d_px (ungated), when a pixel term is given


def rats_loss(student_reward: torch.Tensor, teacher_reward: torch.Tensor,
              teacher_horizons: list[torch.Tensor], student_horizons: list[torch.Tensor],
              weights: list[float] | None = None, alpha: float = 1.0, reward_weight: float = 1.0,
              tau: float = 1.0, gate: str = "soft", distance: str = "l2",
              position_weights: torch.Tensor | None = None, channel_dim: int = 1,
              pixels: tuple | None = None, pixel_weight: float = 0.0, pixel_object_weight: float = 10.0) -> RatsLoss:
    """Combine the pieces. Horizons are lists (one tensor B x ... per horizon) in the same order;
    ``position_weights`` (B x positions, e.g. ``object_weights`` of the teacher's output) weigh every
    horizon's distance (``horizon_distance``). ``pixels``: (teacher images, student images) in [0, 1],
    channels on axis 1, for the gated pixel term of weight ``pixel_weight``, the teacher's object
    weighted by ``pixel_object_weight`` (our addition: a latent distance over the canvas hardly sees a
    small object's colour)."""
    if len(teacher_horizons) != len(student_horizons):
        raise ValueError(f"{len(teacher_horizons)} teacher horizons but {len(student_horizons)} student horizons")
    weights = [1.0] * len(student_horizons) if weights is None else list(weights)
    if len(weights) != len(student_horizons):
        raise ValueError(f"{len(weights)} weights for {len(student_horizons)} horizons")
    batch = student_reward.shape[0]
    per_sample = student_reward.new_zeros(batch, dtype=torch.float32)
    for w, t, s in zip(weights, teacher_horizons, student_horizons):
        per_sample = per_sample + w * horizon_distance(t.detach(), s, distance, position_weights, channel_dim)
    g = reward_gate(teacher_reward, student_reward, tau, gate)
    gated = (g * per_sample).mean()
    reward_term = student_reward.float().mean()
    loss = -reward_weight * reward_term + alpha * gated
    pixel_matching = None
    if pixels is not None:
        teacher_images, student_images = (images.float() for images in pixels)
        pixel_weights = object_weights(teacher_images, pixel_object_weight, 1, threshold=PIXEL_OBJECT_THRESHOLD)
        d_px = horizon_distance(teacher_images.detach(), student_images, "l2", pixel_weights, channel_dim=1)
        loss = loss + pixel_weight * (g * d_px).mean()
        pixel_matching = d_px.mean().detach()
    return RatsLoss(loss=loss, matching=per_sample.mean().detach(), gated_matching=gated.detach(),
                    reward_term=reward_term.detach(), gate=g, pixel_matching=pixel_matching)
