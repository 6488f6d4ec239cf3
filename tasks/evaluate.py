"""Evaluation of models on a benchmark package, and the leaderboard with its Prefect artifacts."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dataswarms_core.model_spec import parse_model_spec
from dataswarms_core.records import Leaderboard, ModelEvaluation
from dataswarms_core.stages.evaluate import evaluate_model, open_package, write_leaderboard
from dataswarms_core.storage import Store

from ._retry import RETRY
from .package import artifact_key


@task(**RETRY, name="evaluate-model", task_run_name="evaluate-{spec}")
def evaluate_one(
    package_url: str, spec: str, output_url: str, storage_options: dict
) -> tuple[ModelEvaluation, bool]:
    """One model answers every item of the package, judged (a stored result of the same key is reused).
    Returns (evaluation, cached)."""
    package = open_package(package_url, storage_options)
    return evaluate_model(
        package, parse_model_spec(spec), Store(output_url, storage_options), storage_options
    )


@task(**RETRY, name="leaderboard", task_run_name="leaderboard")
def leaderboard(
    package_url: str,
    evaluations: list[ModelEvaluation],
    cached: list[str],
    output_url: str,
    storage_options: dict,
) -> Leaderboard:
    """Rank the models, write the leaderboard files, publish a table and a markdown artifact."""
    package = open_package(package_url, storage_options)
    out = Store(output_url, storage_options).child("leaderboard")
    board = write_leaderboard(package, evaluations, out, cached, seed=package.config.seed)
    key = artifact_key(f"{board.benchmark}-{board.benchmark_version}")
    create_table_artifact(
        key=f"{key}-leaderboard",
        table=[r.model_dump() for r in board.rows],
        description=f"Leaderboard of {board.benchmark} (version {board.benchmark_version})",
    )
    create_markdown_artifact(
        key=f"{key}-leaderboard-report",
        markdown=out.read_text("leaderboard.md"),
        description=f"Leaderboard of {board.benchmark} (version {board.benchmark_version})",
    )
    return board
