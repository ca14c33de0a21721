"""Shapes World results for the README: the teacher and the few-step gap, and RATS vs presets.

    python benchmarks/shapes_world.py teacher --images 120
    python benchmarks/shapes_world.py presets --images 120 --lora rats=DIR --lora distill=DIR --lora reward=DIR
    python benchmarks/shapes_world.py budgets --images 120 --lora rats=DIR      # NFE 1, 2, 3, 4, 8

Every row has the checker's rates and its ground-truth fidelity beside the world reward: the
median fitted blur sigma (px), the median residual no blur explains, and the error to the exact
ideal render (median and mean); lower is better for all three.

Runs `python -m rats_app.evaluate` on the training and the held-out prompts (images cached under
runs/results/, so a rerun is cheap) and writes docs/results/teacher.md or docs/results/presets.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


NFES = {"teacher": [3, 8], "presets": [3], "budgets": [1, 2, 3, 4, 8]}



def evaluate(name: str, prompts: str, images: int, nfes: list[int], loras: list[str]) -> dict:
    from rats_app.evaluate import main as evaluate_main

    out = ROOT / "runs" / "results" / f"{name}-{prompts}"
    args = ["--out-dir", str(out), "--prompts", prompts, "--images", str(images), "--nfe", *map(str, nfes),
            "--teacher-nfe", "50", "--rewards", "shapes", "--quiet"]
    for lora in loras:
        args += ["--lora", lora]
    if evaluate_main(args) != 0:
        raise SystemExit(f"evaluate failed for {prompts}")
    return json.loads((out / "results.json").read_text())


def attribute_rates(prompts_kind: str, rows: list[dict]) -> list[str]:
    """Table lines: per-attribute, all-five and clean rates as `rats_app.evaluate` measured them."""
    lines = []
    for r in rows:
        cells = " | ".join(f"{r['attributes'][k]:.1f}" for k in ("background", "color", "shape", "size", "position"))
        truth = " | ".join(f"{r[k]:.3f}" if k in r else "–" for k in TRUTH)
        lines.append(f"| {r['variant']} @ {r['nfe']} | {prompts_kind} | {r['n']} | {cells} | {r['correct']:.1f} | "
                     f"{r['clean']:.1f} | {truth} | {r['shapes']:.2f} ± {r['shapes_ci']:.2f} |")
    return lines


TRUTH = ("sigma_median", "residual_median", "ideal_error_median", "ideal_error_mean")
HEADER = ("| model @ NFE | prompts | images | background | colour | shape | size | position | all five | clean "
          "| σ px (median) | residual (median) | ideal error (median) | ideal error (mean) | world reward (95 % CI) |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=[*NFES, "reward"])
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--lora", action="append", default=[])
    parser.add_argument("--nfe", type=int, nargs="+", help="student NFEs (default: the table's own)")
    args = parser.parse_args()
    if args.what == "reward":
        return reward_table()
    nfes, header = args.nfe or NFES[args.what], HEADER
    lines = []
    for prompts in ("world-train", "world-heldout"):
        data = evaluate(args.what, prompts, args.images, nfes, args.lora)
        lines += attribute_rates(prompts, data["rows"])
    command = f"python benchmarks/shapes_world.py {args.what} --images {args.images}" + "".join(
        f" --lora {x}" for x in args.lora) + (f" --nfe {' '.join(map(str, args.nfe))}" if args.nfe else "")
    text = (f"Measured with `{command}` (checker rates in %, seeds 0…{args.images - 1}):\n\n"
            + header + "\n" + "\n".join(lines) + "\n")
    out = ROOT / "docs" / "results" / f"{args.what}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
