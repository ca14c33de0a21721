"""One RATS training step on the full-size FLUX.1-dev architecture (random weights): step time and
peak GPU memory with each memory option. Needs a GPU with ~80 GB for the first rows.

    python benchmarks/flux_dev_memory.py --out docs/results/flux-dev-memory.md   # GPU, 1024x1024, batch 1
    python benchmarks/flux_dev_memory.py --tiny                                  # same code, tiny model, CPU

Nothing is downloaded: the FLUX.1-dev transformer (19 double + 38 single blocks, 3072 wide, guidance
embedding), its VAE, CLIP-L and T5-XXL text encoders and an HPSv2-sized reward (CLIP ViT-H/14)
are built from their published shapes with random weights, in bf16. Each option set runs in its
own process, so each peak is that configuration's own high-water mark (torch.cuda.max_memory_allocated
over two steps; the second step's time is reported). The paper reports 7.57 s and 67.67 GB per
RATS step (SenseFlow: 7.31 s / 78.87 GB) on its hardware.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# Cumulative option sets: each row adds one memory option to the previous row.
ROWS = [
    ("bf16", {"dtype": "bfloat16", "cache_text_embeddings": False}),
    ("+ cached text embeddings (text encoders off the GPU)", {"cache_text_embeddings": True}),
    ("+ gradient checkpointing", {"gradient_checkpointing": True}),
    ("+ VAE tiling", {"vae_tiling": True}),
    ("+ 8-bit Adam (bitsandbytes)", {"optimizer": "adamw8bit"}),
]

CHILD = r"""
import json, sys
from rats_app.architectures import flux_dev
from rats_app.config import TrainConfig
from rats_app.models import ModelInfo
from rats_app.training import Components, prepare_run
from rats_app.training.trainer import peak_memory_mb
args = json.loads(sys.argv[1])
pipe, reward, prompts = flux_dev(args["tiny"], args["device"])
cfg = TrainConfig.from_dict({"model": "flux.1-dev (random weights)", "reward": "hpsv2", "steps": 2, "batch_size": 1,
                             "sample_every": 0, "checkpoint_every": 1000, "teacher_steps": args["teacher_steps"],
                             "lora_rank": 16, "device": args["device"], "lora_targets": args["targets"],
                             **args["options"]})
info = ModelInfo(path=cfg.model, pipeline_class="FluxPipeline", height=args["resolution"], width=args["resolution"],
                 call_defaults={"max_sequence_length": 16 if args["tiny"] else 512})
trainer = prepare_run(cfg, sys.argv[2], components=Components(pipe, info, reward, {}, prompts)).trainer
trainer.start_schedule()
times = [trainer.train_step().step_time for _ in range(2)]
print(json.dumps({"step_s": times[-1], "peak_mb": peak_memory_mb(trainer.device)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="scaled-down model on CPU (checks the script)")
    parser.add_argument("--resolution", type=int, default=None, help="default 1024 (tiny: 64)")
    parser.add_argument("--teacher-steps", type=int, default=12)
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args()
    import torch

    from rats_app.model_presets import FLUX_FULL

    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no GPU here: this benchmark needs one (use --tiny to check the script on CPU); the "
                         "docs leave its row empty until it has run on a GPU")
    resolution = args.resolution or (64 if args.tiny else 1024)
    gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU (tiny model)"
    lines = [f"Measured with `python benchmarks/flux_dev_memory.py{' --tiny' if args.tiny else ''}` on {gpu}: "
             f"one RATS step, {resolution}x{resolution}, batch 1, student 3 steps, teacher {args.teacher_steps} steps, "
             "LoRA rank 16 on attention + text stream + feed-forward, random weights.", "",
             "| memory options | step time s | peak memory GB |", "|---|---|---|"]
    options: dict = {}
    for label, extra in ROWS:
        options = {**options, **extra}
        if options.get("optimizer") == "adamw8bit":
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                lines.append(f"| {label} | not run: bitsandbytes is not installed | |")
                continue
        child = {"tiny": args.tiny, "device": device, "options": options, "teacher_steps": args.teacher_steps,
                 "resolution": resolution, "targets": [t for t in FLUX_FULL if t != "proj_out"]}
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(child), f"{tmp}/run"],
                                  capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            lines.append(f"| {label} | failed: {last[:120]} | |")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        lines.append(f"| {label} | {result['step_s']:.2f} | {result['peak_mb'] / 1024:.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from rats_app.io import write_text

        write_text(args.out, text)


if __name__ == "__main__":
    main()
