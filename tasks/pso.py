"""The particle swarm: initial state from the seed generators, then one update per iteration."""

from __future__ import annotations

from typing import Any

from prefect import task

from dataswarms_core import stages
from dataswarms_core.config import RunConfig

from ._retry import RETRY


@task(**RETRY, name="init-swarm", task_run_name="init-swarm")
def init_swarm(config: RunConfig, info: dict[str, Any], seed_generators: dict[str, Any]) -> dict[str, Any]:
    """Write the initial swarm checkpoint from the seed generators, or find a resumed run's newest complete
    checkpoint. Returns the checkpoint pointer (``iteration`` to evaluate next, ``stopped``)."""
    return stages.init_swarm_checkpoint(config, seed_generators, stages.run_store(config))


@task(**RETRY, name="update-swarm", task_run_name="update-swarm-iter{iteration}")
def update_swarm(config: RunConfig, info: dict[str, Any], iteration: int) -> dict[str, Any]:
    """Record the iteration's utilities, move the swarm in memory, write the next checkpoint (docs/method.md §5).
    Returns the update report (bests, step length, restarts, ``stopped``)."""
    return stages.pso_step(config, stages.run_store(config), iteration)
