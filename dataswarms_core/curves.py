"""Generalisation curves of Adversarial Swarms runs (docs/method.md §6): per iteration, the held-out test
score of the best test taker. One run gives one curve; the comparison of an adversarial run with its static
control (``adversarial.pool: static``) puts both curves in one plot and one table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .records import CurvePoint
from .report import MISSING, png_bytes

COLUMNS = [
    "run", "iteration", "test_taker", "pool_score", "held_out_score", "held_out_accuracy", "generated_share",
    "replaced",
]  # fmt: skip


def curve_frame(curves: Mapping[str, Sequence[CurvePoint]]) -> Any:
    """One row per (run label, iteration): the columns of :data:`COLUMNS`; a held-out score that could not
    be judged is NaN (missing, never 0).

    Args:
        curves: label (e.g. ``adversarial`` / ``static``, or a run name) → its curve, in iteration order.
    """
    import pandas as pd

    rows = [
        {"run": label, **{k: v for k, v in p.model_dump().items()}}
        for label, points in curves.items()
        for p in points
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"held_out_score": float, "held_out_accuracy": float})


def plot_curves(frame: Any, title: str = "generalisation") -> bytes:
    """PNG of two panels. Left: held-out test score of the best test taker per iteration, one solid line per
    run, its pool score dashed in the same colour. Right: its held-out accuracy against the reference answers.
    Runs get their own marker and line width, so identical curves stay visible one over the other; a missing
    score is a gap, never a 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=120)
    for i, (label, part) in enumerate(frame.groupby("run", sort=False)):
        style = {"color": f"C{i}", "marker": "osD^v"[i % 5], "markersize": max(9 - 2 * i, 4),
                 "linewidth": max(3.0 - 1.0 * i, 1.0)}  # fmt: skip
        left.plot(part["iteration"], part["held_out_score"], label=f"{label}: held-out test", **style)
        left.plot(
            part["iteration"], part["pool_score"], linestyle="--", alpha=0.6, label=f"{label}: pool", **style
        )
        right.plot(part["iteration"], part["held_out_accuracy"], label=label, **style)
    for ax, ylabel in (
        (left, "best test taker's mean judge score"),
        (right, "held-out accuracy (references)"),
    ):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return png_bytes(fig)


def _cell(value: Any) -> str:
    return MISSING if value is None or value != value else f"{value:.4f}"


def curves_markdown(frame: Any) -> str:
    """A markdown table: one row per iteration, per run its best test taker's held-out score, held-out accuracy
    and pool score, and the pool's generated share (``—``: missing)."""
    labels = list(dict.fromkeys(frame["run"]))
    whats = ("held-out", "accuracy", "pool", "generated")
    head = ["iteration"] + [f"{lab}: {what}" for lab in labels for what in whats]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for it in sorted(set(frame["iteration"])):
        cells = [str(it)]
        for lab in labels:
            row = frame[(frame["run"] == lab) & (frame["iteration"] == it)]
            if row.empty:
                cells += [MISSING] * len(whats)
                continue
            r = row.iloc[0]
            cells += [
                _cell(r["held_out_score"]), _cell(r["held_out_accuracy"]), _cell(r["pool_score"]),
                f"{r['generated_share']:.0%}",
            ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
