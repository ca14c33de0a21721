"""The VAE's fidelity by the ground-truth checker: reconstructions of fresh renders, half degraded —
the ceiling any generator on this VAE has."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL

from rats_app.worlds.shapes.checker import check_image, summarize
from rats_app.worlds.shapes.data import sample_batch, to_uint8
from rats_app.worlds.shapes.prompts import training_prompts


@torch.no_grad()
def vae_report(vae: AutoencoderKL, n: int = 128, seed: int = 99) -> dict:
    samples, x, _ = sample_batch(training_prompts(), n, np.random.default_rng(seed), p_degraded=0.5)
    recon = to_uint8(vae.decode(vae.encode(x.to(vae.device)).latent_dist.mode()).sample)
    checks = [check_image(im, s.scene.prompt) for im, s in zip(recon, samples)]
    clean_in = [s.degradation.clean for s in samples]
    summary = summarize(checks)
    summary["clean_inputs_judged_clean"] = float(np.mean([c.clean for c, k in zip(checks, clean_in) if k]))
    summary["degraded_inputs_judged_degraded"] = float(np.mean([not c.clean for c, k in zip(checks, clean_in) if not k]))
    return summary


def print_reports(work: Path) -> None:
    """The report for each VAE stage that exists in the work dir."""
    for name in ("vae", "vae_decoder_1", "vae_decoder"):
        if (work / name / "config.json").exists():
            print(name, json.dumps(vae_report(AutoencoderKL.from_pretrained(work / name))))
