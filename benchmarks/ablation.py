"""The paper's ablations on Shapes World, each from one command; tables (reward and ground truth)
and plots under docs/results/.

    python benchmarks/ablation.py alpha [--alphas 0.2 0.5 1 2] [--nfes 1 2 3 5] [--steps N] [--images 120]
    python benchmarks/ablation.py seeds [--seeds 0 1 2] [--presets rats distill reward] [--nfes 3] [--steps N]
    python benchmarks/ablation.py dynamics RUN_DIR [RUN_DIR ...]

alpha: one RATS run per (alpha, K) with student_steps K, each measured at its own NFE on the
training and held-out prompts (the paper: alpha = 2 best at 3 NFEs, alpha = 1 at 5 and 8).
seeds: each preset trained with each seed, measured at 3 steps (--nfes); the table gives the mean and the
spread (min-max) over seeds of every measure. dynamics: from a run's metrics.jsonl, the first step
from which the student's reward (a 10-step moving mean) stays above its EMA teacher's (the paper
sees about 150). Runs live under runs/ablation/ and resume (a finished run is not trained again);
images are cached by evaluate, so an interrupted ablation continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "ablation"
RESULTS = ROOT / "docs" / "results"
MEASURES = (("shapes", "world reward", 2), ("correct", "all five %", 1), ("clean", "clean %", 1),
            ("sigma_median", "σ px", 3), ("residual_median", "residual", 4), ("ideal_error_median", "ideal err", 4),
            ("ideal_error_mean", "ideal err mean", 4))


def train(run: Path, overrides: dict) -> Path:
    """Train a run to its end (resuming one that stopped); a finished run is left as it is."""
    from rats_app.train import main as train_main

    status = run / "run.json"
    if status.exists() and json.loads(status.read_text()).get("status") == "finished":
        return run
    args = ["--output-dir", str(run), *(["--resume"] if (run / "checkpoint").exists() else [])]
    args += [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    if train_main(args) != 0:
        raise SystemExit(f"training {run} failed")
    if json.loads(status.read_text()).get("status") != "finished":  # stopped (SIGTERM): not a result yet
        raise SystemExit(f"training {run} stopped before its end; run the ablation again to resume it")
    return run


def measure(loras: dict[str, Path], nfes: list[int], images: int, teacher: bool) -> list[dict]:
    """evaluate on training and held-out prompts; rows tagged with their prompt set. One evaluate
    folder per prompt set for every ablation: the teacher@50 and baseline images are made once
    (evaluate's cache keys each LoRA's images by its content, so a name reused is not confused)."""
    from rats_app.errors import UserError
    from rats_app.evaluate import build_parser, run

    rows = []
    for prompts in ("world-train", "world-heldout"):
        out = RUNS / "eval" / prompts
        args = ["--out-dir", str(out), "--prompts", prompts, "--images", str(images), "--nfe", *map(str, nfes),
                "--teacher-nfe", "50", "--rewards", "shapes", "--quiet"]
        for variant, path in loras.items():
            args += ["--lora", f"{variant}={path}"]
        try:  # the rows evaluate returns, not its results.json: two ablations may share the folder
            data = run(build_parser().parse_args(args))
        except UserError as error:
            raise SystemExit(f"evaluate failed for {', '.join(loras)} on {prompts}: {error}") from None
        rows += [dict(r, prompts=prompts) for r in data if teacher or r["variant"] != "teacher"]
    return rows


def cells(row: dict) -> str:
    return " | ".join(f"{row[k]:.{d}f}" if k in row else "–" for k, _, d in MEASURES)


def header(first: str) -> str:
    names = " | ".join(label for _, label, _ in MEASURES)
    return f"| {first} | prompts | {names} |\n|---|---|{'---|' * len(MEASURES)}\n"


def write(name: str, command: str, text: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = f"Measured with `{command}`:\n\n{text}"
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


def alpha(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one K per run, as in the paper's ablation (the default run draws K from several budgets)
    runs = {(a, k): train(RUNS / f"alpha{a:g}-k{k}", {"alpha": a, "student_steps": k, "student_steps_choices": [],
                                                       **_steps(args), "seed": 0})
            for a in args.alphas for k in args.nfes}
    table, by_k = header("alpha @ NFE"), {}
    for k in args.nfes:
        rows = measure({_alpha_name(a): runs[(a, k)] for a in args.alphas}, [k], args.images, k == args.nfes[0])
        for r in rows:
            label = r["variant"] if not r["variant"].startswith("alpha") else f"α = {_alpha_of(r['variant']):g}"
            table += f"| {label} @ {r['nfe']} | {r['prompts']} | {cells(r)} |\n"
            by_k.setdefault(k, []).append(r)
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (key, label, _) in zip(axes, (MEASURES[0], MEASURES[2], MEASURES[5])):
        for k, rows in by_k.items():
            points = sorted((_alpha_of(r["variant"]), r[key]) for r in rows
                            if r["variant"].startswith("alpha") and r["prompts"] == "world-train" and key in r)
            ax.plot(*zip(*points), marker="o", label=f"NFE {k}")
        ax.set_xscale("log"), ax.set_xlabel("α"), ax.set_title(f"{label} (training prompts)")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(RESULTS / "ablation-alpha.png", dpi=110)
    write("ablation-alpha", "python benchmarks/ablation.py alpha " + " ".join(sys.argv[2:]),
          table + "\n![alpha ablation](ablation-alpha.png)\n")


def _steps(args) -> dict:
    """--steps when given; otherwise none, so the run takes the world's default length (Shapes World's
    train_defaults set it; TrainConfig's own default would silently shorten the ablation's runs)."""
    return {} if args.steps is None else {"steps": args.steps}


def _alpha_name(a: float) -> str:
    """A LoRA name evaluate accepts (a word): alpha0p2 for 0.2."""
    return f"alpha{a:g}".replace(".", "p")


def _alpha_of(name: str) -> float:
    return float(name[len("alpha"):].replace("p", "."))


def seeds(args) -> None:
    loras = {f"{p}-s{s}": train(RUNS / f"{p}-seed{s}", {"preset": p, "seed": s, **_steps(args)})
             for p in args.presets for s in args.seeds}
    rows = measure(loras, args.nfes, args.images, True)
    table = header("variant @ NFE (seeds)")
    for prompts in ("world-train", "world-heldout"):
        here = [r for r in rows if r["prompts"] == prompts]
        for r in here:
            if r["variant"] == "teacher":
                table += f"| teacher @ {r['nfe']} | {prompts} | {cells(r)} |\n"
        for nfe in args.nfes:
            table += "".join(f"| baseline @ {nfe} | {prompts} | {cells(r)} |\n" for r in here
                             if r["variant"] == "baseline" and r["nfe"] == nfe)
            for p in args.presets:
                group = [r for r in here if r["variant"].startswith(f"{p}-s") and r["nfe"] == nfe]
                spread = " | ".join(_spread([r[k] for r in group if k in r], d) for k, _, d in MEASURES)
                table += f"| {p} @ {nfe} ({len(group)} seeds) | {prompts} | {spread} |\n"
    write("ablation-seeds", "python benchmarks/ablation.py seeds " + " ".join(sys.argv[2:]),
          table + "\nEach cell: mean over seeds [min – max].\n")


def _spread(values: list[float], digits: int) -> str:
    if not values:
        return "–"
    return f"{np.mean(values):.{digits}f} [{min(values):.{digits}f} – {max(values):.{digits}f}]"


def overtake_step(metrics: list[dict], window: int = 10) -> int | None:
    """The first step from which the student's reward (moving mean over ``window`` steps) stays
    above its EMA teacher's to the end of the run; None when it never does."""
    gap = np.array([m["reward_student"] - m["reward_teacher"] for m in metrics if m.get("reward_teacher") is not None])
    if len(gap) < window:
        return None
    smooth = np.convolve(gap, np.ones(window) / window, mode="valid")
    below = np.flatnonzero(smooth <= 0)
    first = 0 if len(below) == 0 else below[-1] + 1
    return None if first >= len(smooth) else int(metrics[first + window - 1]["step"])


def dynamics(args) -> None:
    table = ("| run | steps | student overtakes its EMA teacher at step | final gap (last 10 steps) |\n"
             "|---|---|---|---|\n")
    for run in map(Path, args.runs):
        every = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        budgets = sorted({m.get("student_steps", 0) for m in every})
        for k in budgets:  # a LoRA trained for several K: one row per K (its steps only)
            metrics = [m for m in every if m.get("student_steps", 0) == k]
            name = f"{run} (K = {k})" if len(budgets) > 1 else str(run)
            last = [m["reward_student"] - m["reward_teacher"] for m in metrics[-10:]
                    if m.get("reward_teacher") is not None]
            step = overtake_step(metrics, window=10 if len(budgets) == 1 else 5)
            table += (f"| {name} | {len(metrics)} | {'never' if step is None else step} | {np.mean(last):+.3f} |\n"
                      if last else f"| {name} | {len(metrics)} | no teacher | – |\n")
    write("ablation-dynamics", "python benchmarks/ablation.py dynamics " + " ".join(args.runs), table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    a = sub.add_parser("alpha")
    a.add_argument("--alphas", type=float, nargs="+", default=[0.2, 0.5, 1.0, 2.0])
    a.add_argument("--nfes", type=int, nargs="+", default=[1, 2, 3, 5])
    s = sub.add_parser("seeds")
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    s.add_argument("--presets", nargs="+", default=["rats", "distill", "reward"])
    s.add_argument("--nfes", type=int, nargs="+", default=[3], help="the budgets each LoRA is measured at")
    for p in (a, s):
        p.add_argument("--steps", type=int, default=None, help="steps per run (default: the default run's, the world's own)")
        p.add_argument("--images", type=int, default=120)
    d = sub.add_parser("dynamics")
    d.add_argument("runs", nargs="+")
    args = parser.parse_args()
    {"alpha": alpha, "seeds": seeds, "dynamics": dynamics}[args.what](args)


if __name__ == "__main__":
    main()
