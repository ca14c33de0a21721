"""Embedded-world results for the README: the teacher and the few-step gap, and RATS vs presets.

    python benchmarks/shapes_world.py teacher --images 120
    python benchmarks/shapes_world.py presets --images 120 --lora rats=DIR --lora distill=DIR --lora reward=DIR
    python benchmarks/shapes_world.py budgets --images 120 --lora rats=DIR      # NFE 1, 2, 3, 4, 8
    python benchmarks/shapes_world.py teacher --world moving-shapes --images 120 --nfe 3
    python benchmarks/shapes_world.py grid --world moving-shapes --from teacher   # a picture of those outputs

Every row has the checker's rates and its ground-truth fidelity beside the world reward: the
median fitted blur sigma (px), the median residual no blur explains, and the error to the exact
ideal render (median and mean); lower is better for all three.

Runs `python -m rats_app.evaluate` on the training and the held-out prompts (images cached under
runs/results/, so a rerun is cheap) and writes docs/results/teacher.md or docs/results/presets.md
(Shapes World; another world's tables get its id as a prefix: docs/results/moving-shapes-teacher.md).
``grid`` draws the first outputs of such a run, training and held-out prompts, one row per prompt
and one column per variant (a clip as its filmstrip), into docs/results/[WORLD-]grid-NAME.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


NFES = {"teacher": [3, 8], "presets": [3], "budgets": [1, 2, 3, 4, 8]}



def results_dir(world, name: str, prompts: str) -> Path:
    return ROOT / "runs" / "results" / f"{prefix(world)}{name}-{prompts}"


def prefix(world) -> str:
    """Shapes World keeps the unprefixed names the README has always linked."""
    return "" if world.id == "shapes-world" else f"{world.id}-"


def evaluate(world, name: str, prompts: str, images: int, nfes: list[int], loras: list[str]) -> dict:
    from rats_app.evaluate import main as evaluate_main

    out = results_dir(world, name, prompts)
    args = ["--out-dir", str(out), "--model", str(world.model_dir), "--prompts", prompts, "--images", str(images),
            "--nfe", *map(str, nfes), "--teacher-nfe", "50", "--rewards", world.reward, "--quiet"]
    for lora in loras:
        args += ["--lora", lora]
    if evaluate_main(args) != 0:
        raise SystemExit(f"evaluate failed for {prompts}")
    return json.loads((out / "results.json").read_text())


def attribute_rates(world, prompts_kind: str, rows: list[dict]) -> list[str]:
    """Table lines: per-attribute, all-right and clean rates as `rats_app.evaluate` measured them."""
    lines = []
    for r in rows:
        cells = " | ".join(f"{r['attributes'][k]:.1f}" for k in world.attributes)
        truth = " | ".join(f"{r[k]:.3f}" if k in r else "–" for k in TRUTH)
        reward = f"{r[world.reward]:.2f} ± {r[world.reward + '_ci']:.2f}"
        lines.append(f"| {r['variant']} @ {r['nfe']} | {prompts_kind} | {r['n']} | {cells} | {r['correct']:.1f} | "
                     f"{r['clean']:.1f} | {truth} | {reward} |")
    return lines


TRUTH = ("sigma_median", "residual_median", "ideal_error_median", "ideal_error_mean")


def paired_lines(world, prompts_kind: str, rows: list[dict]) -> list[str]:
    """Table lines: each row against the teacher@50, image by image (evaluate's vs_teacher)."""
    from rats_app.paired import PAIRED_KEY, cell

    return [f"| {r['variant']} @ {r['nfe']} | {prompts_kind} | "
            + " | ".join(cell(r[PAIRED_KEY][k]) for k in ("correct", "sigma", "residual", "ideal_error", world.reward))
            + " |" for r in rows if PAIRED_KEY in r]


PAIRED_HEADER = ("Against the teacher @ 50, paired image by image (same prompts and seeds; `rats_app.paired`): the gap "
                 "(row − teacher; σ, residual, ideal error: medians; reward: means) with its 95 % bootstrap interval; "
                 "all five right: the gap in points, the images right in one only (row:teacher) and a sign test. "
                 "better / worse: beyond chance, ≈: within it.\n\n"
                 "| model @ NFE | prompts | all five right | σ px (median) | residual (median) | ideal error (median) "
                 "| world reward |\n|---|---|---|---|---|---|---|")


def header(world) -> str:
    names = " | ".join({"color": "colour"}.get(a, a) for a in world.attributes)
    columns = 3 + len(world.attributes) + 7
    every = {5: "five"}.get(len(world.attributes), str(len(world.attributes)))
    return (f"| model @ NFE | prompts | images | {names} | all {every} | clean "
            "| σ px (median) | residual (median) | ideal error (median) | ideal error (mean) | world reward (95 % CI) |\n"
            + "|---" * columns + "|")


def reward_table() -> None:
    """The shipped world reward's pairwise accuracy, as its training run measured it."""
    data = json.loads((ROOT / "assets" / "shapes-reward" / "training.json").read_text())
    m, cfg = data["metrics"], data["config"]
    rows = [("training prompts, fresh renders", m["train_prompts_fresh_renders"]),
            ("held-out prompts", m["held_out_prompts"])]
    columns = [("right_vs_wrong_prompt", "right prompt > wrong prompt"), ("clean_vs_degraded", "clean > degraded"),
               ("clean_vs_soft", "clean > mildly blurred (σ 0.4–1)")]
    columns += [(f"clean_vs_{k}", f"clean > {k.replace('_', ' ')}") for k in ARTEFACT_COLUMNS]
    columns = [(key, label) for key, label in columns if key in m["held_out_prompts"]]
    text = ("From `assets/shapes-reward/training.json`, written by `python -m rats_app.worlds.shapes.train_reward` "
            f"(seed {cfg['seed']}, {cfg['steps']} steps, batch {cfg['batch']}, {m['train_seconds']:.0f} s on one CPU "
            "thread); 1000 fresh pairs each:\n\n| pairs | " + " | ".join(label for _, label in columns) + " |\n|---|"
            + "---|" * len(columns) + "\n"
            + "".join(f"| {name} | " + " | ".join(f"{100 * r[key]:.1f} %" for key, _ in columns) + " |\n"
                      for name, r in rows))
    (ROOT / "docs" / "results" / "reward.md").write_text(text)
    print(text)


ARTEFACT_COLUMNS = ("dark_rim", "bright_halo", "edge_cast", "oversharpen", "texture")


def grid(world, name: str, rows_per_set: int) -> Path:
    """The first outputs of an earlier ``name`` run (its evaluate cache) as one picture: a row per
    prompt (training, then held out), a column per variant and NFE."""
    from PIL import Image, ImageDraw

    from rats_app.evaluate import load_prompts

    cells, labels, columns = [], [], None
    for prompts_kind in ("world-train", "world-heldout"):
        folder = results_dir(world, name, prompts_kind)
        meta = json.loads((folder / "results.json").read_text())
        found = [(r["variant"], r["nfe"]) for r in meta["rows"]]
        columns = columns or found
        prompts = load_prompts(prompts_kind, meta["meta"]["images"], world, meta["meta"]["seed"])
        for i in range(rows_per_set):
            cells.append([Image.open(folder / "images" / v / f"nfe{n:03d}" / f"{i:04d}.png").convert("RGB")
                          for v, n in columns])
            labels.append(("held out: " if prompts_kind == "world-heldout" else "") + prompts[i])
    scale, label_height = 3, 14
    cell_w, cell_h = cells[0][0].width * scale, cells[0][0].height * scale
    canvas = Image.new("RGB", (cell_w, len(cells) * (label_height * 3 // 2 + cell_h * len(columns))), "white")
    draw = ImageDraw.Draw(canvas)
    y = 0
    for label, row in zip(labels, cells):
        draw.text((2, y), label, fill="black")
        y += label_height
        for (variant, nfe), image in zip(columns, row):
            canvas.paste(image.resize((cell_w, cell_h), Image.NEAREST), (0, y))
            draw.text((4, y + 2), f"{variant} @ {nfe}", fill="magenta")
            y += cell_h
        y += label_height // 2
    out = ROOT / "docs" / "results" / f"{prefix(world)}grid-{name}.png"
    canvas.save(out)
    return out


def main() -> None:
    from rats_app.worlds import worlds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=[*NFES, "reward", "grid"])
    parser.add_argument("--world", default="shapes-world", choices=list(worlds()))
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--lora", action="append", default=[])
    parser.add_argument("--nfe", type=int, nargs="+", help="student NFEs (default: the table's own)")
    parser.add_argument("--from", dest="source", default="teacher",
                        help="grid: the earlier run whose outputs it draws (teacher, presets, budgets, or any NAME "
                             "with evaluate outputs in runs/results/[WORLD-]NAME-world-train and -world-heldout)")
    parser.add_argument("--rows", type=int, default=3, help="grid: prompts per prompt set")
    args = parser.parse_args()
    world = worlds()[args.world]
    if args.what == "reward":
        return reward_table()
    if args.what == "grid":
        return print(f"wrote {grid(world, args.source, args.rows)}")
    nfes = args.nfe or NFES[args.what]
    lines, paired = [], []
    for prompts in ("world-train", "world-heldout"):
        data = evaluate(world, args.what, prompts, args.images, nfes, args.lora)
        lines += attribute_rates(world, prompts, data["rows"])
        paired += paired_lines(world, prompts, data["rows"])
    command = (f"python benchmarks/shapes_world.py {args.what}"
               + (f" --world {world.id}" if prefix(world) else "") + f" --images {args.images}"
               + "".join(f" --lora {x}" for x in args.lora) + (f" --nfe {' '.join(map(str, args.nfe))}" if args.nfe else ""))
    text = (f"Measured with `{command}` (checker rates in %, seeds 0…{args.images - 1}):\n\n"
            + header(world) + "\n" + "\n".join(lines) + "\n"
            + (f"\n{PAIRED_HEADER}\n" + "\n".join(paired) + "\n" if paired else ""))
    out = ROOT / "docs" / "results" / f"{prefix(world)}{args.what}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
