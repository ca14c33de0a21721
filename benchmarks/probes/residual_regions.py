"""Where Shapes World's fit residual lives: object edge, object interior or background.

    python benchmarks/probes/residual_regions.py EVAL_DIR [--prompts world-train] [--images 60] [--vae DIR] [--match-sigma S]

EVAL_DIR: an `rats_app.evaluate --out-dir` run on the same prompts, count and seed 0 (its images/).
For each image the checker's fit (rats_app.worlds.fidelity) is redone, and its squared residual is
split by where the pixel lies against the fitted (unblurred) shape: the edge band (within 1.5 px of
the outline, inside or out: rims, halos, ringing), the interior and the background beyond it
(texture, stray marks). Each column is that region's share in RMS units, so the three squared add up
to the residual squared; `bg std` is the background's own spread around its fitted colour. With --vae
(e.g. assets/shapes-flux/vae) two reference rows come first: clean renders of the same prompts and
that VAE's reconstructions of them, the floor a generator decoding through it starts from. With
--match-sigma S every image sharper than S is first blurred to it (a Gaussian of sqrt(S² − σ²) on top of
its fitted σ): the residual of images at equal sharpness, so a sharp image's edges, which leave more
residual for the same misplacement, are not counted against it.
"""
from pathlib import Path

import numpy as np
from _eval_dir import eval_dir_args, fit_image  # run as a script: its folder is on sys.path
from PIL import Image
from scipy.ndimage import distance_transform_edt

from rats_app.worlds.fidelity import _colours, _soft_coverage
from rats_app.worlds.raster import coverage, gaussian_blur
from rats_app.worlds.shapes.checker import fit_scene

EDGE_PX = 1.5

args, prompts = eval_dir_args(__doc__, lambda parser: (parser.add_argument("--vae", type=Path),
                                                        parser.add_argument("--match-sigma", type=float, default=0.0)))


def regions(image: np.ndarray, prompt: str) -> tuple[float, ...] | None:
    fitted = fit_image(image, prompt)
    if fitted is None:
        return None
    scene, box, fit = fitted
    if fit.sigma < args.match_sigma:
        image = gaussian_blur(image, float(np.sqrt(args.match_sigma ** 2 - fit.sigma ** 2)))
        fit = fit_scene(image, scene, box)
    canvas = image.shape[0]
    soft = _soft_coverage(scene.shape, np.array([fit.cx, fit.cy, fit.side, fit.sigma]), canvas)
    background, obj, _ = _colours(image, soft)
    model = background * (1 - soft[..., None]) + obj * soft[..., None]
    squared = ((image - model) ** 2).sum(-1)
    inside = coverage(scene.shape, fit.cx, fit.cy, fit.side, canvas) > 0.5
    distance = np.where(inside, distance_transform_edt(inside), distance_transform_edt(~inside))
    edge = distance <= EDGE_PX
    parts = [squared[edge].sum(), squared[inside & ~edge].sum(), squared[~inside & ~edge].sum()]
    return (fit.residual, *(float(np.sqrt(p / image.size)) for p in parts),
            float(np.sqrt(squared[~inside & ~edge].mean() / 3)))


def reference_sets() -> dict[str, list[np.ndarray]]:
    """Clean renders of the prompts and the VAE's reconstructions of them (benchmarks/probes/_renders)."""
    from _renders import reconstruct  # run as a script: its folder is on sys.path
    from diffusers import AutoencoderKL

    from rats_app.worlds.shapes.render import render_scene, sample_scene

    rng = np.random.default_rng(0)
    samples = [sample_scene(p, rng, p_degraded=0.0) for p in prompts]
    recon, _, _ = reconstruct(AutoencoderKL.from_pretrained(args.vae).eval(), samples)
    return {"clean render": [np.asarray(render_scene(s), np.float64) for s in samples],
            "VAE reconstruction": [np.asarray(r, np.float64) for r in recon]}


def row(name: str, nfe: str, images: list[np.ndarray]) -> str:
    r = np.median(np.array([x for x in (regions(i, p) for i, p in zip(images, prompts)) if x is not None]), axis=0)
    return f"| {name} | {nfe} | " + " | ".join(f"{v:.2f}" for v in r) + " |"


print(f"| variant | NFE | residual (median) | edge band ≤ {EDGE_PX} px | interior | background | bg std |\n"
      "|---|---|---|---|---|---|---|")
for name, images in (reference_sets() if args.vae else {}).items():
    print(row(name, "", images))
for folder in sorted(args.eval_dir.glob("images/*/nfe*")):
    print(row(folder.parent.name, str(int(folder.name[3:])),
              [np.asarray(Image.open(folder / f"{i:04d}.png").convert("RGB"), np.float64) for i in range(len(prompts))]))
