"""Synthesis: every generator of the current swarm writes evaluation items."""

from __future__ import annotations

from prefect import task

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import RunInfo, SynthesisReport

from ._log import log_info, synthesis_line
from ._retry import RETRY


@task(**RETRY, name="synthesize-items", task_run_name="synthesis-iter{iteration:04d}")
def synthesize_items(config: RunConfig, info: RunInfo, iteration: int) -> SynthesisReport:
    """All generators of checkpoint ``swarms/generators/iter_<iteration>`` sample items in shared batches from one
    loaded base model. Returns counts (items, parse failures) per generator; logs them at INFO."""
    report = stages.synthesize(config, info, stages.run_store(config), iteration)
    log_info(synthesis_line(report))
    return report
