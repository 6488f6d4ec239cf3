"""Benchmark refresh tasks: plan the next version, publish the search's package as that version, compare
its leaderboard with the previous version's, and record the finished version (:mod:`dataswarms_core.refresh`)."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dataswarms_core.config import RunConfig
from dataswarms_core.records import BenchmarkManifest, Leaderboard, RunSummary
from dataswarms_core.refresh import (
    BenchmarkVersion,
    LeaderboardChange,
    RefreshPlan,
    change_markdown,
    leaderboard_change,
    plan_refresh,
    publish_version,
    record_version,
    version_folder,
)
from dataswarms_core.stages.evaluate import LEADERBOARD_DIR
from dataswarms_core.stages.layout import now
from dataswarms_core.storage import Store, join

from ._retry import RETRY
from .package import artifact_key


@task(**RETRY, name="plan-refresh", task_run_name="plan-refresh-{config.benchmark.name}")
def plan(config: RunConfig) -> RefreshPlan:
    """The next refresh of ``config.benchmark`` (see :func:`~dataswarms_core.refresh.plan_refresh`)."""
    return plan_refresh(config)


@task(**RETRY, name="publish-version", task_run_name="publish-{plan.benchmark}-v{plan.refresh:04d}")
def publish(plan: RefreshPlan, package_url: str) -> BenchmarkManifest:
    """Copy the search's package to ``benchmarks/<name>/vNNNN`` (kept when a retry finds it complete)."""
    return publish_version(plan, package_url)


@task(
    **RETRY,
    name="leaderboard-change",
    task_run_name="leaderboard-change-{plan.benchmark}-v{plan.refresh:04d}",
)
def compare(plan: RefreshPlan, board: Leaderboard) -> LeaderboardChange:
    """The leaderboard's change against the previous version, written as ``leaderboard/change.json|csv|md``
    and published on the refresh's flow run as the leaderboard table (rank, move, means, delta per model,
    ``<name>-vNNNN-leaderboard``) and a markdown report (``<name>-vNNNN-change``)."""
    from dataswarms_core.refresh import write_change

    options = plan.config.storage.fsspec_options()
    previous = None
    if plan.previous is not None:
        prior = Store(join(plan.benchmark_url, plan.previous.folder, LEADERBOARD_DIR), options)
        previous = Leaderboard.read(prior, "leaderboard.json")
    change = leaderboard_change(
        plan.benchmark, plan.refresh, board, previous, plan.previous.version if plan.previous else None
    )
    write_change(change, Store(join(plan.version_url, LEADERBOARD_DIR), options))
    key = artifact_key(f"{plan.benchmark}-{version_folder(plan.refresh)}")
    against = f" against {version_folder(change.previous_version)}" if change.previous_version else ""
    description = f"Leaderboard of {plan.benchmark} {version_folder(plan.refresh)} with its change{against}"
    create_table_artifact(key=f"{key}-leaderboard", table=[r.model_dump() for r in change.rows], description=description)
    create_markdown_artifact(key=f"{key}-change", markdown=change_markdown(change), description=description)
    return change


@task(**RETRY, name="record-version", task_run_name="record-{plan.benchmark}-v{plan.refresh:04d}")
def record(
    plan: RefreshPlan,
    summary: RunSummary,
    manifest: BenchmarkManifest,
    board: Leaderboard,
    flow_run_id: str | None,
) -> BenchmarkVersion:
    """Append the finished version to ``benchmark.json`` (the refresh's last write)."""
    row = BenchmarkVersion(
        version=plan.refresh, folder=plan.version_folder, run_name=summary.run_name, run_url=summary.outputs.run,
        package_version=manifest.version, items=manifest.counts.written,
        global_best_utility=summary.global_best_utility, models=[r.model for r in board.rows], created=now(),
        flow_run_id=flow_run_id,
    )  # fmt: skip
    record_version(plan, row)
    return row
