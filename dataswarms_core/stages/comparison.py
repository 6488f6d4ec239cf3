"""The search against its baselines at equal budget, over seeds (``dataswarms compare --task``, docs/method.md §9).

Each (strategy, seed) is an ordinary run; its budget is read back from its iteration reports and its global
best is re-measured on fresh samples (:mod:`.remeasure`). The table gives, per strategy, the in-search best and
the re-measured value (means over seeds with Student-t 95 % intervals over seeds) and the calls spent.
"""

from __future__ import annotations

from ..records import (
    ComparisonRow,
    ComparisonTable,
    RemeasureReport,
    RunBudget,
    ScoringReport,
    SynthesisReport,
)
from ..seeding import GENERATOR_SWARM
from ..storage import Store
from .layout import completed_iterations, iter_key, swarm_iter_key
from .remeasure import t_interval


def run_budget(run: Store, items_written: int) -> RunBudget:
    """What a finished run spent, from its iteration reports: generator calls (requested items / items per
    call), items kept, test-taker answers, answer and judge failures.

    Args:
        items_written: ``generation.items_written`` of the run (items asked per call).
    """
    calls = items = answers = answer_failures = judge_failures = 0
    for k in range(completed_iterations(run)):
        synthesis = SynthesisReport.read(run, iter_key(k, "synthesis.json"))
        scoring = ScoringReport.read(run, swarm_iter_key(k, GENERATOR_SWARM, "scoring.json"))
        calls += sum(c.requested for c in synthesis.counts.values()) // items_written
        items += synthesis.items
        answers += scoring.answers
        answer_failures += scoring.answer_failures
        judge_failures += scoring.judge_failures
    return RunBudget(
        generator_calls=calls, items=items, answers=answers, answer_failures=answer_failures,
        judge_failures=judge_failures,
    )  # fmt: skip


def comparison_table(
    task: str, objective: str, runs: list[tuple[str, int, RemeasureReport, RunBudget]]
) -> ComparisonTable:
    """One row per strategy from its runs ``(search, seed, re-measurement, budget)``, in first-seen order.

    In-search values are each run's global best; re-measured values each run's mean over its draws (runs whose
    draws all missed are counted in ``missing_runs``). Means and Student-t 95 % intervals are over seeds.
    """
    rows = []
    for search in dict.fromkeys(r[0] for r in runs):
        mine = [r for r in runs if r[0] == search]
        found = [r[2].in_search_utility for r in mine if r[2].in_search_utility is not None]
        again = [r[2].mean for r in mine if r[2].mean is not None]
        f_mean, f_low, f_high = t_interval(found)
        r_mean, r_low, r_high = t_interval(again)
        held = [r[2].held_out_mean for r in mine if r[2].held_out_mean is not None]
        h_mean, h_low, h_high = t_interval(held)
        budgets = [r[3] for r in mine]
        rows.append(
            ComparisonRow(
                search=search, seeds=[r[1] for r in mine], in_search=f_mean, in_search_low=f_low,
                in_search_high=f_high, remeasured=r_mean, remeasured_low=r_low, remeasured_high=r_high,
                remeasured_per_seed=[r[2].mean for r in mine], missing_runs=len(mine) - len(again),
                held_out=h_mean, held_out_low=h_low, held_out_high=h_high,
                held_out_per_seed=[r[2].held_out_mean for r in mine if r[2].held_out_test_takers],
                generator_calls=sum(b.generator_calls for b in budgets), items=sum(b.items for b in budgets),
                answers=sum(b.answers for b in budgets), judge_failures=sum(b.judge_failures for b in budgets),
            )  # fmt: skip
        )
    return ComparisonTable(task=task, objective=objective, rows=rows)


def _cell(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")


def comparison_markdown(table: ComparisonTable) -> str:
    """The table as markdown: strategy, in-search best and re-measured value (mean [95 % CI] over seeds), the
    value against held-out test takers when any run has them, seeds, generator calls, items, answers, judge
    failures; ``—`` where missing."""
    held = any(r.held_out_per_seed for r in table.rows)
    lines = [
        f"# Search against baselines: {table.task}, objective {table.objective}",
        "",
        "| search | in-search best | re-measured | " + ("held-out test takers | " if held else "")
        + "seeds | generator calls | items | answers | judge failures |",
        "| --- | ---: | ---: | " + ("---: | " if held else "") + "---: | ---: | ---: | ---: | ---: |",
    ]
    for r in table.rows:
        lines.append(
            f"| {r.search} | {_cell(r.in_search, r.in_search_low, r.in_search_high)} | "
            f"{_cell(r.remeasured, r.remeasured_low, r.remeasured_high)} | "
            + (f"{_cell(r.held_out, r.held_out_low, r.held_out_high)} | " if held else "")
            + f"{len(r.seeds)} | {r.generator_calls} | {r.items} | {r.answers} | {r.judge_failures} |"
        )
    lines += [
        "",
        "In-search best: the global best utility (a maximum of noisy estimates, biased upwards). Re-measured: the "
        "same generator on fresh samples with seeds the search never used"
        + (", scored by the search's test takers and by held-out test takers it never saw" if held else "")
        + ". Means over seeds, Student-t 95 % intervals over seeds; — where missing. Generator calls are equal "
        "by construction; answers follow the items written.",
    ]
    return "\n".join(lines) + "\n"
