"""Measure a Shapes World model with the ground-truth checker (and the world reward if present).

    python -m rats_app.world.report --model assets/shapes-flux --nfe 50 3 --images 120 [--lora DIR]

For each NFE and each prompt set (training / held-out) it generates ``--images`` images (prompts
cycled in a fixed shuffled order, seed = index) and prints per-attribute accuracy, all-five
correctness, clean rate and mean world reward as a markdown table (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from rats_app.models import load_lora, load_pipeline
from rats_app.sampler import generate
from rats_app.world.checker import check_image, summarize
from rats_app.world.prompts import held_out_prompts, training_prompts


def prompt_sample(prompts: list[str], n: int, seed: int = 0) -> list[str]:
    """n prompts: a fixed shuffle of the set, cycled (every prompt used before any repeats)."""
    order = np.random.default_rng(seed).permutation(len(prompts))
    return [prompts[order[i % len(prompts)]] for i in range(n)]


@torch.no_grad()
def measure(pipe, info, prompts: list[str], nfe: int, seed0: int = 0, reward=None, batch: int = 32) -> dict:
    call = {"height": info.height, "width": info.width, **info.call_defaults}
    results, scores, started = [], [], time.perf_counter()
    for start in range(0, len(prompts), batch):
        chunk = prompts[start:start + batch]
        images = generate(pipe, chunk, nfe, [seed0 + start + i for i in range(len(chunk))], **call)
        results += [check_image(np.asarray(im), p) for im, p in zip(images, chunk)]
        if reward is not None:
            scores += reward.score_fast(images, chunk).tolist()
    summary = summarize(results)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if scores:
        summary["reward_mean"] = float(np.mean(scores))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assets/shapes-flux")
    parser.add_argument("--lora", default=None)
    parser.add_argument("--nfe", type=int, nargs="+", default=[50, 3])
    parser.add_argument("--images", type=int, default=120, help="images per (prompt set, NFE)")
    parser.add_argument("--reward", default="assets/shapes-reward", help="world reward dir ('' to skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    pipe, info = load_pipeline(args.model)
    if args.lora:
        load_lora(pipe, args.lora)
    reward = None
    if args.reward:
        from rats_app.rewards.shapes import load_shapes_reward

        reward = load_shapes_reward(args.reward)
    rows = []
    for nfe in args.nfe:
        for name, prompts in (("training", training_prompts()), ("held-out", held_out_prompts())):
            summary = measure(pipe, info, prompt_sample(prompts, args.images), nfe, reward=reward)
            rows.append({"nfe": nfe, "prompts": name, **summary})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    keys = ["background", "color", "shape", "size", "position", "correct", "clean"]
    print("| NFE | prompts | n | " + " | ".join(keys) + " | world reward | s |")
    print("|---|---|---|" + "---|" * len(keys) + "---|---|")
    for r in rows:
        cells = " | ".join(f"{100 * r[k]:.1f} %" for k in keys)
        reward_cell = f"{r['reward_mean']:.2f}" if "reward_mean" in r else "n/a"
        print(f"| {r['nfe']} | {r['prompts']} | {r['count']} | {cells} | {reward_cell} | {r['seconds']} |")


if __name__ == "__main__":
    main()
