"""Time each embedded world's ground-truth checker (the fidelity fit is most of it) on fixed renders.

    python benchmarks/checker_speed.py [--images 40] [--clips 16] [--dump verdicts.json]

Renders are the worlds' own, half of them degraded, drawn from fixed seeds, so two runs (two
commits) check the same media; ``--dump`` writes every verdict and measurement to compare them.
The checker runs in ``evaluate`` on every image and in training's truth line every ``watch_every``
steps, so its cost is paid per image of both.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import platform
import time

WORLDS = {"shapes": "rats_app.worlds.shapes", "moving-shapes": "rats_app.worlds.moving_shapes"}


def check_world(package: str, count: int) -> tuple[float, list[dict]]:
    world = importlib.import_module(f"{package}.plugin").WORLD
    render = importlib.import_module(f"{package}.render").render
    prompts = world.prompt_sets()["world-train"]
    picks = [prompts[(7 * i) % len(prompts)] for i in range(count)]
    media = [render(prompt, seed=i, p_degraded=0.5) for i, prompt in enumerate(picks)]
    start = time.perf_counter()
    results = [world.check(m, p) for m, p in zip(media, picks)]
    return (time.perf_counter() - start) / count, [dataclasses.asdict(r) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40, help="Shapes World images")
    parser.add_argument("--clips", type=int, default=16, help="Moving Shapes clips")
    parser.add_argument("--dump", default="", help="write every verdict here (JSON)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}")
    verdicts = {}
    for (name, package), count in zip(WORLDS.items(), (args.images, args.clips)):
        seconds, verdicts[name] = check_world(package, count)
        print(f"{name}: {seconds * 1000:.0f} ms per check ({count})")
    if args.dump:
        with open(args.dump, "w") as f:
            json.dump(verdicts, f, default=float)


if __name__ == "__main__":
    main()
