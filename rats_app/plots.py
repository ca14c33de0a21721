"""Figures shared by the app, the evaluator and the trainer's run directory.

Built as ``matplotlib.figure.Figure`` objects, not through pyplot: no global figure registry, so a
long-running app does not accumulate figures and threads do not share pyplot state."""

from __future__ import annotations

import io
from pathlib import Path


def _subplots(ncols: int, figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def frontier_figure(rows: list[dict], metrics: list[str]):
    """Each metric against NFE: one line per variant (with 95 % CI bars if given), teacher dotted.

    ``rows``: dicts with ``variant``, ``nfe``, each metric, and optionally ``<metric>_ci``.
    """
    fig, axes = _subplots(max(1, len(metrics)), (4.6 * max(1, len(metrics)), 3.4))
    for ax, key in zip(axes, metrics):
        for name in dict.fromkeys(r["variant"] for r in rows if r["variant"] != "teacher"):
            pts = sorted((r["nfe"], r[key], r.get(f"{key}_ci") or 0.0) for r in rows if r["variant"] == name)
            x, y, e = zip(*pts)
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=name)
        for r in rows:
            if r["variant"] == "teacher":
                ax.axhline(r[key], color="gray", linestyle=":", label=f"teacher @ {r['nfe']}")
        ax.set_xlabel("NFE")
        ax.set_title(key)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def curves_figure(metrics: list[dict]):
    """A training run's curves: R_S, R_T and watch rewards; gate mean; matching loss; and, when the
    hacking watch read the world's ground truth, its residual and ideal error (the truth line)."""
    from rats_app.worlds.base import TRUTH_PREFIX

    truth = sorted({k for m in metrics for k in m.get("watch", {}) if k.startswith(TRUTH_PREFIX)})
    fig, axes = _subplots(4 if truth else 3, (17 if truth else 13, 3))
    for label, key in (("R_S (student)", "reward_student"), ("R_T (teacher)", "reward_teacher")):
        pts = [(m["step"], m[key]) for m in metrics if m.get(key) is not None]
        if pts:
            axes[0].plot(*zip(*pts), label=label)
    for name in sorted({k for m in metrics for k in m.get("watch", {})}):
        pts = [(m["step"], m["watch"][name]) for m in metrics if name in m.get("watch", {})]
        if name in truth:
            if name.endswith(("residual", "ideal_error")):  # 0-255 RMS: comparable with each other
                axes[3].plot(*zip(*pts), marker=".", label=name)
            continue
        axes[0].plot(*zip(*pts), "--", label=f"watch: {name}")
    if truth:
        axes[3].set_title("ground truth (lower is better)")
        axes[3].legend(fontsize=7)
    axes[0].set_title("rewards")
    gate = [(m["step"], m["gate_mean"]) for m in metrics if m.get("gate_mean") is not None]
    if gate:
        axes[1].plot(*zip(*gate))
    axes[1].set_ylim(0, 1)
    axes[1].set_title("gate mean")
    if metrics:
        axes[2].plot([m["step"] for m in metrics], [m["matching"] for m in metrics])
        axes[0].legend(fontsize=7)
    axes[2].set_title("matching loss")
    for ax in axes:
        ax.set_xlabel("step")
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Write a figure as PNG atomically."""
    from rats_app.io import atomic_write

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
