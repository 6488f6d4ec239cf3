"""Export: the benchmark package, metrics, report, summary.json, Prefect artifacts."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import RunInfo, RunSummary
from dataswarms_core.stages.layout import EXPORT_DIR

from ._retry import RETRY
from .package import artifact_key, publish_card


@task(**RETRY, name="export-results", task_run_name="export-results")
def export_results(config: RunConfig, info: RunInfo, started_at: float) -> RunSummary:
    """Write every export and ``summary.json``; publish a table artifact (utility per iteration and
    particle) and a markdown artifact (the report). Returns the summary."""
    run = stages.run_store(config)
    summary = stages.export_run(config, info, run, started_at)
    metrics = run.read_parquet(f"{EXPORT_DIR}/metrics.parquet")
    key = artifact_key(summary.run_name)
    create_table_artifact(
        key=f"{key}-metrics",
        table=metrics.round(4).to_dict(orient="records"),
        description=f"Per-iteration metrics of {summary.run_name} ({summary.objective})",
    )
    create_markdown_artifact(
        key=f"{key}-report",
        markdown=run.read_text(f"{EXPORT_DIR}/report.md"),
        description=f"Report of {summary.run_name}",
    )
    publish_card(run, summary.run_name, summary.iterations_completed, summary.package_version)
    if summary.adversarial is not None:
        _publish_adversarial(run, summary, key)
    return summary


POOL_ITEMS_SHOWN = 500  # rows of the pool-items table artifact (all of them are in export/pool_items.jsonl)


def _publish_adversarial(run, summary: RunSummary, key: str) -> None:
    """Table artifacts of an adversarial run: the generalisation curve, the test takers' utilities per
    iteration, and the generated items that entered the pool with their provenance."""
    a = summary.adversarial
    create_table_artifact(
        key=f"{key}-generalisation",
        table=[p.model_dump() for p in a.curve],
        description=f"Generalisation curve of {summary.run_name} (pool: {a.pool}): the best test taker per "
        "iteration, its held-out test and pool scores",
    )
    metrics = run.read_parquet(f"{EXPORT_DIR}/test_takers.parquet")
    create_table_artifact(
        key=f"{key}-test-takers",
        table=metrics.round(4).to_dict(orient="records"),
        description=f"Test-taker utilities (mean judge score on the pool) of {summary.run_name}",
    )
    items = run.read_jsonl(f"{EXPORT_DIR}/pool_items.jsonl")
    create_table_artifact(
        key=f"{key}-pool-items",
        table=items[:POOL_ITEMS_SHOWN],
        description=f"Generated items that entered the pool of {summary.run_name} ({len(items)}; first "
        f"{min(len(items), POOL_ITEMS_SHOWN)} shown; all in export/pool_items.jsonl)",
    )
