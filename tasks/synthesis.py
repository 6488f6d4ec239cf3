"""Synthesis: every generator of the current swarm writes evaluation items."""

from __future__ import annotations

from typing import Any

from prefect import task

from dataswarms_core import stages
from dataswarms_core.config import RunConfig

from ._retry import RETRY


@task(**RETRY, name="synthesize-items", task_run_name="synthesize-items-iter{iteration}")
def synthesize_items(config: RunConfig, info: dict[str, Any], iteration: int) -> dict[str, Any]:
    """All generators of checkpoint ``swarm/iter_<iteration>`` sample items in shared batches from one
    loaded base model. Returns counts (items, parse failures) per generator."""
    return stages.synthesize(config, info, stages.run_store(config), iteration)
