"""Scoring: test takers answer, the judge scores, the objective gives one utility per generator."""

from __future__ import annotations

from prefect import task

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import AdapterManifest, ReferenceScores, RunInfo, ScoringReport

from ._retry import RETRY


@task(**RETRY, name="score-items", task_run_name="score-items-iter{iteration}")
def score_items(
    config: RunConfig, info: RunInfo, iteration: int, test_takers: AdapterManifest
) -> ScoringReport:
    """Returns the score matrix (generators × test takers), utilities, every objective component and
    judge-failure counts. ``test_takers`` is the manifest of the trained LoRA test takers."""
    return stages.score(config, info, stages.run_store(config), iteration, test_takers)


@task(**RETRY, name="score-reference", task_run_name="score-reference")
def score_reference(config: RunConfig, info: RunInfo, test_takers: AdapterManifest) -> ReferenceScores:
    """Test takers answer real dev items once per run; returns their mean scores (novelty's reference)."""
    return stages.score_reference(config, info, stages.run_store(config), test_takers)
