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
from pathlib import Path

from step_memory import measure, require_gpu, write

# Cumulative option sets: each row adds one memory option to the previous row.
ROWS = [
    ("bf16", {"dtype": "bfloat16", "cache_text_embeddings": False}),
    ("+ cached text embeddings (text encoders off the GPU)", {"cache_text_embeddings": True}),
    ("+ gradient checkpointing", {"gradient_checkpointing": True}),
    ("+ VAE tiling", {"vae_tiling": True}),
    ("+ 8-bit Adam (bitsandbytes)", {"optimizer": "adamw8bit"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="scaled-down model on CPU (checks the script)")
    parser.add_argument("--resolution", type=int, default=None, help="default 1024 (tiny: 64)")
    parser.add_argument("--teacher-steps", type=int, default=12)
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args()
    import torch

    from rats_app.model_presets import FLUX_FULL

    device = require_gpu(args.tiny)
    resolution = args.resolution or (64 if args.tiny else 1024)
    gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU (tiny model)"
    lines = [f"Measured with `python benchmarks/flux_dev_memory.py{' --tiny' if args.tiny else ''}` on {gpu}: "
             f"one RATS step, {resolution}x{resolution}, batch 1, student 3 steps, teacher {args.teacher_steps} steps, "
             "LoRA rank 16 on attention + text stream + feed-forward, random weights.", "",
             "| memory options | step time s | peak memory GB |", "|---|---|---|"]
    child = {"architecture": "flux_dev", "size": args.tiny, "device": device, "teacher_steps": args.teacher_steps,
             "height": resolution, "width": resolution, "max_sequence_length": 16 if args.tiny else 512,
             "targets": [t for t in FLUX_FULL if t != "proj_out"]}
    write(lines + measure(ROWS, child), args.out)


if __name__ == "__main__":
    main()
