"""``dataswarms sweep``: a hyper-parameter sweep of the search's settings as one Prefect flow (docs/method.md §10).

Optuna's seeded sampler (:data:`dataswarms_core.sweep.SAMPLERS`) asks ``parallel`` trials at a time; each is a
search run ``sweep-<name>-tNNN`` of the base configuration with the trial's settings: a subflow of this flow, or,
with ``deployment`` (e.g. ``data-swarms-search/<benchmark>`` from ``dataswarms deploy``), a flow run of that
deployment, so the batch's trials spread over the work pool's workers. A finished trial's run is reused, so the
same sweep run again continues where it stopped. The table, a plot and the best settings as a configuration
file are written under ``<storage.root>/sweeps/<name>``.
"""

from __future__ import annotations

import time

import yaml
from prefect import flow, get_run_logger

from dataswarms.tasks.compare import remeasure_run
from dataswarms.tasks.sweep import publish_sweep, read_trial
from dataswarms_core.config import RunConfig
from dataswarms_core.errors import ConfigError
from dataswarms_core.records import SweepTable
from dataswarms_core.stages import config_differences
from dataswarms_core.stages.layout import run_store
from dataswarms_core.storage import join
from dataswarms_core.sweep import (
    DEFAULT_SPACE,
    Dimension,
    check_space,
    grid_size,
    new_study,
    sweep_table,
    trial_config,
)

from .deploy import config_parameter
from .search import data_swarms_search

POLL_S = 5.0


def _check_reused(cfg: RunConfig, name: str, deployed: bool) -> None:
    """A finished run of this trial's name was made with this trial's configuration (else the sweep of this
    name was run with other arguments). A deployed trial's configuration is compared as the deployment got it
    (:func:`~dataswarms.flows.deploy.config_parameter`: local paths made absolute).

    Raises:
        ConfigError: naming the run and the settings that differ.
    """
    stored = yaml.safe_load(run_store(cfg).read_text("config.yaml"))
    changes = config_differences(stored, config_parameter(cfg) if deployed else cfg.public_dict())
    if changes:
        raise ConfigError(
            f"sweep {name}: the finished run {cfg.run_name} differs from this trial in {'; '.join(changes)} (a sweep "
            "of this name was run with other arguments); give another --name"
        )


def _run_here(cfg: RunConfig) -> str | None:
    """Run the trial's search as a subflow; return None, or the failure in one line."""
    try:
        data_swarms_search(cfg, resume=True)
    except Exception as exc:  # noqa: BLE001 - a failed trial is recorded, the sweep goes on
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    return None


def check_deployment(deployment: str) -> None:
    """The deployment ``flow/name`` exists on the Prefect API.

    Raises:
        ConfigError: it does not (naming it and how deployments are made).
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            raise ConfigError(
                f"--deployment {deployment}: no such deployment on {client.api_url} (make one with dataswarms deploy; "
                "the name is flow/deployment, e.g. data-swarms-search/<benchmark>)"
            ) from None


def _run_deployed(cfgs: list[RunConfig], deployment: str) -> list[str | None]:
    """Start a flow run of ``deployment`` per configuration and wait for all; return None or the failure of
    each."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    started = [
        run_deployment(
            name=deployment, parameters={"config": config_parameter(cfg), "resume": True}, timeout=0,
            flow_run_name=cfg.run_name,
        )  # fmt: skip
        for cfg in cfgs
    ]
    logger = get_run_logger()
    logger.info(f"started {', '.join(str(r.name) for r in started)} on deployment {deployment}")
    with get_client(sync_client=True) as client:
        while True:
            states = [client.read_flow_run(r.id).state for r in started]
            if all(s is not None and s.is_final() for s in states):
                break
            time.sleep(POLL_S)
    return [None if s.is_completed() else f"flow run {s.type.value}: {s.message or ''}"[:300] for s in states]


@flow(name="data-swarms-sweep", flow_run_name="sweep-{name}", log_prints=False)
def data_swarms_sweep(
    config: RunConfig,
    name: str,
    trials: int = 8,
    sampler: str = "tpe",
    space: list[Dimension] | None = None,
    draws: int = 0,
    deployment: str | None = None,
    parallel: int = 1,
    output_url: str | None = None,
) -> SweepTable:
    """Run ``trials`` trials (at most the grid's size with the grid sampler), ``parallel`` at a time, and publish
    the table, plot and best settings under ``output_url`` (default ``<storage.root>/sweeps/<name>``).

    Args:
        space: the searched settings (default :data:`~dataswarms_core.sweep.DEFAULT_SPACE`).
        draws: 0: a trial's value is its in-search best; > 0: its global best re-measured ``draws`` times.
        deployment: run the trials as flow runs of this deployment (``flow/deployment``); None: as subflows.

    Raises:
        ValueError: ``trials``, ``parallel`` < 1 or ``draws`` < 0.
        ConfigError: a setting of the space the configuration refuses; a finished trial run with other settings.
    """
    if trials < 1 or parallel < 1 or draws < 0:
        raise ValueError(f"trials and parallel must be at least 1 and draws at least 0, got {trials}, {parallel}, {draws}")
    dims = list(space or DEFAULT_SPACE)
    check_space(config, dims, name)
    if deployment is not None:
        check_deployment(deployment)
    if sampler == "grid":
        trials = min(trials, grid_size(dims))
    study = new_study(dims, sampler, config.seed)
    logger = get_run_logger()
    rows = []
    for start in range(0, trials, parallel):
        batch = [study.ask() for _ in range(min(parallel, trials - start))]
        params = [{d.key: d.suggest(t) for d in dims} for t in batch]
        cfgs = [trial_config(config, p, name, t.number) for p, t in zip(params, batch, strict=True)]
        failures: list[str | None] = [None] * len(cfgs)
        pending = []
        for i, cfg in enumerate(cfgs):
            if run_store(cfg).exists("summary.json"):
                _check_reused(cfg, name, deployment is not None)
                logger.info(f"trial {batch[i].number}: {cfg.run_name} already finished, reused")
            else:
                pending.append(i)
        if deployment is not None and pending:
            for i, failure in zip(pending, _run_deployed([cfgs[i] for i in pending], deployment), strict=True):
                failures[i] = failure
        else:
            for i in pending:
                failures[i] = _run_here(cfgs[i])
        for t, cfg, p, failure in zip(batch, cfgs, params, failures, strict=True):
            remeasured = None
            if draws and failure is None:
                remeasured = remeasure_run(cfg, draws)[0].mean
            row = read_trial(cfg, t.number, p, remeasured, draws, failure)
            if row.value is None:
                from optuna.trial import TrialState

                study.tell(t, state=TrialState.FAIL)
            else:
                study.tell(t, row.value)
            rows.append(row)
    measure = f"the global best re-measured {draws} times (mean)" if draws else "the in-search global best"
    table = sweep_table(name, config.scoring.objective, sampler, config.seed, measure, rows)
    out = output_url or join(config.storage.root, "sweeps", name)
    publish_sweep(table, config, out, config.storage.public_options())
    return table
