"""The search against its baselines at equal budget, over seeds (``dataswarms compare --task``, docs/method.md §9).

Each (strategy, seed) is an ordinary run; its budget is read back from its iteration reports and its global
best is re-measured on fresh samples (:mod:`.remeasure`). The table gives, per strategy, the in-search best and
the re-measured value (means over seeds with Student-t 95 % intervals over seeds) and the calls spent.
"""

from __future__ import annotations

from ..records import (
    ComparisonRow,
    ComparisonRun,
    ComparisonTable,
    RemeasureReport,
    RunBudget,
    RunSummary,
    ScoringReport,
    SynthesisReport,
)
from ..report import MISSING
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


def comparison_run(summary: RunSummary, report: RemeasureReport, search: str, seed: int) -> ComparisonRun:
    """A run's line of the per-run table, from its ``summary.json`` and ``remeasure/remeasure.json``."""
    return ComparisonRun(
        search=search, seed=seed, run_name=summary.run_name, generator=report.generator,
        iteration=summary.global_best_iteration, in_search=report.in_search_utility, remeasured=report.utilities,
        held_out=report.held_out_utilities, missing_utilities=sum(len(m) for m in summary.missing_utilities),
        utilities=len(summary.generators) * summary.iterations_completed,
        items_per_iteration=summary.items_per_iteration, search_seconds=summary.wall_seconds,
        remeasure_seconds=report.seconds,
    )  # fmt: skip


def comparison_table(
    task: str, objective: str, runs: list[tuple[str, int, RemeasureReport, RunBudget, RunSummary]]
) -> ComparisonTable:
    """One row per strategy from its runs ``(search, seed, re-measurement, budget, summary)``, in first-seen
    order, and one per-run line for each run in the order given.

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
    per_run = [comparison_run(r[4], r[2], r[0], r[1]) for r in runs]
    return ComparisonTable(task=task, objective=objective, rows=rows, runs=per_run)


def _cell(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return MISSING
    return f"{mean:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")


def _draws(values: list[float | None]) -> str:
    return ", ".join(MISSING if v is None else f"{v:.3f}" for v in values)


def runs_markdown(table: ComparisonTable) -> str:
    """The per-run table as markdown: strategy, seed, chosen generator (and the iteration it was best at),
    in-search best, each re-measurement draw (and each against the held-out test takers, when configured),
    missing utilities, items kept per iteration and minutes of search and re-measurement; then the total
    minutes. ``—`` where missing; empty text when the table has no runs (a file written before they were kept).
    """
    if not table.runs:
        return ""
    held = any(r.held_out for r in table.runs)
    lines = [
        "## Per run",
        "",
        "| search | seed | chosen generator | in-search best | re-measured | "
        + ("held-out test takers | " if held else "")
        + "missing utilities | items per iteration | minutes (search + re-measurement) |",
        "| --- | ---: | --- | ---: | --- | " + ("--- | " if held else "") + "---: | --- | ---: |",
    ]
    for r in table.runs:
        best = MISSING if r.in_search is None else f"{r.in_search:.3f}"
        lines.append(
            f"| {r.search} | {r.seed} | {r.generator} (iter {r.iteration}) | {best} | {_draws(r.remeasured)} | "
            + (f"{_draws(r.held_out)} | " if held else "")
            + f"{r.missing_utilities} of {r.utilities} | {r.items_per_iteration} | "
            f"{r.search_seconds / 60:.1f} + {r.remeasure_seconds / 60:.1f} |"
        )
    search = sum(r.search_seconds for r in table.runs) / 60
    again = sum(r.remeasure_seconds for r in table.runs) / 60
    lines += [
        "",
        f"Re-measured: one value per draw. Missing utilities: generator × iteration utilities of the search with no "
        f"scorable item. The {len(table.runs)} runs took {search:.1f} minutes of search (the runs' wall times, "
        f"resumes included) and {again:.1f} minutes of re-measurement (the draws' synthesis and scoring).",
    ]
    return "\n".join(lines) + "\n"


def comparison_markdown(table: ComparisonTable, per_run: bool = True) -> str:
    """The table as markdown: strategy, in-search best and re-measured value (mean [95 % CI] over seeds), the
    value against held-out test takers when any run has them, seeds, generator calls, items, answers, judge
    failures; ``—`` where missing. With ``per_run``, the per-run table (:func:`runs_markdown`) follows."""
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
    text = "\n".join(lines) + "\n"
    return text + "\n" + runs_markdown(table) if per_run and table.runs else text
