"""Paired ground truth between any two variants of one evaluate run (evaluate itself pairs every row
with the teacher; this pairs, say, the student with the baseline at the same NFE).

Both variants drew image i from the same prompt and seed, so their gap is known far better than each
one's own interval says: rats_app.paired resamples the image indices jointly. Printed per measure:
the gap (A − B; medians for σ / residual / ideal error) with its 95 % interval and a verdict, and for
all five right the images right in one only with a sign test.

    python benchmarks/probes/paired_truth.py runs/results/budgets-world-heldout --prompts world-heldout \
        --images 120 --a rats/nfe004 --b baseline/nfe004
"""
from pathlib import Path

import numpy as np
from _eval_dir import eval_dir_args  # run as a script: its folder is on sys.path
from PIL import Image

from rats_app.evaluate import truth_per_image
from rats_app.paired import LABELS, cell, compare
from rats_app.worlds import get_world


def per_image(folder: Path, prompts: list[str]) -> dict[str, np.ndarray]:
    world = get_world("shapes-world")
    return truth_per_image([world.check(np.asarray(Image.open(folder / f"{i:04d}.png").convert("RGB")), p)
                            for i, p in enumerate(prompts)])


def main() -> None:
    def options(parser):
        parser.add_argument("--a", required=True, help="VARIANT/nfeNNN under the run's images/")
        parser.add_argument("--b", required=True, help="the reference, e.g. baseline/nfe004")

    args, prompts = eval_dir_args(__doc__, options)
    a, b = (per_image(args.eval_dir / "images" / v, prompts) for v in (args.a, args.b))
    print(f"{args.a} − {args.b} on {args.prompts}, {len(prompts)} images:")
    for key, result in compare(a, b).items():
        level = f"{100 * a[key].mean():.1f} % vs {100 * b[key].mean():.1f} %" if key == "correct" else \
            f"{np.nanmedian(a[key]):.3f} vs {np.nanmedian(b[key]):.3f}"
        print(f"  {LABELS[key]}: {level}, {cell(result)}")


if __name__ == "__main__":
    main()
