"""Tasks of the baseline comparison (docs/method.md §9): re-measure a finished run's global best on fresh
samples, read its budget, and publish the comparison table."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import AdapterManifest, ComparisonTable, RemeasureReport, RunBudget
from dataswarms_core.stages.comparison import comparison_markdown, run_budget
from dataswarms_core.stages.layout import cache_store
from dataswarms_core.stages.package import local_run_info
from dataswarms_core.stages.remeasure import remeasure
from dataswarms_core.stages.sft import TEST_TAKERS
from dataswarms_core.storage import Store

from ._retry import RETRY
from .package import artifact_key


def _values(utilities: list[float | None]) -> str:
    return ", ".join("missing" if u is None else f"{u:.4f}" for u in utilities)


@task(**RETRY, name="remeasure", task_run_name="remeasure-{config.run_name}")
def remeasure_run(
    config: RunConfig, draws: int, held_out: AdapterManifest | None = None
) -> tuple[RemeasureReport, RunBudget]:
    """Re-measure the run's global best ``draws`` times on fresh samples with its own test takers and, given
    ``held_out`` (the trained ``held_out_test_takers``), with those too; return the report and the run's
    budget."""
    run = stages.run_store(config)
    info = local_run_info(config, run)
    key = stages.adapters_cache_key(config, info, TEST_TAKERS)
    takers = AdapterManifest.read(cache_store(config, TEST_TAKERS, key), "manifest.json")
    report = remeasure(config, info, run, takers, draws, held_out)
    budget = run_budget(run, config.generation.items_written)
    held = ""
    if report.held_out_test_takers:
        held = f"; held-out test takers {_values(report.held_out_utilities)} (mean {report.held_out_mean})"
    get_run_logger().info(
        f"{config.run_name} ({config.search}): in-search best {report.in_search_utility}, re-measured "
        f"{_values(report.utilities)} (mean {report.mean}){held}; {budget.generator_calls} generator calls, "
        f"{budget.answers} answers"
    )
    return report, budget


@task(**RETRY, name="comparison-table", task_run_name="comparison-table")
def publish_comparison(table: ComparisonTable, output_url: str, storage_options: dict) -> dict[str, str]:
    """Write ``baselines.json|csv|md`` (the strategies' table, then the per-run table in the markdown) and
    ``runs.csv`` (one line per run) under ``output_url``, and publish the table and report as artifacts; return
    role → URL."""
    import pandas as pd

    out = Store(output_url, storage_options)
    rows = [r.model_dump() for r in table.rows]
    files = {
        "json": table.write(out, "baselines.json"),
        "csv": out.write_csv("baselines.csv", pd.DataFrame(rows)),
        "runs_csv": out.write_csv("runs.csv", pd.DataFrame([r.model_dump() for r in table.runs])),
        "markdown": out.write_text("baselines.md", comparison_markdown(table)),
    }
    key = artifact_key(f"baselines-{table.task}-{table.objective}")
    description = f"The search against its baselines on {table.task} ({table.objective})"
    create_table_artifact(key=key, table=rows, description=description)
    create_markdown_artifact(key=f"{key}-report", markdown=comparison_markdown(table), description=description)
    return files
