"""``dataswarms export``: the benchmark package of any checkpoint of a finished or interrupted run, as a
Prefect flow."""

from __future__ import annotations

from prefect import flow

from dataswarms.tasks import package_run
from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import BenchmarkManifest
from dataswarms_core.stages.package import local_run_info


@flow(
    name="data-swarms-package", flow_run_name="package-{config.run_name}", log_prints=False
)  # prints: progress lines on the terminal
def data_swarms_package(config: RunConfig, iteration: int | None = None) -> BenchmarkManifest:
    """Write ``<run>/packages/iter_NNNN`` for the checkpoint after ``iteration`` completed iterations (default:
    the newest) of the run ``config`` names, and return its manifest (docs/method.md §7)."""
    info = local_run_info(config, stages.run_store(config))
    e = config.export
    print(
        f"sampling {e.items} items from the global best (at most {e.max_extra_calls} extra calls)"
        + (", then reference answers" if e.answers == "reference-model" else "")
        + "; this takes minutes on a CPU",
        flush=True,
    )
    return package_run(config, info, iteration)
