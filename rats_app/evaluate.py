"""Evaluate variants x NFEs: every reward (mean, 95 % CI), and on an embedded world the checker's rates.

    python -m rats_app.evaluate --out-dir runs/eval --lora rats=assets/shapes-flux-rats \\
        --prompts world-train --nfe 3 5 8 --teacher-nfe 50 --images 120

Variants: ``baseline`` (the model alone) and every ``--lora NAME=PATH`` at each NFE, plus the
``teacher`` (the model alone at --teacher-nfe). Prompts: the model's world's ``world-train``,
``world-heldout`` or ``world`` (both), or a text file (one prompt per line; e.g. the HPSv2
benchmark prompts). On an embedded world its ground-truth checker scores every image too.
Images are cached as PNGs under --out-dir, so an interrupted run resumes where it stopped; the
missing ones are made --batch at a time (8 on an embedded world's tiny model, where per-call
overhead dominates), each from its own seed.
Writes results.md / results.csv / results.json (rows variant x NFE, deltas vs the baseline at
the same NFE; with the teacher, each row against it paired image by image: the gap with its 95 %
interval and whether it is larger than chance, rats_app.paired), per_image.csv (every image's
scores) and frontier.png (reward vs NFE).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rats_app.errors import UserError, run_cli
from rats_app.io import check_writable, read_prompts, save_png, to_uint8_frames
from rats_app.models import (
    DEFAULT_MODEL,
    check_nfe,
    check_seed,
    lora_record,
    read_model_info,
    resolve_lora,
    trained_call,
)
from rats_app.paired import PAIRED_KEY, add_paired, paired_table


@dataclass(frozen=True)
class Variant:
    name: str
    lora: str | None
    nfe: int


def parse_lora(spec: str) -> tuple[str, str]:
    if "=" not in spec:
        raise UserError(f"--lora takes NAME=PATH, got {spec!r}")
    name, path = spec.split("=", 1)
    if not name or name in ("baseline", "teacher") or not name.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"--lora name {name!r} must be a word other than 'baseline' and 'teacher'")
    return name, str(resolve_lora(path))


def load_prompts(source: str, count: int | None, world=None, seed: int = 0) -> list[str]:
    """A named prompt set of the model's world (world-train, world-heldout, world) or a text file;
    ``count`` draws that many, cycling through all before any repeats."""
    sets = world.prompt_sets() if world is not None else {}
    if source in sets:
        prompts = sets[source]
    elif source in ("world-train", "world-heldout", "world"):
        raise UserError(f"--prompts {source}: this model belongs to no embedded world; give a prompts file")
    else:
        prompts = read_prompts(source)
    if count is None:
        return prompts
    order = np.random.default_rng(seed).permutation(len(prompts))
    return [prompts[order[i % len(prompts)]] for i in range(count)]


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95 % confidence interval."""
    array = np.asarray(values, dtype=float)
    if len(array) < 2:
        return float(array.mean()) if len(array) else float("nan"), float("nan")
    return float(array.mean()), float(1.96 * array.std(ddof=1) / math.sqrt(len(array)))


def run(args: argparse.Namespace) -> list[dict]:
    if args.images is not None and args.images < 1:
        raise UserError(f"--images must be >= 1, got {args.images}")
    if args.batch is not None and args.batch < 1:
        raise UserError(f"--batch must be >= 1, got {args.batch}")
    nfes = sorted({check_nfe(n) for n in args.nfe})
    teacher_nfe = check_nfe(args.teacher_nfe, "--teacher-nfe")
    info = read_model_info(args.model)
    loras = dict(parse_lora(s) for s in args.lora)
    out = Path(args.out_dir)
    check_writable(out)  # before any model loads
    if args.rewards:
        from rats_app.rewards.registry import available_rewards

        unknown = [n for n in args.rewards if n not in available_rewards()]
        if unknown:
            raise UserError(f"--rewards: unknown reward {unknown[0]!r}; known: {', '.join(available_rewards())}")
    check_seed(args.seed, name="--seed")
    prompts = [info.check_prompt(p) for p in load_prompts(args.prompts, args.images, info.world, args.seed)]
    check_seed(args.seed, len(prompts), "--seed")
    if args.loras_only and not loras:
        raise UserError("--loras-only needs at least one --lora NAME=PATH")
    references = [Variant("teacher", None, teacher_nfe)] + [Variant("baseline", None, n) for n in nfes]
    variants = ([] if args.loras_only else references) + [Variant(name, path, n) for name, path in loras.items()
                                                          for n in nfes]

    from tqdm import tqdm

    from rats_app.api import Studio

    studio = Studio(args.model, device=args.device, reward_names=args.rewards or None)
    pipe, _ = studio.load()
    for name, path in loras.items():  # a LoRA that does not fit fails here, before any image is made
        studio.check_lora(path)
    world = info.world if info.world is not None and info.world.has_checker else None
    # A tiny world model is bound by per-call overhead, so batches pay (8 clips: half the time on two
    # CPU cores); a real model's memory decides, so there the default stays one image per call.
    batch = args.batch or (8 if info.world is not None else 1)
    rows, per_image = [], []
    with tqdm(total=len(variants) * len(prompts), unit="img", disable=args.quiet) as bar:
        for v in variants:
            folder = out / "images" / v.name / f"nfe{v.nfe:03d}"
            _keep_cache_if_same(folder, {"model": str(args.model), "seed": args.seed,
                                         "lora": _lora_identity(v.lora, v.nfe)})
            images = _images(studio, v, prompts, args.seed, folder, bar, batch)
            row, values = _measure(studio, v, prompts, images, world)
            rows.append(row)
            per_image.append(values)
    _add_deltas(rows)
    add_paired(rows, per_image)
    write_tables(rows, out, meta={"model": str(args.model), "prompts": args.prompts, "images": len(prompts),
                                  "seed": args.seed, "loras": loras, "reward_errors": studio.reward_errors()})
    write_per_image(rows, per_image, prompts, args.seed, out / "per_image.csv")
    return rows


CACHE_SOURCE = "source.json"


def _lora_identity(path: str | None, nfe: int) -> dict | None:
    """What a variant's LoRA is at ``nfe`` steps, by content: a LoRA retrained in place under the same
    name is another one, and so is one whose rats.json now samples that budget otherwise (its CFG scale,
    its grid or its solver)."""
    import hashlib

    if path is None:
        return None
    file = resolve_lora(path)
    record = lora_record(file)
    return {"path": str(file), "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
            "call": trained_call(record, nfe), "solver": record.get("solver")}


def _keep_cache_if_same(folder: Path, source: dict) -> None:
    """Cached images are reused only when they were made by the same model, seed and LoRA; otherwise
    they are removed (and said so) before the variant is generated again."""
    import json

    from rats_app.io import write_json

    stamp = folder / CACHE_SOURCE
    if folder.exists() and (not stamp.exists() or json.loads(stamp.read_text()) != source):
        stale = list(folder.glob("*.png"))
        if stale:
            print(f"note: {len(stale)} cached images in {folder} were made by another model, seed or LoRA; "
                  "making them again", file=sys.stderr)
        for png in stale:
            png.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    write_json(stamp, source)


def _images(studio, variant: Variant, prompts: list[str], seed: int, folder: Path, bar, batch: int = 1) -> list:
    """Each prompt's output, cached as a PNG (a clip as its lossless filmstrip): resumable. The missing
    ones are made ``batch`` at a time, each from its own seed (image i: seed + i) as when made alone."""
    from PIL import Image

    from rats_app.io import filmstrip, from_filmstrip

    video = studio.media == "video"
    frames = studio.call_settings()[0].frames if video else None
    paths = [folder / f"{i:04d}.png" for i in range(len(prompts))]
    outputs: list = [None] * len(prompts)
    for i, path in enumerate(paths):
        if path.exists():  # cached from an earlier, interrupted run
            still = np.asarray(Image.open(path).convert("RGB"))
            outputs[i] = from_filmstrip(still, frames) if video else Image.fromarray(still)
            bar.update(1)
    missing = [i for i, output in enumerate(outputs) if output is None]
    for start in range(0, len(missing), batch):
        chunk = missing[start:start + batch]
        made, _ = studio.generate_batch([prompts[i] for i in chunk], [seed + i for i in chunk], variant.nfe,
                                        lora=variant.lora)
        for i, output in zip(chunk, made):
            output = to_uint8_frames(output) if video else output
            save_png(Image.fromarray(filmstrip(output)) if video else output, paths[i])
            outputs[i] = output
            bar.update(1)
    return outputs


def median_ci(values: list[float], seed: int = 0) -> tuple[float, float]:
    """Median and the half-width of its 95 % bootstrap interval (1000 resamples)."""
    array = np.asarray(values, dtype=float)
    if len(array) < 2:
        return float(np.median(array)) if len(array) else float("nan"), float("nan")
    resamples = np.random.default_rng(seed).choice(array, size=(1000, len(array)))
    low, high = np.percentile(np.median(resamples, axis=1), [2.5, 97.5])
    return float(np.median(array)), float((high - low) / 2)


def _measure(studio, variant: Variant, prompts: list[str], outputs: list, world) -> tuple[dict, dict]:
    """The variant's row, and its per-image values (each reward; on a world, the checker's verdict)."""
    row, values = {"variant": variant.name, "nfe": variant.nfe, "n": len(outputs)}, {}
    for name, reward in studio.rewards().items():
        scores = []
        for start in range(0, len(outputs), 32):
            scores += reward.score_fast(outputs[start:start + 32], prompts[start:start + 32]).tolist()
        row[name], row[f"{name}_ci"] = mean_ci(scores)
        values[name] = np.asarray(scores, dtype=float)
    if studio.media == "video":  # model-free temporal measures (VBench's flickering; optical-flow motion)
        from rats_app.rewards.video import VIDEO_MEASURES

        for name, measure in VIDEO_MEASURES.items():
            row[name], row[f"{name}_ci"] = mean_ci([measure(clip) for clip in outputs])
    if world is not None:
        checks = [world.check(np.asarray(o), p) for o, p in zip(outputs, prompts)]
        row.update(ground_truth(checks, world))
        values.update(truth_per_image(checks))
    return row, values


def truth_per_image(checks: list) -> dict[str, np.ndarray]:
    """The checker's verdict per image: "correct" (bool) and each fidelity measure (NaN: no object)."""
    from rats_app.worlds.fidelity import FIDELITY

    values = {key: np.array([c.measurements.get(key, np.nan) for c in checks], dtype=float) for key in FIDELITY}
    return {"correct": np.array([c.correct for c in checks], dtype=bool), **values}


def ground_truth(checks: list, world) -> dict:
    """The world checker's rates (%), its fidelity medians (and the ideal error's mean), and the
    per-attribute rates (results.json) of one variant."""
    from rats_app.worlds.fidelity import FIDELITY

    per_image, row = truth_per_image(checks), {}
    for key, values in (("correct", per_image["correct"]), ("clean", [c.clean for c in checks])):
        row[key], row[f"{key}_ci"] = mean_ci([100.0 * v for v in values])
    fitted = {key: per_image[key][~np.isnan(per_image[key])] for key in FIDELITY}  # images with an object
    for key, values in fitted.items():
        if len(values):
            row[f"{key}_median"], row[f"{key}_median_ci"] = median_ci(values)
    if len(fitted["ideal_error"]):
        row["ideal_error_mean"], row["ideal_error_mean_ci"] = mean_ci(fitted["ideal_error"])
    row[ATTRIBUTES_KEY] = {a: 100.0 * float(np.mean([c.right.get(a, False) for c in checks])) for a in world.attributes}
    return row


ATTRIBUTES_KEY = "attributes"
NOT_METRICS = ("variant", "nfe", "n", ATTRIBUTES_KEY, PAIRED_KEY)


def _add_deltas(rows: list[dict]) -> None:
    baseline = {r["nfe"]: r for r in rows if r["variant"] == "baseline"}
    for r in rows:
        base = baseline.get(r["nfe"])
        for key in [k for k in r if k not in NOT_METRICS and not k.endswith("_ci")]:
            r[f"{key}_delta"] = r[key] - base[key] if base and r["variant"] != "baseline" else None


def write_per_image(rows: list[dict], per_image: list[dict], prompts: list[str], seed: int, path: Path) -> None:
    """Every image's scores, one line per (variant, NFE, image): what a paired comparison is made of."""
    from rats_app.io import write_text

    keys = list(dict.fromkeys(k for values in per_image for k in values))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["variant", "nfe", "image", "seed", "prompt", *keys])
    for r, values in zip(rows, per_image):
        for i, prompt in enumerate(prompts):
            cells = [(int(values[k][i]) if values[k].dtype == bool else round(float(values[k][i]), 4))
                     if k in values else "" for k in keys]
            writer.writerow([r["variant"], r["nfe"], i, seed + i, prompt, *cells])
    write_text(path, buffer.getvalue())


def metric_keys(rows: list[dict]) -> list[str]:
    return [k for k in rows[0] if k not in NOT_METRICS and not k.endswith(("_ci", "_delta"))]


def markdown_table(rows: list[dict]) -> str:
    keys = metric_keys(rows)
    header = "| variant | NFE | n | " + " | ".join(f"{k} (95 % CI)" for k in keys) + " |"
    lines = [header, "|---|---|---|" + "---|" * len(keys)]
    for r in rows:
        cells = []
        for k in keys:
            delta = r.get(f"{k}_delta")
            cells.append(f"{r[k]:.2f} ± {r[f'{k}_ci']:.2f}" + (f" ({delta:+.2f})" if delta is not None else ""))
        lines.append(f"| {r['variant']} | {r['nfe']} | {r['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(rows: list[dict], out: Path, meta: dict) -> None:
    from rats_app.io import write_json, write_text

    write_text(out / "results.md", markdown_table(rows) + "\nDeltas in parentheses: vs the baseline at the same NFE.\n"
               + paired_table(rows))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[k for k in rows[0] if k not in (ATTRIBUTES_KEY, PAIRED_KEY)],
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "results.csv", buffer.getvalue())
    write_json(out / "results.json", {"meta": meta, "rows": rows})
    from rats_app.plots import frontier_figure, save_figure

    save_figure(frontier_figure(rows, metric_keys(rows)), out / "frontier.png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rats_app.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--lora", action="append", default=[], help="NAME=PATH (repeatable)")
    parser.add_argument("--prompts", default="world-train", help="world-train | world-heldout | world | FILE")
    parser.add_argument("--images", type=int, default=None, help="images per (variant, NFE); default: one per prompt")
    parser.add_argument("--nfe", type=int, nargs="+", default=[3, 5, 8])
    parser.add_argument("--teacher-nfe", type=int, default=50)
    parser.add_argument("--loras-only", action="store_true",
                        help="only the --lora rows (no teacher or baseline): a quick screen of a new run against "
                             "reference rows measured before with the same prompts and seeds")
    parser.add_argument("--rewards", nargs="*", default=None, help="reward names (default: every available)")
    parser.add_argument("--seed", type=int, default=0, help="image i uses seed S + i")
    parser.add_argument("--batch", type=int, default=None,
                        help="images per generation call (default: 8 on an embedded world's model, else 1); "
                             "each image keeps its own seed, and matches the one made alone within 1/255")
    parser.add_argument("--device", default=None)
    parser.add_argument("--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> str:
        return markdown_table(run(args)) + f"\ntables and frontier.png in {args.out_dir}"
    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
