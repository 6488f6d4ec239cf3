"""Adversarial Swarms (docs/method.md §6): the pool update, the test takers' utilities on the pool, and the
generalisation curve's point of each iteration."""

from __future__ import annotations

from prefect import task

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import HeldOutReport, PoolReport, PoolScoringReport, RunInfo
from dataswarms_core.stages import adversarial

from ._log import held_out_line, log_info, pool_line, pool_scoring_line
from ._retry import RETRY


@task(**RETRY, name="update-pool", task_run_name="pool-iter{iteration:04d}")
def update_pool(config: RunConfig, info: RunInfo, iteration: int) -> PoolReport:
    """Replace each pool entry with probability p by an item of the moved generators (unchanged with
    ``adversarial.pool: static``); returns (and logs) the replaced positions and the generated share."""
    report = adversarial.update_pool(config, info, stages.run_store(config), iteration)
    log_info(pool_line(report))
    return report


@task(**RETRY, name="score-test-takers", task_run_name="scoring-iter{iteration:04d}-test_takers")
def score_test_takers(config: RunConfig, info: RunInfo, iteration: int) -> PoolScoringReport:
    """Every test-taker particle answers the pool; its utility is its mean judge score there (logged)."""
    report = adversarial.score_test_takers(config, info, stages.run_store(config), iteration)
    log_info(pool_scoring_line(report))
    return report


@task(**RETRY, name="track-held-out", task_run_name="held-out-iter{iteration:04d}")
def track_held_out(config: RunConfig, info: RunInfo, iteration: int) -> HeldOutReport:
    """The iteration's best test taker on held-out real test items: a point of the generalisation curve
    (logged)."""
    report = adversarial.track_held_out(config, info, stages.run_store(config), iteration)
    log_info(held_out_line(report))
    return report
