"""Train the Moving Shapes video preference reward (rats_app.rewards.video_preference).

    python -m rats_app.worlds.moving_shapes.train_reward --out assets/moving-shapes-reward

Each training item is a training prompt p with its clean clip (preferred) and eight rejected
clips: a clean clip of a prompt one attribute away (direction included), the clean clip played
backwards, and the same clip (same path) with each of the six degradations of the contract. The
loss is the contrastive loss on (clean clip, prompt) plus PickScore's preference loss for every
pair. Only training prompts are used; held-out prompts (and fresh renders) measure it.

The blur pair draws sigma from a wider range than the contract's 0.5-1 px (from 0.3 px), for the
lesson of Shapes World: a few-step student is softer than clean but sharper than the world's
degradations, and the reward must still have a slope there.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rats_app import fields as config_fields
from rats_app.fields import option
from rats_app.io import write_json
from rats_app.rewards.video_preference import (
    VideoPreferenceModel,
    VideoPreferenceReward,
    VideoRewardConfig,
    save_video_preference,
)
from rats_app.training.loop import Stage, run_stage
from rats_app.training.schedules import lr_scheduler
from rats_app.worlds.moving_shapes.prompts import (
    Scene,
    held_out_prompts,
    neighbours,
    parse_prompt,
    training_prompts,
    vocabulary,
)
from rats_app.worlds.moving_shapes.render import (
    DEGRADATION_KINDS,
    Degradation,
    Sample,
    make_degradation,
    render_clip,
    sample_placement,
)
from rats_app.worlds.pretraining import preference_loss
from rats_app.worlds.tokenizers import clip_tokenizer

REJECTED = ("wrong_prompt", "reversed", *DEGRADATION_KINDS)  # the rejected clip of each pair, in order
MAX_LENGTH = 16


@dataclass
class VideoRewardTrainConfig:
    seed: int = option(0, "seed of the renders, pairs and initial weights", low=0)
    steps: int = option(3000, "optimisation steps", low=1)
    batch: int = option(16, "prompts per step (each with its nine clips)", low=1)
    lr: float = option(1e-3, "AdamW learning rate (warm-up 200 steps, cosine to 0)", low=0.0, low_open=True)
    hidden: int = option(64, "width of every tower", low=8)
    patch: int = option(8, "per-frame vision patch size (px; sub-patch positions survive the linear patch embedding)",
                        low=1)
    vision_layers: int = option(3, "per-frame vision transformer layers", low=1)
    temporal_layers: int = option(2, "temporal transformer layers", low=1)
    soft_blur_min: float = option(0.3, "lowest blur sigma (px) of the blur pair (the contract's range starts at 0.5)",
                                  low=0.0, low_open=True)
    threads: int = option(2, "torch CPU threads", low=1)
    checkpoint_every: int = option(250, "steps between resumable checkpoints", low=1)
    eval_pairs: int = option(1000, "fresh pairs of each kind measured at the end, training and held-out prompts",
                             low=1)

    def __post_init__(self) -> None:
        config_fields.validate(self)


def build_tokenizer():
    return clip_tokenizer(vocabulary(), MAX_LENGTH)


def build_reward(cfg: VideoRewardTrainConfig) -> VideoPreferenceReward:
    torch.manual_seed(cfg.seed)
    tokenizer = build_tokenizer()
    config = VideoRewardConfig.for_tokenizer(tokenizer, hidden=cfg.hidden, patch=cfg.patch, vision_layers=cfg.vision_layers,
                                             temporal_layers=cfg.temporal_layers)
    return VideoPreferenceReward(VideoPreferenceModel(config), tokenizer, name="moving-shapes")


def _wrong_scene(scene: Scene, rng: np.random.Generator) -> Scene:
    """A scene one attribute away; a training scene's negative is never a held-out scene."""
    options = [s for s in neighbours(scene) if scene.held_out or not s.held_out]
    return options[rng.integers(len(options))]


def _degraded(kind: str, rng: np.random.Generator, soft_blur_min: float) -> Degradation:
    if kind == "blur":
        return Degradation(blur_sigma=float(rng.uniform(soft_blur_min, 1.0)))
    return make_degradation((kind,), rng)


def _as_tensor(clips: list[np.ndarray]) -> torch.Tensor:
    """uint8 F x H x W x 3 clips -> B x 3 x F x H x W in [0, 1]."""
    return torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).float() / 255.0


def make_pairs(prompts: list[str], n: int, rng: np.random.Generator,
               soft_blur_min: float = 0.3) -> tuple[list[str], torch.Tensor, dict[str, torch.Tensor]]:
    """n prompts with their clean clip and one rejected clip of each kind in REJECTED."""
    chosen, good, rejected = [], [], {k: [] for k in REJECTED}
    for i in rng.integers(len(prompts), size=n):
        scene = parse_prompt(prompts[i])
        placement = sample_placement(scene, rng)
        clean = render_clip(Sample(scene, placement))
        other = _wrong_scene(scene, rng)
        chosen.append(scene.prompt)
        good.append(clean)
        rejected["wrong_prompt"].append(render_clip(Sample(other, sample_placement(other, rng))))
        rejected["reversed"].append(clean[::-1].copy())
        for kind in DEGRADATION_KINDS:
            rejected[kind].append(render_clip(Sample(scene, placement, _degraded(kind, rng, soft_blur_min))))
    return chosen, _as_tensor(good), {k: _as_tensor(v) for k, v in rejected.items()}


@torch.no_grad()
def pairwise_accuracy(reward: VideoPreferenceReward, prompts: list[str], n: int, seed: int,
                      soft_blur_min: float = 0.5) -> dict[str, float]:
    """How often the clean right clip outscores each kind of rejected clip (blur from the contract's
    0.5 px by default: the measure is the contract's, not the training range)."""
    chosen, good, rejected = make_pairs(prompts, n, np.random.default_rng(seed), soft_blur_min)
    s_good = torch.cat([reward.score(good[i:i + 100], chosen[i:i + 100]) for i in range(0, n, 100)])
    accuracy = {}
    for kind, clips in rejected.items():
        s_bad = torch.cat([reward.score(clips[i:i + 100], chosen[i:i + 100]) for i in range(0, n, 100)])
        accuracy[kind] = round((s_good > s_bad).float().mean().item(), 4)
    return accuracy


def train(cfg: VideoRewardTrainConfig, out: Path, work: Path) -> dict:
    """Train (resumably, in ``work``), save the reward to ``out``, measure it on fresh pairs."""
    torch.set_num_threads(cfg.threads)
    reward = build_reward(cfg)
    model = reward.model.requires_grad_(True).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    scheduler = lr_scheduler(optimizer, "cosine", cfg.steps, warmup_steps=200)
    prompts = training_prompts()

    def loss_fn(step: int):
        with torch.no_grad():  # CLIP's convention: the scale stays within [1, 100]
            model.logit_scale.clamp_(0, math.log(100))
        chosen, good, rejected = make_pairs(prompts, cfg.batch, np.random.default_rng([cfg.seed, step]),
                                            cfg.soft_blur_min)
        text = reward.embed_text(chosen)
        scale = model.logit_scale.exp()
        clips = reward.embed_clips(torch.cat([good, *rejected.values()]))
        s_all = scale * (clips.reshape(len(REJECTED) + 1, cfg.batch, -1) * text).sum(-1)
        logits = scale * clips[:cfg.batch] @ text.T
        target = torch.tensor([chosen.index(p) for p in chosen])  # duplicate prompts: the first match
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        for s_bad in s_all[1:]:
            loss = loss + preference_loss(s_all[0], s_bad)
        return loss, {"scale": round(scale.item(), 2)}

    stage = Stage("reward", cfg.steps, checkpoint_every=cfg.checkpoint_every, log_every=50, max_grad_norm=math.inf)
    started = time.time()
    run_stage(work, stage, {"reward": model}, optimizer, scheduler, loss_fn)
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))
    model.requires_grad_(False).eval()
    save_video_preference(reward, out)  # before evaluation, so nothing trained is lost
    metrics = {"train_prompts_fresh_renders": pairwise_accuracy(reward, prompts, cfg.eval_pairs, seed=10_001),
               "held_out_prompts": pairwise_accuracy(reward, held_out_prompts(), cfg.eval_pairs, seed=10_002),
               "train_seconds": round(time.time() - started, 1)}
    write_json(out / "training.json", {"config": asdict(cfg), "metrics": metrics})
    print(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> int:
    from rats_app.worlds.pretraining import config_cli

    args, cfg = config_cli(argv, prog="python -m rats_app.worlds.moving_shapes.train_reward", doc=__doc__,
                           config_cls=VideoRewardTrainConfig, out="assets/moving-shapes-reward",
                           work_dir="runs/moving-shapes-reward")
    train(cfg, args.out, args.work_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
