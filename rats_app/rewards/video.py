"""Rewards and measures for clips (B x 3 x F x H x W in [0, 1]).

- ``FrameWiseReward``: any image reward applied to every frame (or an evenly spaced subset, so
  memory stays bounded) and averaged: differentiable, so it trains a video student.
- ``temporal_flickering``: VBench's temporal-flickering score, (255 - mean absolute difference of
  consecutive frames) / 255 — 1 for a perfectly still clip.
- ``motion``: VBench-style dynamic degree from dense optical flow (OpenCV's Farneback): the mean of
  the top 5 % flow magnitudes, in pixels per frame.

The two measures are model-free and not differentiable: they go in score tables, not into training.
"""

from __future__ import annotations

import numpy as np
import torch

from rats_app.io import to_uint8_frames
from rats_app.rewards.base import Reward


def check_clips(clips: torch.Tensor, prompts: list[str]) -> None:
    if not isinstance(clips, torch.Tensor) or clips.ndim != 5 or clips.shape[1] != 3:
        raise ValueError(f"clips must be a B x 3 x F x H x W tensor in [0, 1], got "
                         f"{type(clips).__name__} {tuple(getattr(clips, 'shape', ()))}")
    if len(prompts) != clips.shape[0]:
        raise ValueError(f"{clips.shape[0]} clips but {len(prompts)} prompts")


def frame_subset(frames: int, count: int) -> list[int]:
    """``count`` evenly spaced frame indices, first and last included (0 = every frame)."""
    if count <= 0 or count >= frames:
        return list(range(frames))
    return sorted({int(round(i)) for i in np.linspace(0, frames - 1, count)})


class FrameWiseReward(Reward):
    """An image reward on a clip's frames, averaged over them."""

    media = "video"

    def __init__(self, image_reward: Reward, frames: int = 0):
        self.image_reward, self.frames = image_reward, frames
        self.name = image_reward.name

    def score(self, clips: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        check_clips(clips, prompts)
        chosen = frame_subset(clips.shape[2], self.frames)
        b, c, _, h, w = clips.shape
        images = clips[:, :, chosen].transpose(1, 2).reshape(b * len(chosen), c, h, w)
        scores = self.image_reward.score(images, [p for p in prompts for _ in chosen])
        return scores.reshape(b, len(chosen)).mean(dim=1)

    @torch.no_grad()
    def score_fast(self, clips, prompts: list[str]) -> torch.Tensor:
        if not isinstance(clips, torch.Tensor):
            clips = clips_to_tensor(clips)
        return self.score(clips, prompts).float().cpu()


def clips_to_tensor(clips) -> torch.Tensor:
    """uint8 (or [0, 1] float) F x H x W x 3 arrays -> B x 3 x F x H x W float in [0, 1]."""
    arrays = [np.asarray(c) for c in clips]
    scale = 255.0 if arrays[0].dtype == np.uint8 else 1.0
    return torch.from_numpy(np.stack(arrays).astype(np.float32) / scale).permute(0, 4, 1, 2, 3)


def temporal_flickering(clip: np.ndarray) -> float:
    """VBench's temporal flickering of one F x H x W x 3 clip: 1 - mean |frame_i+1 - frame_i| / 255."""
    frames = to_uint8_frames(clip).astype(np.float64)
    return float((255.0 - np.abs(np.diff(frames, axis=0)).mean()) / 255.0)


def motion(clip: np.ndarray) -> float:
    """Mean of the top 5 % Farneback flow magnitudes between consecutive frames (px per frame)."""
    import cv2

    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in to_uint8_frames(clip)]
    magnitudes = []
    for a, b in zip(gray, gray[1:]):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=2, winsize=9, iterations=3,
                                            poly_n=5, poly_sigma=1.1, flags=0)
        magnitudes.append(np.linalg.norm(flow, axis=2).ravel())
    values = np.concatenate(magnitudes)
    top = values[values >= np.quantile(values, 0.95)]
    return float(top.mean())


VIDEO_MEASURES = {"flicker": temporal_flickering, "motion": motion}
