"""Is a gap between two variants larger than chance? Paired statistics over one evaluate run.

Every variant of an evaluate run draws image i from the same prompt and seed, so two variants are
paired: their gap is known far better than each one's own interval suggests (a median σ of 120
images is ±0.07 px on its own; the gap between two such medians, resampled jointly, ±0.03–0.06).
``evaluate`` reports each variant against the teacher this way, so a "beats its teacher" or a
"falls short of it" is read with its uncertainty, not off two point estimates.
"""

from __future__ import annotations

from math import comb

import numpy as np

from rats_app.worlds.fidelity import FIDELITY

RESAMPLES = 1000
# The world checker's fidelity measures (blur, residual, error to the ideal render) are errors: lower is
# better, compared by their medians. Rewards are compared by their means, higher is better.


def paired_gap(a, b, statistic: str = "median", seed: int = 0) -> tuple[float, float, float]:
    """statistic(a) − statistic(b) over the images both have (NaN: none there), with its 95 %
    bootstrap interval from resampling the image indices jointly."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = ~(np.isnan(a) | np.isnan(b))
    a, b = a[both], b[both]
    if len(a) < 2:
        return float("nan"), float("nan"), float("nan")
    reduce = np.median if statistic == "median" else np.mean
    draws = np.random.default_rng(seed).integers(len(a), size=(RESAMPLES, len(a)))
    gaps = reduce(a[draws], axis=1) - reduce(b[draws], axis=1)
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(reduce(a) - reduce(b)), float(low), float(high)


def sign_test(only_a: int, only_b: int) -> float:
    """Two-sided exact p of a split as uneven as only_a : only_b among the discordant pairs (the
    images right in one variant and wrong in the other)."""
    n, k = only_a + only_b, min(only_a, only_b)
    return 1.0 if n == 0 else min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n)


def verdict(low: float, high: float, lower_is_better: bool) -> str:
    """better / worse when the interval lies wholly on one side of 0, else "≈" (within chance)."""
    if np.isnan(low) or low <= 0 <= high:
        return "≈"
    return "better" if (high < 0) == lower_is_better else "worse"


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per-image values of two variants (same keys, same images) -> per measure: the gap, its
    interval and the verdict. "correct" (booleans) gets the rate gap in points and a sign test."""
    out = {}
    for key in [k for k in a if k in b]:
        if key == "correct":
            right_a, right_b = np.asarray(a[key], bool), np.asarray(b[key], bool)
            only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
            p = sign_test(only_a, only_b)
            gap = 100.0 * (only_a - only_b) / len(right_a)
            out[key] = {"gap": gap, "only_a": only_a, "only_b": only_b, "p": p,
                        "verdict": "≈" if p >= 0.05 else ("better" if gap > 0 else "worse")}
            continue
        lower = key in FIDELITY
        gap, low, high = paired_gap(a[key], b[key], "median" if lower else "mean")
        out[key] = {"gap": gap, "low": low, "high": high, "verdict": verdict(low, high, lower)}
    return out


def cell(result: dict) -> str:
    """One comparison as a table cell: "−0.63 [−1.20, −0.23] better", "+1.7 pts (6:4, p 0.75) ≈"."""
    if "p" in result:
        return f"{result['gap']:+.1f} pts ({result['only_a']}:{result['only_b']}, p {result['p']:.2f}) {result['verdict']}"
    return f"{result['gap']:+.3f} [{result['low']:+.3f}, {result['high']:+.3f}] {result['verdict']}"


PAIRED_KEY = "vs_teacher"  # an evaluate row's comparisons against the teacher
LABELS = {"correct": "all five right", "sigma": "σ px (median)", "residual": "residual (median)",
          "ideal_error": "ideal err (median)"}


def add_paired(rows: list[dict], per_image: list[dict]) -> None:
    """evaluate's rows (with their per-image values): each row against the teacher's, under PAIRED_KEY;
    nothing when the run has no teacher row."""
    teacher = next((values for r, values in zip(rows, per_image) if r["variant"] == "teacher"), None)
    for r, values in zip(rows, per_image):
        if teacher is not None and r["variant"] != "teacher":
            r[PAIRED_KEY] = compare(values, teacher)


def paired_table(rows: list[dict]) -> str:
    """The rows against the teacher as markdown ("" when there is none)."""
    paired = [r for r in rows if PAIRED_KEY in r]
    if not paired:
        return ""
    teacher = next(r for r in rows if r["variant"] == "teacher")
    keys = list(paired[0][PAIRED_KEY])
    lines = [f"\nAgainst the teacher @ {teacher['nfe']}, paired image by image (same prompts and seeds): the gap "
             "(row − teacher; rewards: means, σ / residual / ideal error: medians) with its 95 % bootstrap "
             "interval; all five right: the gap in points, the images right in one only (row:teacher) and a "
             "sign test. better / worse: beyond chance; ≈: within it.\n",
             "| variant | NFE | " + " | ".join(LABELS.get(k, k) for k in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    lines += [f"| {r['variant']} | {r['nfe']} | " + " | ".join(cell(r[PAIRED_KEY][k]) for k in keys) + " |"
              for r in paired]
    return "\n".join(lines) + "\n"
