"""Scoring cost per image on this machine for every reward path (tiny stand-ins for the real ones).

    python benchmarks/rewards.py [--batch 16] [--repeats 5]

The real checkpoints are not downloadable here, so HPSv2 / PickScore / CLIP are timed on tiny
models of the same architecture built in the script; the Shapes World reward is the shipped one.
Prints the no-grad (display) and grad (training) paths per image.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def time_per_image(fn, batch: int, repeats: int) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) / batch * 1000


def tiny_rewards(tmp: Path) -> dict:
    import os

    from rats_app.rewards.stand_ins import clip_dir, open_clip_state
    from rats_app.worlds.shapes.model import build_clip_tokenizer

    tokenizer = build_clip_tokenizer()
    tokenizer.save_pretrained(tmp / "tok")
    torch.save({"state_dict": open_clip_state(vocab=len(tokenizer))}, tmp / "hps.pt")
    os.environ.update(RATS_HPSV2_CHECKPOINT=str(tmp / "hps.pt"), RATS_HPSV2_TOKENIZER=str(tmp / "tok"),
                      RATS_PICKSCORE_MODEL=str(clip_dir(tmp / "pick")),
                      RATS_CLIP_MODEL=str(clip_dir(tmp / "clip")), HF_HUB_OFFLINE="1")
    from rats_app.rewards.registry import load_reward

    return {name: load_reward(name, device="cpu", cache=False) for name in ("shapes", "hpsv2", "pickscore", "clip")}


def main() -> None:
    from report_out import captured
    with captured(f"python benchmarks/{__file__.rsplit('/', 1)[-1]}"):
        _main()


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    prompts = ["a small red circle at the top left on a white background"] * args.batch
    with tempfile.TemporaryDirectory() as tmp:
        rewards = tiny_rewards(Path(tmp))
        print(f"machine: {torch.get_num_threads()} torch threads; batch {args.batch} images of 64x64\n")
        print("| reward (tiny stand-in) | parameters | no-grad ms / image | grad ms / image |")
        print("|---|---|---|---|")
        for name, reward in rewards.items():
            images = torch.rand(args.batch, 3, 64, 64)
            params = sum(p.numel() for p in reward.model.parameters())

            def grad_path():
                pixels = images.clone().requires_grad_(True)
                reward.score(pixels, prompts).sum().backward()

            fast = time_per_image(lambda: reward.score_fast(images, prompts), args.batch, args.repeats)
            slow = time_per_image(grad_path, args.batch, args.repeats)
            print(f"| {name} | {params / 1e6:.2f} M | {fast:.2f} | {slow:.2f} |")


if __name__ == "__main__":
    main()
