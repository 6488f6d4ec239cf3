"""Tasks of the hyper-parameter sweep (``dataswarms sweep``, docs/method.md §10): read a finished trial's value,
and publish the sweep's table, plot and best settings."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import RunSummary, SweepTable, SweepTrial
from dataswarms_core.storage import Store
from dataswarms_core.sweep import best_config_yaml, sweep_markdown, sweep_plot

from ._retry import RETRY
from .package import artifact_key


@task(**RETRY, name="sweep-trial", task_run_name="sweep-trial-{number:03d}")
def read_trial(
    config: RunConfig, number: int, params: dict, remeasured: float | None, draws: int, failure: str | None
) -> SweepTrial:
    """The trial's row from its run's ``summary.json``: value = the global best utility, or the re-measured mean
    with ``draws`` > 0; a run that failed (``failure``) or has no summary is a failed trial with no value."""
    store = stages.run_store(config)
    in_search = None
    if failure is None and not store.exists("summary.json"):
        failure = "no summary.json"
    if failure is None:
        in_search = RunSummary.read(store, "summary.json").global_best_utility
    value = (remeasured if draws else in_search) if failure is None else None
    state = "complete" if failure is None and value is not None else f"failed: {failure or 'no value (missing)'}"
    trial = SweepTrial(
        number=number, run_name=config.run_name or "", params=params, in_search=in_search, remeasured=remeasured,
        value=value, state=state,
    )  # fmt: skip
    get_run_logger().info(f"sweep trial {number} {params}: value {value} ({state})")
    return trial


@task(**RETRY, name="sweep-table", task_run_name="sweep-table")
def publish_sweep(table: SweepTable, config: RunConfig, output_url: str, storage_options: dict) -> dict[str, str]:
    """Write ``sweep.json|csv|md``, ``sweep.png`` and, when a trial has a value, ``best.yaml`` (the base
    configuration with the best settings) under ``output_url``; publish the table and report as artifacts.
    Returns role → URL."""
    import pandas as pd

    out = Store(output_url, storage_options)
    rows = [{"number": t.number, **t.params, "in_search": t.in_search, "remeasured": t.remeasured,
             "value": t.value, "state": t.state, "run_name": t.run_name} for t in table.trials]  # fmt: skip
    report = sweep_markdown(table)
    files = {
        "json": table.write(out, "sweep.json"),
        "csv": out.write_csv("sweep.csv", pd.DataFrame(rows)),
        "markdown": out.write_text("sweep.md", report),
    }
    files["plot"] = out.write_bytes("sweep.png", sweep_plot(table))
    if table.best_params is not None:
        files["best_config"] = out.write_text("best.yaml", best_config_yaml(config, table))
    key = artifact_key(f"sweep-{table.name}")
    description = f"Sweep {table.name} ({table.objective}, {table.sampler} sampler)"
    create_table_artifact(key=key, table=rows, description=description)
    create_markdown_artifact(key=f"{key}-report", markdown=report, description=description)
    return files
