"""Train the Shapes World preference reward: a tiny CLIP with a PickScore-style objective.

    python -m rats_app.worlds.shapes.train_reward --out assets/shapes-reward

Each training item is a prompt p with four images: a clean render of p (preferred), a degraded
render of p, a clean render of a prompt that differs from p in one attribute, and the clean render
itself softened by a mild blur (sigma 0.4-1 px by default), and (v3) the clean render with one
reward-hacking artefact painted on (rats_app.worlds.artefacts). The loss is the CLIP contrastive loss on
(clean image, prompt) plus PickScore's preference loss (softmax over the two scores of a pair,
cross-entropy toward the preferred image) for all three kinds of pair. Only training prompts are
used; held-out prompts measure generalisation.

Why the soft pair: the world's degradations blur by sigma 1-2 px, which moves an anti-aliased edge
from ~0.8 px wide to >= 2.3 px. A generator's softness sits in between (a 3-step student's edges are
~1.7-2.2 px wide), where a reward trained only on the world's degradations is nearly flat, so it
cannot tell the student to sharpen. The soft pair puts the reward's slope there.

Why the artefact pair: students trained on the v2 reward beat their teacher on it by painting dark
rims, tinted edges and faint textures that the ground truth reads as residual (issue 19). The v2
reward had never seen such images; v3 ranks each below the clean render.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel

from rats_app import fields as config_fields
from rats_app.errors import ConfigError
from rats_app.fields import option
from rats_app.io import write_json
from rats_app.rewards.base import ImageNormalization
from rats_app.rewards.clip_preference import ClipPreferenceReward
from rats_app.training.loop import Stage, run_stage
from rats_app.training.schedules import lr_scheduler
from rats_app.worlds.artefacts import ARTEFACTS, COLOUR_CASTS, apply_artefact
from rats_app.worlds.palette import BACKGROUNDS as BACKGROUND_RGB
from rats_app.worlds.pretraining import preference_loss
from rats_app.worlds.shapes.data import to_uint8
from rats_app.worlds.shapes.model import build_clip_tokenizer
from rats_app.worlds.shapes.prompts import (
    ATTRIBUTES,
    BACKGROUNDS,
    COLORS,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    held_out_prompts,
    parse_prompt,
    training_prompts,
)
from rats_app.worlds.shapes.render import Degradation, Sample, render_scene, sample_degradation, sample_placement

# Pixels in [0, 1] are mapped to [-1, 1]: the world has no natural-image statistics to match.
WORLD_NORMALIZATION = ImageNormalization(64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_CHOICES = {"size": SIZES, "color": COLORS, "shape": SHAPES, "position": POSITIONS, "background": BACKGROUNDS}


@dataclass
class RewardTrainConfig:
    seed: int = option(0, "seed of the renders, pairs and initial weights", low=0)
    steps: int = option(3000, "optimisation steps", low=1)
    batch: int = option(32, "prompts per step (each with its four images)", low=1)
    lr: float = option(1e-3, "AdamW learning rate (warm-up 200 steps, cosine to 0)", low=0.0, low_open=True)
    hidden: int = option(64, "width of both towers", low=4)
    layers: int = option(3, "vision transformer layers", low=1)
    patch: int = option(8, "vision patch size (px)", low=1)
    threads: int = option(2, "torch CPU threads", low=1)
    soft_blur_min: float = option(0.4, "sigma range (px) of the mild blur in the clean-vs-soft pair", low=0.0,
                                  low_open=True)
    soft_blur_max: float = option(1.0, "upper end of that range", low=0.0, low_open=True)
    soft_weight: float = option(0.5, "weight of the clean-vs-soft pair; 0 = the v1 reward (1.0 cost 7 points of "
                                "prompt accuracy)", low=0.0)
    artefact_weight: float = option(0.5, "weight of the clean-vs-artefact pair (the clean render against itself "
                                    "with a dark rim, a bright halo, a tinted edge, over-sharpening or a faint "
                                    "texture: what reward-hacked students paint); 0 = the v2 reward", low=0.0)
    colour_casts: bool = option(False, "draw the artefact from the hacks and an object colour cast (12-40 "
                                "levels off the palette; the v3 reward is nearly blind to it)")
    cast_weight: float = option(0.0, "weight of a clean-vs-cast pair of its own: each clean right image against "
                                "itself with the object 12-40 levels off the palette (what 2-step students drift "
                                "to, and what one artefact in seven teaches only to 75 %); 0 = none", low=0.0)
    init: str = option("", "start from this reward directory's weights (e.g. assets/shapes-reward, to fine-tune "
                       "the shipped reward against a new pair); empty = random")
    checkpoint_every: int = option(500, "steps between resumable checkpoints", low=1)

    def __post_init__(self) -> None:
        config_fields.validate(self)
        if self.soft_blur_min > self.soft_blur_max:
            raise ConfigError(f"soft_blur_min/max must satisfy min <= max, got {self.soft_blur_min}, "
                              f"{self.soft_blur_max}")


def build_reward_model(cfg: RewardTrainConfig, tokenizer) -> CLIPModel:
    """A tiny CLIP (with ``cfg.init``: that saved reward's weights). The text tower pools at the EOS
    token, so its id must be the tokenizer's (CLIP's default 49407 is not in our vocabulary and would
    pool the BOS token instead)."""
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
    model = CLIPModel(config)
    if cfg.init:
        from safetensors.torch import load_file

        weights = Path(cfg.init) / "model.safetensors"
        if not weights.is_file():
            raise ConfigError(f"init: {cfg.init!r} has no model.safetensors (a directory train_reward wrote)")
        model.load_state_dict(load_file(weights))  # strict: a different architecture is named here
    return model


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


def _as_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def with_object_casts(good: torch.Tensor, chosen: list[str], rng: np.random.Generator) -> torch.Tensor:
    """The clean renders ([0, 1], exact multiples of 1/255) with their objects cast off the palette."""
    return _as_tensor([apply_artefact(image, BACKGROUND_RGB[parse_prompt(p).background], rng, "object_cast")
                       for image, p in zip(to_uint8(good * 2 - 1), chosen)])


def make_triplets(prompts: list[str], n: int, rng: np.random.Generator, soft_blur: tuple[float, float] | None = None,
                  artefacts: bool | str | tuple[str, ...] = False):
    """n (prompt, clean right image, degraded right image, clean wrong image) as [0, 1] tensors.

    With ``soft_blur=(lo, hi)`` a fifth item follows: each clean right image blurred by a sigma
    drawn from [lo, hi] (same scene and placement, so sharpness is the only difference). With
    ``artefacts`` (True: one drawn per image from ARTEFACTS; a tuple: from those kinds; or one kind's
    name) another follows: each clean right image with a hacking artefact. Their draws come from
    child generators, so the first four items do not depend on either, nor the soft item on
    ``artefacts``."""
    child_seed = rng.integers(2**63)  # drawn either way: same items 1-4
    soft_rng, artefact_rng = np.random.default_rng(child_seed), np.random.default_rng([child_seed, 1])
    chosen, good, degraded, wrong, soft, hacked = [], [], [], [], [], []
    for i in rng.integers(len(prompts), size=n):
        scene = parse_prompt(prompts[i])
        other = _neighbour(scene, rng)
        chosen.append(scene.prompt)
        placement = sample_placement(scene, rng)
        good.append(render_scene(Sample(scene, placement)))
        degraded.append(render_scene(Sample(scene, sample_placement(scene, rng), sample_degradation(rng, 1.0))))
        wrong.append(render_scene(Sample(other, sample_placement(other, rng))))
        if soft_blur:
            sigma = float(soft_rng.uniform(*soft_blur))
            soft.append(render_scene(Sample(scene, placement, Degradation(blur_sigma=sigma))))
        if artefacts:
            kind = artefacts if isinstance(artefacts, str) else None
            kinds = artefacts if isinstance(artefacts, tuple) else ARTEFACTS
            hacked.append(apply_artefact(good[-1], BACKGROUND_RGB[scene.background], artefact_rng, kind, kinds))
    items = (chosen, _as_tensor(good), _as_tensor(degraded), _as_tensor(wrong))
    items += (_as_tensor(soft),) if soft_blur else ()
    return items + ((_as_tensor(hacked),) if artefacts else ())


@torch.no_grad()
def pairwise_accuracy(reward: ClipPreferenceReward, prompts: list[str], n: int, seed: int,
                      soft_blur: tuple[float, float] | None = None) -> dict[str, float]:
    """How often the reward ranks the clean right image above each kind of rejected image
    (``soft_blur`` defaults to the training config's range), each hacking artefact included."""
    soft_blur = soft_blur or (RewardTrainConfig.soft_blur_min, RewardTrainConfig.soft_blur_max)
    chosen, good, degraded, wrong, soft = make_triplets(prompts, n, np.random.default_rng(seed), soft_blur)
    s_good = reward.score(good, chosen)
    accuracy = {"right_vs_wrong_prompt": (s_good > reward.score(wrong, chosen)).float().mean().item(),
                "clean_vs_degraded": (s_good > reward.score(degraded, chosen)).float().mean().item(),
                "clean_vs_soft": (s_good > reward.score(soft, chosen)).float().mean().item()}
    for kind in ARTEFACTS + COLOUR_CASTS:
        chosen, good, *_, hacked = make_triplets(prompts, n, np.random.default_rng(seed), None, kind)
        accuracy[f"clean_vs_{kind}"] = (reward.score(good, chosen) > reward.score(hacked, chosen)).float().mean().item()
    return accuracy


def train(cfg: RewardTrainConfig, out: Path, work: Path) -> dict:
    """Train (resumably, in ``work``), save the reward to ``out``, measure it on fresh pairs."""
    torch.set_num_threads(cfg.threads)
    tokenizer = build_clip_tokenizer()
    model = build_reward_model(cfg, tokenizer)
    reward = ClipPreferenceReward(model, tokenizer, WORLD_NORMALIZATION, name="shapes")
    model.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    scheduler = lr_scheduler(optimizer, "cosine", cfg.steps, warmup_steps=200)
    prompts = training_prompts()
    soft_blur = (cfg.soft_blur_min, cfg.soft_blur_max) if cfg.soft_weight > 0 else None  # no unused renders
    kinds = ARTEFACTS + COLOUR_CASTS if cfg.colour_casts else ARTEFACTS  # ARTEFACTS: the v3 reward's draws
    artefacts = kinds if cfg.artefact_weight > 0 else False

    def loss_fn(step: int):
        with torch.no_grad():  # CLIP's convention, applied before each step: the scale stays within [1, 100]
            model.logit_scale.clamp_(0, np.log(100))
        chosen, good, degraded, wrong, *extra = make_triplets(prompts, cfg.batch, np.random.default_rng([cfg.seed, step]),
                                                              soft_blur, artefacts)
        soft, hacked = extra[:1] if soft_blur else [], extra[-1:] if artefacts else []
        text = reward.embed_text(chosen)
        scale = model.logit_scale.exp()
        img_good = reward.embed_images(good)
        logits = scale * img_good @ text.T
        # Duplicate prompts in a batch are positives too: target the first matching column.
        target = torch.tensor([chosen.index(p) for p in chosen])
        contrastive = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        s_good = scale * (img_good * text).sum(-1)

        def good_over(rejected: torch.Tensor) -> torch.Tensor:
            """The preference loss of each clean right image over its rejected counterpart."""
            return preference_loss(s_good, scale * (reward.embed_images(rejected) * text).sum(-1))
        loss = contrastive + good_over(degraded) + good_over(wrong)
        if soft:
            loss = loss + cfg.soft_weight * good_over(soft[0])
        if hacked:
            loss = loss + cfg.artefact_weight * good_over(hacked[0])
        if cfg.cast_weight > 0:  # its own draws: the pairs above are the same with or without it
            loss = loss + cfg.cast_weight * good_over(with_object_casts(good, chosen,
                                                                        np.random.default_rng([cfg.seed, step, 2])))
        return loss, {"scale": scale.item()}

    stage = Stage("reward", cfg.steps, checkpoint_every=cfg.checkpoint_every, log_every=100, max_grad_norm=math.inf)
    started = time.time()
    run_stage(work, stage, {"reward": model}, optimizer, scheduler, loss_fn)
    with torch.no_grad():
        model.logit_scale.clamp_(0, np.log(100))
    model.requires_grad_(False)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # safetensors; saved before evaluation so nothing trained is lost
    tokenizer.save_pretrained(out)
    write_json(out / "preprocessor_config.json", {"image_mean": list(WORLD_NORMALIZATION.mean),
                                                  "image_std": list(WORLD_NORMALIZATION.std), "size": 64})
    metrics = {"train_prompts_fresh_renders": pairwise_accuracy(reward, prompts, 1000, seed=10_001),
               "held_out_prompts": pairwise_accuracy(reward, held_out_prompts(), 1000, seed=10_002),
               "train_seconds": round(time.time() - started, 1)}
    write_json(out / "training.json", {"config": asdict(cfg), "metrics": metrics})
    print(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> int:
    from rats_app.worlds.pretraining import config_cli

    args, cfg = config_cli(argv, prog="python -m rats_app.worlds.shapes.train_reward", doc=__doc__,
                           config_cls=RewardTrainConfig, out="assets/shapes-reward", work_dir="runs/shapes-reward")
    train(cfg, args.out, args.work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
