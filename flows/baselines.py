"""``dataswarms compare --task``: the search and its baselines at equal budget over seeds, every chosen
generator re-measured on fresh samples, one table (docs/method.md §9), as one Prefect flow.

For each seed and strategy the run ``compare-<task>-<objective>-<strategy>-s<seed>`` is an ordinary search
subflow (a finished one, with its ``summary.json``, is reused; an unfinished one resumes), then its global best
is re-measured (and, with ``held_out_test_takers``, scored against them too; they are trained once per seed).
Seed s runs with master seed ``config.seed + s``; the trained adapters of one seed are shared
by its strategies (the adapter cache), so the strategies differ only in the search.
"""

from __future__ import annotations

from prefect import flow

from dataswarms.tasks.compare import publish_comparison, remeasure_run
from dataswarms.tasks.sft import train_test_takers
from dataswarms_core.config import RunConfig
from dataswarms_core.records import ComparisonTable, RunSummary
from dataswarms_core.stages.comparison import comparison_table
from dataswarms_core.stages.layout import run_store, task_stem
from dataswarms_core.stages.package import local_run_info
from dataswarms_core.stages.remeasure import held_out_config
from dataswarms_core.stages.sft import TEST_TAKERS
from dataswarms_core.storage import join

from .search import _adapters, data_swarms_search

DEFAULT_SEARCHES = ("pso", "seed-best", "base-model", "prompted", "random", "cma-es")


def comparison_runs(config: RunConfig, seeds: int, searches: list[str]) -> list[RunConfig]:
    """The configurations of the comparison's runs, seed by seed, strategy by strategy."""
    name = f"compare-{task_stem(config)}-{config.scoring.objective}"
    return [
        RunConfig.model_validate(
            {**config.model_dump(), "seed": config.seed + s, "search": search, "run_name": f"{name}-{search}-s{s}"}
        )
        for s in range(seeds)
        for search in searches
    ]


def comparison_url(config: RunConfig) -> str:
    """Where a comparison's files go by default: ``<storage.root>/comparisons/<task>-<objective>``."""
    return join(config.storage.root, "comparisons", f"{task_stem(config)}-{config.scoring.objective}")


@flow(name="data-swarms-compare", flow_run_name="compare-{config.scoring.objective}", log_prints=False)
def data_swarms_compare(
    config: RunConfig, seeds: int = 3, searches: list[str] | None = None, draws: int = 3, output_url: str | None = None
) -> ComparisonTable:
    """Run the search and each baseline for ``seeds`` seeds, re-measure each chosen generator ``draws`` times,
    and write the table to ``output_url`` (default ``<storage.root>/comparisons/<task>-<objective>``).

    Raises:
        ValueError: ``seeds`` or ``draws`` < 1, or an unknown strategy.
    """
    if seeds < 1 or draws < 1:
        raise ValueError(f"seeds and draws must be at least 1, got {seeds} and {draws}")
    runs = []
    for cfg in comparison_runs(config, seeds, list(searches or DEFAULT_SEARCHES)):
        store = run_store(cfg)
        if not store.exists("summary.json"):  # else a finished run of this name: reused
            data_swarms_search(cfg, resume=True)
        summary = RunSummary.read(store, "summary.json")
        held = None
        if cfg.held_out_test_takers is not None:  # trained once per seed: the strategies share the cache
            info = local_run_info(cfg, store)
            held = _adapters(train_test_takers, held_out_config(cfg), info, TEST_TAKERS)
        report, budget = remeasure_run(cfg, draws, held)
        runs.append((cfg.search, cfg.seed, report, budget, summary))
    table = comparison_table(task_stem(config), config.scoring.objective, runs)
    publish_comparison(table, output_url or comparison_url(config), config.storage.public_options())
    return table
