"""The report of a search (docs/method.md §7): per-iteration metrics, the plot of utilities, and the markdown
report (also the Prefect artifact)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from .records import BenchmarkItem, ItemRow, RunSummary, ScoringReport, SwarmStepReport, SynthesisReport


def metrics_frame(
    synthesis: Sequence[SynthesisReport], scoring: Sequence[ScoringReport], steps: Sequence[SwarmStepReport]
) -> Any:
    """One row per (iteration, particle): utility, bests, step length, restarts, counts and timings.

    Missing is shown as missing: ``utility`` and ``objective_<name>`` are NaN (an empty CSV cell) where a
    generator wrote no items or its objective is undefined; ``pso_utility`` is what the swarm update recorded
    there (the objective's lowest value, docs/method.md §4). ``copies`` counts the items left out as copies
    (docs/method.md §2, "Copies"); ``copy_rate`` is ``copies / (items + copies)``, in [0, 1], NaN when the
    generator kept no item and copied none.

    Args:
        synthesis, scoring, steps: one report per completed iteration, in order.

    Returns:
        A pandas DataFrame (iterations × particles rows).
    """
    import pandas as pd

    rows = []
    for k, (syn, sco, pso) in enumerate(zip(synthesis, scoring, steps, strict=True)):
        for i, g in enumerate(sco.generators):
            c = syn.counts[g]
            rows.append(
                {
                    "iteration": k,
                    "particle": g,
                    "utility": math.nan if g in sco.missing_utilities else sco.utilities[i],
                    "pso_utility": sco.utilities[i],
                    "personal_best_utility": pso.personal_best_utility[i],
                    "global_best_utility": pso.global_best_utility,
                    "global_worst_utility": pso.global_worst_utility,
                    "step_length": pso.step_length,
                    "restarted": i in pso.restarted,
                    "items": c.items,
                    "parse_failures": c.parse_failures,
                    "duplicates": c.duplicates,
                    "copies": c.copies,
                    "copy_rate": c.copies / (c.items + c.copies) if c.items + c.copies else math.nan,
                    "empty": g in sco.empty_generators,
                    "judge_failures": sco.judge_failures_per_generator[g],
                    **{
                        f"objective_{name}": math.nan
                        if g in sco.empty_generators or g in sco.undefined.get(name, [])
                        else vals[i]
                        for name, vals in sco.components.items()
                    },
                    **{f"score_{t}": sco.score_matrix[i][j] for j, t in enumerate(sco.test_takers)},
                    "seconds_synthesis": syn.seconds,
                    "seconds_scoring": sco.seconds,
                    "seconds_pso": pso.seconds,
                }
            )
    return pd.DataFrame(rows)


def plot_utilities(frame: Any) -> bytes:
    """PNG of every particle's utility per iteration, with the global best dashed; a missing utility is not
    drawn (a gap in the line, listed under the axis), never as a 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for name, part in frame.groupby("particle"):
        ax.plot(part["iteration"], part["utility"], marker="o", label=str(name))
    best = frame.groupby("iteration")["global_best_utility"].first()
    ax.plot(best.index, best.values, color="black", linestyle="--", label="global best")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    missing = frame[frame["utility"].isna()]
    note = "; ".join(f"{r.particle} at {r.iteration}" for r in missing.itertuples())
    ax.set_xlabel(
        "iteration" + (f"\n(missing, not drawn: {note})" if note else ""), fontsize=8 if note else None
    )
    ax.set_ylabel("utility")
    ax.legend(fontsize=7)
    return png_bytes(fig)


def png_bytes(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (tight layout); the figure is closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


MISSING = "—"


def _cell(value: float) -> str:
    return MISSING if value is None or value != value else f"{value:.4f}"


def report_markdown(
    summary: RunSummary, frame: Any, rows: Sequence[ItemRow | BenchmarkItem], n_examples: int = 5
) -> str:
    """A short human-readable report of a search (also used as the Prefect markdown artifact)."""
    table = frame.pivot(index="iteration", columns="particle", values="utility")
    lines = [
        f"# {'Adversarial Swarms' if summary.mode == 'adversarial' else 'Data Swarms'} search `{summary.run_name}`",
        "",
        f"Objective **{summary.objective}** (judge {summary.judge}), {len(summary.generators)} generators, "
        f"test takers {', '.join(summary.test_takers)}, base model {summary.base_model}, task {summary.task}.",
        "",
        f"- iterations completed: {summary.iterations_completed} (stopped: {summary.stopped})",
        f"- global best utility: {summary.global_best_utility:.4f} ({summary.global_best_particle}, "
        f"iteration {summary.global_best_iteration})",
        f"- parse failures: {summary.parse_failures}, judge failures: {summary.judge_failures}, "
        f"empty generators: {summary.empty_generators}",
        f"- wall time: {summary.wall_seconds:.0f} s",
        "",
        "## Utility per iteration and particle",
        "",
        "| iteration | " + " | ".join(map(str, table.columns)) + " |",
        "|---|" + "---|" * len(table.columns),
    ]
    for it, row in table.iterrows():
        lines.append(f"| {it} | " + " | ".join(_cell(v) for v in row.values) + " |")
    if any(summary.missing_utilities):
        lines += ["", f"{MISSING}: missing (no items, or the objective undefined); the swarm update used the "
                  "objective's lowest value there (`pso_utility` in the metrics)."]  # fmt: skip
    last_iteration = summary.iterations_completed - 1
    last = frame[frame["iteration"] == last_iteration].set_index("particle")
    components = [c for c in frame.columns if c.startswith("objective_")]
    if components:
        names = summary.generators
        lines += ["", f"## Objective components, iteration {last_iteration}", ""]
        lines += ["| objective | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [
            f"| {c.removeprefix('objective_')} | " + " | ".join(_cell(last.at[g, c]) for g in names) + " |"
            for c in components
        ]
    shown = min(n_examples, len(rows))
    lines += [
        "",
        "![utilities](utilities.png)",
        "",
        f"## Items from the global best (first {shown} of {len(rows)})",
        "",
    ]
    lines += [f"{i}. {r.item}" for i, r in enumerate(rows[:n_examples], start=1)] or ["(none parsed)"]
    return "\n".join(lines) + "\n"
