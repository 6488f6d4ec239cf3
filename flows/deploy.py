"""``dataswarms deploy`` and ``dataswarms serve``: the search, evaluation and refresh flows as Prefect deployments.

For every benchmark configuration (a YAML file with a ``benchmark`` section) three deployments are made, each
named after the benchmark:

- ``data-swarms-refresh/<name>``: the refresh (:mod:`dataswarms.flows.refresh`) on the benchmark's schedules
  (``benchmark.schedules``: cron lines and intervals; a schedule can be paused and resumed in the UI), at most
  one run at a time (a deployment concurrency limit of 1: a run due while another runs waits for it);
- ``data-swarms-search/<name>``: a search with the same configuration, no schedule;
- ``data-swarms-evaluate/<name>``: evaluation of the benchmark's models; give ``package_url`` when running it.

Parameters stay small: the configuration (storage option values masked: credentials come from the workers'
environment), model specs, URLs. Entry points are module paths (``dataswarms.flows.refresh.data_swarms_refresh``),
so any worker with dataswarms installed runs them, with no source to pull. ``deploy`` registers them on a work
pool (Prefect's work pools spread runs over every worker polling the pool); ``serve`` runs them from this one
process (Prefect's runner), for a laptop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataswarms_core.config import RunConfig, ScheduleSettings
from dataswarms_core.errors import ConfigError
from dataswarms_core.model_spec import parse_model_spec
from dataswarms_core.stages.evaluate import check_specs
from dataswarms_core.storage import is_local

DEFAULT_WORK_POOL = "dataswarms"
REFRESH_FLOW = "data-swarms-refresh"
SEARCH_FLOW = "data-swarms-search"
EVALUATE_FLOW = "data-swarms-evaluate"


def check_benchmarks(configs: list[RunConfig], sources: list[str]) -> None:
    """Every configuration names a distinct benchmark with models to evaluate.

    Raises:
        ConfigError: naming the file and the missing field, or the benchmark named twice.
        ModelError: a model of ``benchmark.models`` is missing (naming the file and the spec).
    """
    seen: dict[str, str] = {}
    for cfg, source in zip(configs, sources, strict=True):
        name = cfg.benchmark.name
        if not name:
            raise ConfigError(f"{source}: benchmark.name is not set (a 'benchmark' section, or --benchmark NAME)")
        if not cfg.benchmark.models:
            raise ConfigError(
                f"{source}: benchmark.models is empty; list the model specs evaluated on every version (or --model)"
            )
        if cfg.mode != "data-swarms":
            raise ConfigError(f"{source}: mode: a benchmark refresh runs mode 'data-swarms', got {cfg.mode!r}")
        if name in seen:
            raise ConfigError(f"{source}: benchmark {name!r} is also defined by {seen[name]}")
        seen[name] = source
        specs = [parse_model_spec(m) for m in cfg.benchmark.models]
        check_specs(specs, cfg.storage.fsspec_options(), where=f"{source}: benchmark.models")


def check_api(command: str) -> str:
    """The configured Prefect API URL.

    Raises:
        ConfigError: none is configured (schedules need a running server, not a temporary one).
    """
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()  # the setting reads the environment and the active profile
    if not url:
        raise ConfigError(
            f"dataswarms {command} needs a running Prefect server: start one (`prefect server start`, see the "
            "README's service section) and `prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`"
        )
    return url


def prefect_schedules(schedules: list[ScheduleSettings]) -> list[Any]:
    """``benchmark.schedules`` as Prefect schedules (:class:`prefect.schedules.Cron` / ``Interval``)."""
    from prefect.schedules import Cron, Interval

    out = []
    for s in schedules:
        if s.cron is not None:
            out.append(Cron(s.cron, timezone=s.timezone, active=s.active))
        else:
            out.append(Interval(float(s.interval_seconds or 0), timezone=s.timezone, active=s.active))
    return out


def config_parameter(cfg: RunConfig) -> dict[str, Any]:
    """The configuration as a deployment parameter: JSON, storage option values masked (``***``), and local
    paths made absolute — a process worker runs each flow run in a new temporary folder, so ``./runs`` would
    be written there and lost. Paths are those of the machine that deploys (use ``s3://`` storage and Hub or
    absolute model paths for workers on other machines)."""
    data = cfg.public_dict()
    if is_local(cfg.storage.root):
        data["storage"]["root"] = str(Path(cfg.storage.root.removeprefix("file://")).expanduser().absolute())
    for section, key in (("task", "source"), ("model", "base_model")):
        value = data[section][key]
        if isinstance(value, str) and "://" not in value and Path(value).expanduser().exists():
            data[section][key] = str(Path(value).expanduser().absolute())
    return data


def build_deployments(configs: list[RunConfig], work_pool: str | None = None) -> list[Any]:
    """The refresh, search and evaluation deployments of every benchmark configuration (module docstring).

    Args:
        configs: checked with :func:`check_benchmarks`.
        work_pool: the work pool (``deploy``), or None for the runner of ``serve``.

    Returns:
        ``RunnerDeployment`` objects, three per configuration.
    """
    from prefect.deployments.runner import EntrypointType

    from .evaluate import data_swarms_evaluate
    from .refresh import data_swarms_refresh
    from .search import data_swarms_search

    common: dict[str, Any] = {"entrypoint_type": EntrypointType.MODULE_PATH}
    if work_pool is not None:
        common["work_pool_name"] = work_pool
    out = []
    for cfg in configs:
        name = cfg.benchmark.name
        options = cfg.storage.public_options()
        out.append(
            data_swarms_refresh.to_deployment(
                name=name, parameters={"config": config_parameter(cfg)},
                schedules=prefect_schedules(cfg.benchmark.schedules), tags=["dataswarms", "refresh"],
                concurrency_limit=1,  # a benchmark's refreshes run one after the other (r needs r - 1)
                description=f"Refresh of benchmark {name}: search, next version, evaluation, leaderboard change.",
                **common,
            )  # fmt: skip
        )
        out.append(
            data_swarms_search.to_deployment(
                name=name, parameters={"config": config_parameter(cfg.model_copy(update={"run_name": None}))},
                tags=["dataswarms", "search"], description=f"A Data Swarms search with benchmark {name}'s configuration.",
                **common,
            )  # fmt: skip
        )
        out.append(
            data_swarms_evaluate.to_deployment(
                name=name, parameters={"models": list(cfg.benchmark.models), "storage_options": options},
                tags=["dataswarms", "evaluate"],
                description=f"Evaluate benchmark {name}'s models on a package (give package_url).",
                **common,
            )  # fmt: skip
        )
    return out


def ensure_work_pool(name: str, pool_type: str = "process") -> bool:
    """Create the work pool ``name`` when it does not exist; return True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type))
            return True


def deploy(configs: list[RunConfig], work_pool: str = DEFAULT_WORK_POOL) -> list[str]:
    """Register the deployments of ``configs`` on ``work_pool`` (created as a process pool when missing).

    Returns:
        The deployments' full names (``flow/deployment``).
    """
    from prefect import deploy as prefect_deploy

    deployments = build_deployments(configs, work_pool)
    ensure_work_pool(work_pool)
    prefect_deploy(
        *deployments, work_pool_name=work_pool, build=False, push=False, print_next_steps_message=False,
        ignore_warnings=True,
    )  # fmt: skip
    return [f"{d.flow_name}/{d.name}" for d in deployments]


def serve(configs: list[RunConfig], limit: int | None = None) -> None:
    """Serve the deployments of ``configs`` from this process until it is stopped (Prefect's runner)."""
    from prefect import serve as prefect_serve

    prefect_serve(*build_deployments(configs), limit=limit, print_starting_message=False)
