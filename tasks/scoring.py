"""Scoring: test takers answer, the judge scores, the objective gives one utility per generator."""

from __future__ import annotations

from typing import Any

from prefect import task

from dataswarms_core import stages
from dataswarms_core.config import RunConfig

from ._retry import RETRY


@task(**RETRY, name="score-items", task_run_name="score-items-iter{iteration}")
def score_items(
    config: RunConfig, info: dict[str, Any], iteration: int, test_takers: dict[str, Any]
) -> dict[str, Any]:
    """Returns the score matrix (generators × test takers), utilities, every objective component and
    judge-failure counts."""
    return stages.score(config, info, stages.run_store(config), iteration, test_takers)


@task(**RETRY, name="score-reference", task_run_name="score-reference")
def score_reference(config: RunConfig, info: dict[str, Any], test_takers: dict[str, Any]) -> dict[str, Any]:
    """Test takers answer real dev items once per run; returns their mean scores (novelty's reference)."""
    return stages.score_reference(config, info, stages.run_store(config), test_takers)
