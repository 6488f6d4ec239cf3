"""The particle swarms: initial states from trained adapters, one update per swarm and iteration, and the
checkpoint pointer that completes an iteration."""

from __future__ import annotations

from prefect import task

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import AdapterManifest, CheckpointPointer, RunInfo, SwarmStepReport

from ._log import checkpoint_line, log_info, pso_line
from ._retry import RETRY


@task(**RETRY, name="init-swarms", task_run_name="init-swarms")
def init_swarms(config: RunConfig, info: RunInfo, swarms: dict[str, AdapterManifest]) -> CheckpointPointer:
    """Write each named swarm's initial checkpoint from its trained adapters (swarm name → manifest) and, in
    adversarial mode, the initial pool; or find a resumed run's newest complete checkpoint. Returns the
    checkpoint pointer (``iteration`` to evaluate next, ``stopped``)."""
    run = stages.run_store(config)
    pool = None
    if config.mode == "adversarial":
        from dataswarms_core.stages.adversarial import write_initial_pool

        def pool() -> object:
            return write_initial_pool(config, info, run)

    return stages.init_swarms(config, run, swarms, before_pointer=pool)


@task(**RETRY, name="update-swarm", task_run_name="pso-iter{iteration:04d}-{swarm}")
def update_swarm(config: RunConfig, info: RunInfo, iteration: int, swarm: str) -> SwarmStepReport:
    """Record the swarm's utilities of the iteration, move it in memory, write its next checkpoint
    (docs/method.md §5). Returns (and logs) the update report (bests, step length, restarts, ``stopped``)."""
    step = stages.pso_step(config, stages.run_store(config), iteration, swarm)
    log_info(pso_line(step))
    return step


@task(**RETRY, name="complete-iteration", task_run_name="checkpoint-iter{iteration:04d}")
def complete_iteration(
    config: RunConfig, iteration: int, swarms: list[str], stopped: str | None
) -> CheckpointPointer:
    """Point the run at the checkpoints of ``iteration`` (every swarm has moved; in adversarial mode also the
    pool): written last, so a resumed run never starts from a half-written iteration. Named after the
    checkpoint folders it points at (``iter_<iteration>``)."""
    pointer = stages.write_checkpoint_pointer(
        stages.run_store(config), iteration, swarms, stopped, pool=config.mode == "adversarial"
    )
    log_info(checkpoint_line(pointer))
    return pointer
