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
    return summary
