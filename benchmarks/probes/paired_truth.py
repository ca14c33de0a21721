"""Paired ground truth: is a gap between two variants of one evaluate run larger than chance?

evaluate's intervals are per variant (±0.07 px on a median σ of 120 images); two variants drawn from
the same prompts and seeds are paired, so the gap between their medians is known much better. For
each fidelity measure this resamples the image indices jointly (1000 bootstrap draws) and prints the
gap of the medians (A − B) with its 95 % interval, and the share of images where A is lower than B;
for correctness, the images right in one and wrong in the other (an exact sign test's two-sided p).

    python benchmarks/probes/paired_truth.py runs/results/budgets-world-heldout --prompts world-heldout \
        --images 120 --a rats/nfe002 --b teacher/nfe050
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _eval_dir import eval_dir_args  # noqa: E402

from rats_app.worlds import get_world  # noqa: E402
from rats_app.worlds.fidelity import FIDELITY  # noqa: E402


def measures(folder: Path, prompts: list[str]) -> dict[str, np.ndarray]:
    """Each fidelity measure per image (NaN where the checker found no object), and "correct"."""
    world = get_world("shapes-world")
    checks = [world.check(np.asarray(Image.open(folder / f"{i:04d}.png").convert("RGB")), p)
              for i, p in enumerate(prompts)]
    out = {key: np.array([c.measurements.get(key, np.nan) for c in checks], dtype=float) for key in FIDELITY}
    return {**out, "correct": np.array([c.correct for c in checks], dtype=bool)}


def sign_test(only_a: int, only_b: int) -> float:
    """Two-sided exact p of a split as uneven as only_a : only_b among the discordant images."""
    from math import comb

    n, k = only_a + only_b, min(only_a, only_b)
    return 1.0 if n == 0 else min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n)


def paired_gap(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float, float, float]:
    """median(a) − median(b) over the images both have, its 95 % paired-bootstrap interval, and the
    share of images where a < b."""
    both = ~(np.isnan(a) | np.isnan(b))
    a, b = a[both], b[both]
    draws = np.random.default_rng(seed).integers(len(a), size=(1000, len(a)))
    gaps = np.median(a[draws], axis=1) - np.median(b[draws], axis=1)
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(np.median(a) - np.median(b)), float(low), float(high), float(np.mean(a < b))


def main() -> None:
    def options(parser):
        parser.add_argument("--a", required=True, help="VARIANT/nfeNNN under the run's images/")
        parser.add_argument("--b", required=True, help="the reference, e.g. teacher/nfe050")

    args, prompts = eval_dir_args(__doc__, options)
    a, b = (measures(args.eval_dir / "images" / v, prompts) for v in (args.a, args.b))
    print(f"{args.a} − {args.b} on {args.prompts}, {len(prompts)} images (median gap, 95 % paired interval, "
          "share of images where A is lower):")
    for key in FIDELITY:
        gap, low, high, lower = paired_gap(a[key], b[key])
        print(f"  {key}: {np.nanmedian(a[key]):.3f} vs {np.nanmedian(b[key]):.3f}, gap {gap:+.3f} "
              f"[{low:+.3f}, {high:+.3f}], A lower on {100 * lower:.0f} %")
    only_a, only_b = int(np.sum(a["correct"] & ~b["correct"])), int(np.sum(b["correct"] & ~a["correct"]))
    print(f"  all five right: {100 * a['correct'].mean():.1f} % vs {100 * b['correct'].mean():.1f} %; right in A only "
          f"{only_a}, in B only {only_b} (sign test p = {sign_test(only_a, only_b):.2f})")


if __name__ == "__main__":
    main()
