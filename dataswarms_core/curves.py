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
    """PNG: held-out test score of the best test taker per iteration, one solid line per run, its pool score
    dashed and its held-out accuracy (against reference answers) dotted in the same colour; a missing score is a
    gap, never a 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for i, (label, part) in enumerate(frame.groupby("run", sort=False)):
        colour = f"C{i}"
        ax.plot(
            part["iteration"],
            part["held_out_score"],
            marker="o",
            color=colour,
            label=f"{label}: held-out test",
        )
        ax.plot(
            part["iteration"],
            part["pool_score"],
            linestyle="--",
            color=colour,
            alpha=0.6,
            label=f"{label}: pool",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel("best test taker's mean score")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
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
