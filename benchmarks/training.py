"""Training step time, images per second and peak memory for the rats, distill and reward presets.

    python benchmarks/training.py [--steps 20] [--batch-size 8] [--teacher-steps 24]

Each preset runs in its own process (peak memory is a per-process high-water mark), on the
Shapes World default, with the same batch and step count. Peak memory is the process's peak
resident set on CPU (torch.cuda.max_memory_allocated on GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, statistics, sys
from rats_app.config import TrainConfig
from rats_app.training import TrainerCallback, prepare_run
from rats_app.training.trainer import peak_memory_mb

class Times(TrainerCallback):
    def __init__(self):
        self.steps = []
    def on_step_end(self, run, metrics):
        self.steps.append(metrics.step_time)

cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
run = prepare_run(cfg, sys.argv[2])
before = peak_memory_mb(run.trainer.device)
times = Times()
run.train([times])
steady = times.steps[2:] or times.steps
print(json.dumps({"step_s": statistics.median(steady), "images_per_s": cfg.batch_size / statistics.median(steady),
                  "peak_mb": peak_memory_mb(run.trainer.device), "peak_mb_before_training": before}))
"""


def main() -> None:
    from report_out import captured
    with captured(f"python benchmarks/{__file__.rsplit('/', 1)[-1]}"):
        _main()


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--teacher-steps", type=int, default=24)
    args = parser.parse_args()
    results = {}
    for preset in ("rats", "distill", "reward"):
        cfg = {"preset": preset, "steps": args.steps, "batch_size": args.batch_size,
               "teacher_steps": args.teacher_steps, "sample_every": 0, "checkpoint_every": 10_000}
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg), os.path.join(tmp, "run")],
                                 capture_output=True, text=True, check=True)
        results[preset] = json.loads(out.stdout.strip().splitlines()[-1])
    import torch

    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, batch {args.batch_size}, "
          f"{args.steps} steps, teacher steps {args.teacher_steps}\n")
    print("| preset | step time s | images / s | peak memory MB | vs reward |")
    print("|---|---|---|---|---|")
    for preset, r in results.items():
        ratio = r["peak_mb"] / results["reward"]["peak_mb"]
        print(f"| {preset} | {r['step_s']:.2f} | {r['images_per_s']:.1f} | {r['peak_mb']:.0f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
