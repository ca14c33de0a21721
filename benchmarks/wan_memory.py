"""One RATS training step on the full-size Wan2.1-T2V architectures (random weights): step time and
peak GPU memory with each memory option, at 480x832 and 33 or 81 frames. Needs a GPU.

    python benchmarks/wan_memory.py --size 1.3b --frames 33 81 --out docs/results/wan-memory.md   # GPU
    python benchmarks/wan_memory.py --tiny                                                       # CPU check

Nothing is downloaded: the Wan2.1 transformer (1.3B: 30 blocks 1536 wide; 14B: 40 blocks 5120
wide), the Wan2.1 VAE, the UMT5-XXL encoder and an HPSv2-sized frame-wise reward are built from
their published shapes (rats_app.architectures.wan21), in bf16. The paper's Wan run: batch 1 x
gradient accumulation 8, 400 steps, bf16. Train the 14B sharded: docs/real-models.md (FSDP).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from step_memory import measure, require_gpu, write

# Cumulative option sets: each row adds one memory option to the previous row.
ROWS = [
    ("bf16, UMT5 on the GPU", {"dtype": "bfloat16", "cache_text_embeddings": False}),
    ("+ cached text embeddings (UMT5 off the GPU)", {"cache_text_embeddings": True}),
    ("+ gradient checkpointing", {"gradient_checkpointing": True}),
    ("+ reward on 4 of the frames", {"reward_frames": 4}),
    ("+ VAE tiling", {"vae_tiling": True}),
    ("+ 8-bit Adam (bitsandbytes)", {"optimizer": "adamw8bit"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["1.3b", "14b"], default="1.3b")
    parser.add_argument("--tiny", action="store_true", help="scaled-down model on CPU (checks the script)")
    parser.add_argument("--frames", type=int, nargs="+", default=None, help="default 33 81 (tiny: 5)")
    parser.add_argument("--teacher-steps", type=int, default=12)
    parser.add_argument("--out", type=Path, help="also write the tables here (markdown)")
    args = parser.parse_args()
    import torch

    from rats_app.model_presets import WAN_FULL

    device = require_gpu(args.tiny)
    height, width = (32, 32) if args.tiny else (480, 832)
    gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU (tiny model)"
    lines = []
    for frames in args.frames or ([5] if args.tiny else [33, 81]):
        lines += [f"Measured with `python benchmarks/wan_memory.py{' --tiny' if args.tiny else f' --size {args.size}'}` "
                  f"on {gpu}: one RATS step of Wan2.1-T2V-{'tiny' if args.tiny else args.size.upper()}, {height}x{width}"
                  f"x{frames}, batch 1, student 3 steps, teacher {args.teacher_steps} steps, CFG 5, LoRA rank 16 on "
                  "self- and cross-attention + feed-forward, random weights.", "",
                  "| memory options | step time s | peak memory GB |", "|---|---|---|"]
        child = {"architecture": "wan21", "size": "tiny" if args.tiny else args.size, "device": device,
                 "teacher_steps": args.teacher_steps, "height": height, "width": width, "frames": frames,
                 "max_sequence_length": 16 if args.tiny else 512, "targets": WAN_FULL, "call": {"guidance_scale": 5.0}}
        lines += measure(ROWS, child) + [""]
    write(lines, args.out)


if __name__ == "__main__":
    main()
