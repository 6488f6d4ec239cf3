"""Scoring: test takers answer, the judge scores, the objective gives one utility per generator."""

from __future__ import annotations

from prefect import task

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import AdapterManifest, ReferenceScores, RunInfo, ScoringReport

from ._log import log_info, reference_line, scoring_line
from ._retry import RETRY


@task(**RETRY, name="score-items", task_run_name="scoring-iter{iteration:04d}-generators")
def score_items(
    config: RunConfig, info: RunInfo, iteration: int, test_takers: AdapterManifest
) -> ScoringReport:
    """Returns the score matrix (generators × test takers), utilities, every objective component and
    judge-failure counts (the utilities and failures are logged at INFO). ``test_takers`` is the manifest of the
    trained LoRA test takers."""
    report = stages.score(config, info, stages.run_store(config), iteration, test_takers)
    log_info(scoring_line(report))
    return report


@task(**RETRY, name="score-reference", task_run_name="reference")
def score_reference(config: RunConfig, info: RunInfo, test_takers: AdapterManifest) -> ReferenceScores:
    """Test takers answer real dev items once per run; returns (and logs) their mean scores (novelty's reference)."""
    scores = stages.score_reference(config, info, stages.run_store(config), test_takers)
    log_info(reference_line(scores))
    return scores
