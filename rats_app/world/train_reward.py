"""Train the Shapes World preference reward: a tiny CLIP with a PickScore-style objective.

    python -m rats_app.world.train_reward --out assets/shapes-reward

Each training item is a prompt p with three images: a clean render of p (preferred), a degraded
render of p, and a clean render of a prompt that differs from p in one attribute. The loss is the
CLIP contrastive loss on (clean image, prompt) plus PickScore's preference loss (softmax over the
two scores of a pair, cross-entropy toward the preferred image) for both kinds of pair. Only
training prompts are used; held-out prompts measure generalisation.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel

from rats_app.io import write_json
from rats_app.rewards.base import ImageNormalization
from rats_app.rewards.clip_preference import ClipPreferenceReward
from rats_app.world.model import build_clip_tokenizer
from rats_app.world.prompts import ATTRIBUTES, BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES, Scene, held_out_prompts, parse_prompt, training_prompts
from rats_app.world.render import Sample, render_scene, sample_degradation, sample_placement

# Pixels in [0, 1] are mapped to [-1, 1]: the world has no natural-image statistics to match.
WORLD_NORMALIZATION = ImageNormalization(64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_CHOICES = {"size": SIZES, "color": COLORS, "shape": SHAPES, "position": POSITIONS, "background": BACKGROUNDS}


@dataclass
class RewardTrainConfig:
    seed: int = 0
    steps: int = 2000
    batch: int = 32
    lr: float = 1e-3
    hidden: int = 64
    layers: int = 3
    patch: int = 8
    threads: int = 2


def build_reward_model(cfg: RewardTrainConfig, tokenizer) -> CLIPModel:
    """A tiny CLIP. The text tower pools at the EOS token, so its id must be the tokenizer's
    (CLIP's default 49407 is not in our vocabulary and would pool the BOS token instead)."""
    torch.manual_seed(cfg.seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=2 * cfg.hidden,
                         num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=tokenizer.model_max_length,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(image_size=64, patch_size=cfg.patch, hidden_size=cfg.hidden,
                           intermediate_size=2 * cfg.hidden, num_hidden_layers=cfg.layers, num_attention_heads=4),
        projection_dim=cfg.hidden,
    )
    return CLIPModel(config)


def _neighbour(scene: Scene, rng: np.random.Generator) -> Scene:
    """The same scene with exactly one attribute changed (a hard negative).

    For a training scene the negative is never a held-out scene (those stay unseen in
    pretraining); a held-out scene (evaluation only) may get any neighbour.
    """
    attribute = ATTRIBUTES[rng.integers(len(ATTRIBUTES))]
    options = [Scene(**{**scene.__dict__, attribute: v}) for v in _CHOICES[attribute] if v != getattr(scene, attribute)]
    if not scene.held_out:
        options = [o for o in options if not o.held_out]
    return options[rng.integers(len(options))]


def make_triplets(prompts: list[str], n: int, rng: np.random.Generator):
    """n (prompt, clean right image, degraded right image, clean wrong image) as [0, 1] tensors."""
    chosen, good, degraded, wrong = [], [], [], []
    for i in rng.integers(len(prompts), size=n):
        scene = parse_prompt(prompts[i])
        other = _neighbour(scene, rng)
        chosen.append(scene.prompt)
        good.append(render_scene(Sample(scene, sample_placement(scene, rng))))
        degraded.append(render_scene(Sample(scene, sample_placement(scene, rng), sample_degradation(rng, 1.0))))
        wrong.append(render_scene(Sample(other, sample_placement(other, rng))))
    as_tensor = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
    return chosen, as_tensor(good), as_tensor(degraded), as_tensor(wrong)


def preference_loss(preferred: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """PickScore: cross-entropy of softmax([s_preferred, s_rejected]) toward the preferred one."""
    return F.cross_entropy(torch.stack([preferred, rejected], dim=1),
                           torch.zeros(len(preferred), dtype=torch.long, device=preferred.device))


@torch.no_grad()
def pairwise_accuracy(reward: ClipPreferenceReward, prompts: list[str], n: int, seed: int) -> dict[str, float]:
    chosen, good, degraded, wrong = make_triplets(prompts, n, np.random.default_rng(seed))
    s_good = reward.score(good, chosen)
    return {"right_vs_wrong_prompt": (s_good > reward.score(wrong, chosen)).float().mean().item(),
            "clean_vs_degraded": (s_good > reward.score(degraded, chosen)).float().mean().item()}


def train(cfg: RewardTrainConfig, out: Path) -> dict:
    torch.set_num_threads(cfg.threads)
    tokenizer = build_clip_tokenizer()
    model = build_reward_model(cfg, tokenizer)
    reward = ClipPreferenceReward(model, tokenizer, WORLD_NORMALIZATION, name="shapes")
    model.train().requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    prompts = training_prompts()
    started = time.time()
    for step in range(cfg.steps):
        rng = np.random.default_rng([cfg.seed, step])
        for group in opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / 200) * (0.5 * (1 + np.cos(np.pi * step / cfg.steps)))
        chosen, good, degraded, wrong = make_triplets(prompts, cfg.batch, rng)
        text = reward.embed_text(chosen)
        scale = model.logit_scale.exp()
        img_good = reward.embed_images(good)
        logits = scale * img_good @ text.T
        # Duplicate prompts in a batch are positives too: target the first matching column.
        target = torch.tensor([chosen.index(p) for p in chosen])
        contrastive = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        s_good = scale * (img_good * text).sum(-1)
        s_degraded = scale * (reward.embed_images(degraded) * text).sum(-1)
        s_wrong = scale * (reward.embed_images(wrong) * text).sum(-1)
        loss = contrastive + preference_loss(s_good, s_degraded) + preference_loss(s_good, s_wrong)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        if (step + 1) % 100 == 0:
            print(json.dumps({"step": step + 1, "loss": round(loss.item(), 4), "scale": round(scale.item(), 2),
                              "s": round(time.time() - started, 1)}), flush=True)
    model.eval().requires_grad_(False)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # safetensors; saved before evaluation so nothing trained is lost
    tokenizer.save_pretrained(out)
    write_json(out / "preprocessor_config.json", {"image_mean": list(WORLD_NORMALIZATION.mean),
                                                  "image_std": list(WORLD_NORMALIZATION.std), "size": 64})
    train_seconds = round(time.time() - started, 1)
    metrics = {"train_prompts_fresh_renders": pairwise_accuracy(reward, prompts, 1000, seed=10_001),
               "held_out_prompts": pairwise_accuracy(reward, held_out_prompts(), 1000, seed=10_002),
               "train_seconds": train_seconds}
    write_json(out / "training.json", {"config": asdict(cfg), "metrics": metrics})
    print(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("assets/shapes-reward"))
    for f in fields(RewardTrainConfig):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    args = parser.parse_args(argv)
    train(RewardTrainConfig(**{f.name: getattr(args, f.name) for f in fields(RewardTrainConfig)}), args.out)


if __name__ == "__main__":
    main()
