"""``dataswarms refresh``: the next version of a named benchmark, as one Prefect flow.

plan (the refresh number r) → search ``B-rNNNN`` (a subflow; from r = 2 on it continues the previous refresh's
final swarm, with r in every random stream) → publish its package as ``benchmarks/B/vNNNN`` → evaluate the
registered models on it (the evaluation subflow) → the leaderboard's change against version r − 1 → record the
version in ``benchmark.json`` (last). Every step keeps what it finished: a failed refresh retried (``--retries``,
or *Retry* in the UI) plans the same r, reuses a finished search (its ``summary.json``) or resumes it from its
newest checkpoint, keeps a complete version folder and the models already evaluated.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from dataswarms.tasks.refresh import compare, plan, publish, record
from dataswarms_core.config import RunConfig
from dataswarms_core.config_files import load_config
from dataswarms_core.errors import ConfigError
from dataswarms_core.records import RunSummary
from dataswarms_core.refresh import BenchmarkVersion
from dataswarms_core.stages.layout import run_store

from .evaluate import data_swarms_evaluate
from .search import data_swarms_search

SUMMARY = "summary.json"


def _flow_run_name() -> str:
    config = flow_run.parameters.get("config")
    overrides = flow_run.parameters.get("overrides") or {}
    bench = config.get("benchmark", {}) if isinstance(config, dict) else getattr(config, "benchmark", None)
    name = overrides.get("benchmark.name") or (
        bench.get("name") if isinstance(bench, dict) else getattr(bench, "name", None)
    )
    return f"refresh-{name}" if name else "refresh"


def resolve_config(config: RunConfig | str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The refresh's configuration: ``config`` itself, or the built-in name / YAML path or URL it names loaded
    with ``overrides`` (dotted keys, e.g. ``{"benchmark.name": "gsm8k-weekly"}``) — small deployment parameters.

    Raises:
        ConfigError: an unreadable or invalid file or override (one line), or overrides with a RunConfig.
    """
    if isinstance(config, str):
        return load_config(config, overrides)
    if overrides:
        raise ConfigError("overrides apply to a configuration given by name, path or URL, not to a RunConfig")
    return config


@flow(name="data-swarms-refresh", flow_run_name=_flow_run_name, log_prints=False)  # logs through its run logger
def data_swarms_refresh(
    config: RunConfig | str = "quickstart", overrides: dict[str, Any] | None = None
) -> BenchmarkVersion:
    """Write, evaluate and publish the next version of the benchmark ``config.benchmark`` (module docstring).

    Args:
        config: the benchmark's search configuration with its ``benchmark`` section (name, models to
            evaluate), or a built-in name / YAML path or URL of one.
        overrides: dotted keys set on a configuration given by name (``{"benchmark.models": [...]}``).

    Returns:
        The version's row of ``benchmark.json``.

    Raises:
        ConfigError: no ``benchmark.name`` or ``benchmark.models``, or a mode other than ``data-swarms``.
    """
    config = resolve_config(config, overrides)
    logger = get_run_logger()
    p = plan(config)
    logger.info(
        "benchmark %s: refresh %d, search %s%s", p.benchmark, p.refresh, p.config.run_name,
        f", continuing the swarm of {p.previous.run_name}" if p.previous else " from the seed generators",
    )  # fmt: skip
    run = run_store(p.config)
    if run.exists(SUMMARY):
        summary = RunSummary.read(run, SUMMARY)
        logger.info(
            "search %s already finished (global best %.4f): reused",
            summary.run_name,
            summary.global_best_utility,
        )
    else:
        state = data_swarms_search(p.config, resume=True, return_state=True)
        summary = state.result()  # a failed search raises here: the refresh fails and can be retried
        logger.info(
            "search %s: flow run %s (its page has the stage and iteration logs, progress and plot)",
            summary.run_name, state.state_details.flow_run_id,
        )  # fmt: skip
    manifest = publish(p, summary.outputs.package)
    logger.info(
        "version %s: %d items (package %s) at %s",
        p.version_folder,
        manifest.counts.written,
        manifest.version,
        p.version_url,
    )
    board = data_swarms_evaluate(
        p.version_url, list(config.benchmark.models), output_url=p.version_url,
        storage_options=config.storage.public_options(),
    )  # fmt: skip
    change = compare(p, board)
    for row in change.rows:
        logger.info(
            "leaderboard %s: %s rank %s (%s), mean %s, delta %s", p.version_folder, row.model, row.rank, row.status,
            "missing" if row.mean is None else f"{row.mean:.4f}",
            "—" if row.delta is None else f"{row.delta:+.4f}",
        )  # fmt: skip
    return record(p, summary, manifest, board, str(flow_run.id) if flow_run.id else None)
