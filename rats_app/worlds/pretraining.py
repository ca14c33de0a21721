"""What both worlds' pretraining shares: losses and draws (images B x C x H x W, clips
B x C x F x H x W), the stage runner and its command line.

Lessons from making the Shapes World teacher (docs/shapes-world.md): the object covers a few
percent of the canvas, so unweighted losses are dominated by the flat background and leave object
colours and edges off; weighting the object's pixels (VAE) and tokens (transformer) fixes that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
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


def object_pixel_weights(target: torch.Tensor, object_weight: float, per_object: bool = False) -> torch.Tensor:
    """1 + object_weight on the object's pixels. ``per_object``: scaled per sample by the batch's mean
    object area over this sample's, so that a small object weighs as much in all as a large one
    (per pixel, an 8 px square has about a third of a large one's total weight)."""
    mask = object_mask(target)
    if per_object:
        area = mask.flatten(1).mean(dim=1).clamp_min(1e-4)
        mask = mask * (area.mean() / area).view(-1, *[1] * (mask.ndim - 1))
    return 1.0 + object_weight * mask


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                        edge_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 + MSE weighted per pixel (``weight``: object_pixel_weights of the target, which a caller may
    reuse for other terms) plus an L1 on spatial gradients (keeps edges sharp)."""
    error = recon - target
    pixel = (weight * error.abs()).mean() + (weight * error.pow(2)).mean()
    gx, gy = spatial_gradients(recon)
    tx, ty = spatial_gradients(target)
    edge = F.l1_loss(gx, tx) + F.l1_loss(gy, ty)
    return pixel + edge_weight * edge, {"pixel": pixel.item(), "edge": edge.item()}


def flow_times(batch: int, generator: torch.Generator, shift: float = 1.0) -> torch.Tensor:
    """Training times in (0, 1): half logit-normal (the middle of the path matters most), half
    uniform (covers both ends). ``shift`` > 1 moves them toward the noise end with the same map a
    shifted flow-matching scheduler applies to its sigmas, t -> s t / (1 + (s - 1) t)."""
    uniform = torch.rand(batch, generator=generator)
    pick_logit_normal = torch.rand(batch, generator=generator) < 0.5
    t = torch.where(pick_logit_normal, torch.sigmoid(torch.randn(batch, generator=generator)), uniform)
    return shift * t / (1 + (shift - 1) * t)


def drop_prompts(prompts: list[str], probability: float, generator: torch.Generator) -> list[str]:
    """Replace a share of the prompts by "" so the model learns the unconditional velocity CFG needs."""
    if probability <= 0:
        return prompts
    drop = torch.rand(len(prompts), generator=generator) < probability
    return ["" if d else p for p, d in zip(prompts, drop.tolist())]


def preference_loss(preferred: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """PickScore's objective: cross-entropy of softmax([s_preferred, s_rejected]) toward the preferred one."""
    return F.cross_entropy(torch.stack([preferred, rejected], dim=1),
                           torch.zeros(len(preferred), dtype=torch.long, device=preferred.device))


def encode_pool(work: Path, cfg, prompts: list[str], encode: Callable, chunk: int) -> dict[str, torch.Tensor]:
    """The transformer's fixed data: every training prompt, ``cfg.latents_per_prompt`` renders each,
    encoded once and kept in the work dir. ``encode(prompt_indices, rng)`` renders and encodes one
    chunk and returns its tensors (at least ``latents``)."""
    from rats_app.io import load_tensors, save_tensors

    path = work / "latents.safetensors"
    if path.exists():
        return load_tensors(path)
    rng = np.random.default_rng([cfg.seed, 3])
    order = np.repeat(np.arange(len(prompts)), cfg.latents_per_prompt)
    with torch.no_grad():
        parts = [encode(order[start:start + chunk], rng) for start in range(0, len(order), chunk)]
    data = {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    data["prompt_index"] = torch.from_numpy(order)
    save_tensors(path, data)
    return data


def train_flow_transformer(work: Path, modules: dict[str, torch.nn.Module], cfg, data: dict[str, torch.Tensor],
                           prompts: list[str], loss: Callable, device: torch.device) -> None:
    """The transformer stage both worlds share: AdamW, warm-up then constant (or a late cosine
    decay), EMA weights, and per step a batch of pooled latents whose prompts are dropped to ""
    with ``cfg.uncond_prob``; ``loss(x0, prompts, generator)`` is the family's flow-matching loss."""
    from rats_app.training.loop import Stage, run_stage
    from rats_app.training.schedules import ema_of, lr_scheduler

    params = [p for m in modules.values() for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    scheduler = lr_scheduler(optimizer, "stable-cosine" if cfg.lr_decay_from else "constant", cfg.steps,
                             warmup_steps=cfg.warmup, min_ratio=0.1, decay_from=cfg.lr_decay_from)
    latents, index = data["latents"], data["prompt_index"]

    def loss_fn(step: int):
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # resume == uninterrupted
        pick = torch.randint(len(latents), (cfg.batch,), generator=generator)
        batch_prompts = drop_prompts([prompts[i] for i in index[pick]], cfg.uncond_prob, generator)
        return loss(latents[pick].float().to(device), batch_prompts, generator), {}

    stage = Stage("transformer", cfg.steps, checkpoint_every=cfg.checkpoint_every, log_every=100)
    run_stage(work, stage, modules, optimizer, scheduler, loss_fn, ema=ema_of(params, cfg.ema_decay, warmup=True))


# ---------------------------------------------------------------- the stage runner and its CLI
STAGE_CHOICES = ("all", "vae", "decoder", "transformer", "export", "report")


@dataclass(frozen=True)
class Stages:
    """A world's pretraining stages (each resumes from the work dir or is skipped when done)."""

    train_vae: Callable
    finetune_decoder: Callable
    encode_dataset: Callable
    train_transformer: Callable
    export: Callable
    print_reports: Callable


def run_stages(stage: str, work: Path, out: Path, cfg, stages: Stages) -> None:
    """all = vae, latents, transformer, export; transformer = all but the export; decoder = sharpen
    the VAE decoder (the encoder is frozen, so it can run beside the transformer)."""
    if stage == "report":
        return stages.print_reports(work)
    if stage == "export":
        return stages.export(work, out, cfg)
    if stage == "decoder" and getattr(cfg, "decoder_from", "vae") != "vae":  # starts from an earlier phase
        return stages.finetune_decoder(work, cfg)
    vae = stages.train_vae(work, cfg)
    if stage == "decoder":
        stages.finetune_decoder(work, cfg)
    if stage in ("vae", "decoder"):
        return
    stages.train_transformer(work, vae, stages.encode_dataset(work, vae, cfg), cfg)
    if stage == "all":
        stages.export(work, out, cfg)


def config_cli(argv: list[str] | None, *, prog: str, doc: str, config_cls: type, work_dir: str, out: str,
               extra_arguments=None):
    """``--work-dir DIR [--out DIR] [--key value ...]`` for a resumable world script: a work dir
    resumes with its recorded config, and a value given on the command line overrides it.
    ``extra_arguments(parser)`` adds the script's own options. Returns (args, config)."""
    import argparse
    import json
    from dataclasses import asdict, fields

    from rats_app.errors import ConfigError
    from rats_app.fields import default_of, from_mapping, help_lines
    from rats_app.io import write_json

    parser = argparse.ArgumentParser(prog=prog, description=doc, epilog="config keys:\n" + help_lines(config_cls),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path(work_dir), help="checkpoints, log and config")
    parser.add_argument("--out", type=Path, default=Path(out))
    if extra_arguments:
        extra_arguments(parser)
    for f in fields(config_cls):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(default_of(f)), default=None)
    args = parser.parse_args(argv)
    saved = args.work_dir / "config.json"
    overrides = {f.name: getattr(args, f.name) for f in fields(config_cls) if getattr(args, f.name) is not None}
    try:
        base = json.loads(saved.read_text()) if saved.exists() else {}
        cfg = from_mapping(config_cls, {**base, **overrides})
    except (ConfigError, ValueError) as exc:
        parser.error(f"{saved if saved.exists() else 'config'}: {exc}")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    write_json(saved, asdict(cfg))
    return args, cfg


def pretrain_main(argv: list[str] | None, *, prog: str, doc: str, config_cls: type, stages: Stages,
                  work_dir: str, out: str) -> int:
    """``--work-dir DIR [--stage S] [--out DIR] [--key value ...]`` (``config_cli``)."""
    def stage_argument(parser):
        parser.add_argument("--stage", choices=STAGE_CHOICES, default="all", help=run_stages.__doc__)

    args, cfg = config_cli(argv, prog=prog, doc=doc, config_cls=config_cls, work_dir=work_dir, out=out,
                           extra_arguments=stage_argument)
    torch.set_num_threads(cfg.threads)
    run_stages(args.stage, args.work_dir, args.out, cfg, stages)
    return 0
