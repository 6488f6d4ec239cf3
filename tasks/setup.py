"""Prepare a run: resolve the base model, load the task, write config.yaml and run.json."""

from __future__ import annotations

from prefect import task

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import RunInfo

from ._log import log_info, prepare_line
from ._retry import RETRY


@task(**RETRY, name="prepare-run", task_run_name="prepare")
def prepare_run(
    config: RunConfig, resume: bool = False, force: bool = False, flow_run_id: str | None = None
) -> RunInfo:
    """Resolve the base model (first use converts the built-in GGUF), check the task file, start the run
    folder — or check an existing one before resuming it (also when ``flow_run_id`` created it: a retry).
    Returns the run info (paths, fingerprints, hashes; also in ``run.json``), and logs it."""
    info = stages.prepare_run(config, resume, force, flow_run_id)
    log_info(prepare_line(info))
    return info
