"""A Prefect deployment set-up on real services (tests/services.py): PostgreSQL 15, ``prefect server start``
on it with the UI and the scheduler, a process work pool, two ``prefect worker start`` processes, a flow
deployed from a local folder, its runs spread over both workers, a schedule that fires, pauses and resumes,
a deployment of installed code by module path, the UI's flow-run page in headless Chromium, and the rows in
PostgreSQL.

Screenshots and the services' logs go to ``$DATASWARMS_TEST_ARTIFACTS`` (default: a pytest temporary
folder; the path is printed). Nothing here is skipped: without PostgreSQL or Chromium the tests fail with
the command that installs them (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from service_flows import ARTIFACT_KEY, GREETING
from services import (
    ServiceError,
    api_client,
    chromium_page,
    deployment_runs,
    finished_runs,
    flow_run_page_text,
    log_text,
    postgres,
    prefect_server,
    sql,
    use_api,
    wait_until,
    work_pool,
    worker,
)

TESTS = Path(__file__).resolve().parent
POOL = "dataswarms-test"
WORKERS = ("worker-a", "worker-b")


@dataclass
class Stack:
    """The running services of this module."""

    db: str
    api: str
    deployment_id: UUID
    artifacts: Path
    workers: dict[str, subprocess.Popen[bytes]]


def _report(request: pytest.FixtureRequest, line: str) -> None:
    """Print ``line`` on the terminal even while pytest captures output."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(line, flush=True)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _deploy_check_flow(name: str, **options: Any) -> UUID:
    """Deploy tests/service_flows.py:service_check from this folder (a local source) to the test pool."""
    from prefect import flow

    source = flow.from_source(source=str(TESTS), entrypoint="service_flows.py:service_check")
    return source.deploy(name=name, work_pool_name=POOL, print_next_steps=False, ignore_warnings=True, **options)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """PostgreSQL, a Prefect server on it (UI, scheduler), a process pool, two workers and a deployment."""
    tmp = tmp_path_factory.mktemp("services")
    artifacts = Path(os.environ.get("DATASWARMS_TEST_ARTIFACTS") or tmp_path_factory.mktemp("service-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    _report(request, f"\nservice test artifacts (screenshots, service logs): {artifacts}")
    with contextlib.ExitStack() as services:
        # Registered first, so it runs last: the services' complete logs are kept with the screenshots.
        services.callback(_keep_logs, tmp, artifacts / "logs")
        db = services.enter_context(postgres(tmp / "postgres"))
        api = services.enter_context(prefect_server(db, tmp / "server-home", ui=True))
        services.enter_context(work_pool(api, POOL))
        workers = {
            name: services.enter_context(
                worker(api, POOL, name, env={"DATASWARMS_TEST_WORKER": name}, home=tmp / name, limit=1)
            )
            for name in WORKERS
        }
        with use_api(api):
            deployment_id = _deploy_check_flow("check")
        yield Stack(db=db, api=api, deployment_id=deployment_id, artifacts=artifacts, workers=workers)
    port = int(api.rsplit(":", 1)[1].split("/")[0])
    assert not _listening(port), "the Prefect server still listens after the block"
    for process in workers.values():
        assert process.poll() is not None
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)  # nothing left in the worker's process group (its flow runs included)


def _keep_logs(tmp: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for log in tmp.rglob("*.log"):
        shutil.copyfile(log, folder / f"{log.parent.name}-{log.name}")


def test_postgres_is_cleaned_up_even_when_the_block_fails(tmp_path: Path) -> None:
    """The cluster answers SQL on its port; after a failing block it is stopped and its folder is gone."""
    with pytest.raises(RuntimeError, match="boom"), postgres(tmp_path, database="scratch") as url:
        assert url.startswith("postgresql+asyncpg://prefect@127.0.0.1:") and url.endswith("/scratch")
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        data = Path(sql(url, "SHOW data_directory")[0]["data_directory"])
        assert sql(url, "SELECT current_database() AS db, current_user AS who") == [
            {"db": "scratch", "who": "prefect"}
        ]
        assert _listening(port) and (data / "postmaster.pid").exists()
        raise RuntimeError("boom")
    assert not _listening(port)
    assert not data.parent.exists()
    assert "database system is ready to accept connections" in (tmp_path / "postgres.log").read_text()


def test_a_missing_chromium_is_an_error_naming_the_install_command(tmp_path: Path) -> None:
    """No browser is no skip: the helper fails and says how to install Debian's Chromium."""
    with pytest.raises(ServiceError, match="apt-get install -y chromium"), chromium_page(executable=str(tmp_path)):
        pass


def test_deployment_runs_are_spread_over_both_workers(stack: Stack) -> None:
    """Four runs of a local-source deployment, two workers that each run one at a time: every run completes,
    both workers take runs, and the API's records agree on which worker ran each run."""
    from prefect.deployments import run_deployment

    with use_api(stack.api):
        created = [
            run_deployment(stack.deployment_id, parameters={"tag": f"spread-{i}"}, timeout=0) for i in range(4)
        ]
    runs = finished_runs(stack.api, [run.id for run in created])
    assert [run.state.type.value for run in runs] == ["COMPLETED"] * 4, [run.state.message for run in runs]
    ran_on = {run.parameters["tag"]: run.labels.get("prefect.worker.name") for run in runs}
    assert set(ran_on.values()) == set(WORKERS), ran_on
    for run in runs:
        name = ran_on[run.parameters["tag"]]
        assert run.work_pool_name == POOL and run.work_queue_name == "default"
        assert run.labels["prefect.worker.type"] == "process"
        assert run.infrastructure_pid and run.infrastructure_pid.isdigit()  # the flow run's process id
        line = f"{GREETING}: tag={run.parameters['tag']} worker={name} worker_env={name} "
        logs = log_text(stack.api, run.id, wait_for=line)
        assert f"Worker '{name}' submitting flow run '{run.id}'" in logs  # the worker's own log line


def test_schedule_fires_pauses_and_resumes(stack: Stack) -> None:
    """An interval schedule: the scheduler creates runs ahead, a worker runs the first; pausing the deployment
    (``paused``) removes its future runs and creates none; resuming schedules runs again."""
    with use_api(stack.api):
        deployment_id = _deploy_check_flow("every-10s", interval=10, parameters={"tag": "scheduled"})
    try:
        with api_client(stack.api) as client:
            deployment = client.read_deployment(deployment_id)
        assert deployment.paused is False
        assert [s.schedule.interval for s in deployment.schedules] == [timedelta(seconds=10)]

        def scheduled() -> list[Any]:
            return [r for r in deployment_runs(stack.api, deployment_id) if r.state.type.value == "SCHEDULED"]

        ahead = wait_until(lambda: runs if len(runs := scheduled()) >= 2 else None, 30, "scheduled runs ahead")
        assert all(run.auto_scheduled for run in ahead)
        done = wait_until(
            lambda: [r for r in deployment_runs(stack.api, deployment_id) if r.state.type.value == "COMPLETED"],
            60, "a scheduled run to complete",
        )  # fmt: skip
        assert done[0].auto_scheduled and done[0].labels["prefect.worker.name"] in WORKERS

        with api_client(stack.api) as client:
            client.pause_deployment(deployment_id)
            assert client.read_deployment(deployment_id).paused is True
        wait_until(lambda: not scheduled(), 15, "future runs to be removed after the pause", every=0.5)
        time.sleep(4)  # two scheduler loops (2 s) and four for recently changed deployments (1 s)
        assert scheduled() == []

        with api_client(stack.api) as client:
            client.resume_deployment(deployment_id)
            assert client.read_deployment(deployment_id).paused is False
        wait_until(scheduled, 20, "runs to be scheduled again after the resume")
    finally:
        with api_client(stack.api) as client:
            client.pause_deployment(deployment_id)  # stop it firing during the other tests


def test_module_entrypoint_of_installed_code_runs_on_a_worker(stack: Stack, tmp_path: Path) -> None:
    """``flow.deploy(..., entrypoint_type=MODULE_PATH)`` of an installed flow needs no source folder: the
    deployment stores ``dataswarms.flows.evaluate.data_swarms_evaluate`` and no pull steps, and a worker
    imports it from the installed package (the run then fails: there is no benchmark package)."""
    from prefect.deployments import run_deployment
    from prefect.types.entrypoint import EntrypointType

    from dataswarms.flows.evaluate import data_swarms_evaluate

    with use_api(stack.api):
        deployment_id = data_swarms_evaluate.deploy(
            name="module-entrypoint", work_pool_name=POOL, entrypoint_type=EntrypointType.MODULE_PATH,
            print_next_steps=False, ignore_warnings=True,
        )  # fmt: skip
        created = run_deployment(
            deployment_id, parameters={"package_url": str(tmp_path / "no-package"), "models": ["none"]}, timeout=0
        )
    with api_client(stack.api) as client:
        deployment = client.read_deployment(deployment_id)
    assert deployment.entrypoint == "dataswarms.flows.evaluate.data_swarms_evaluate"
    assert not deployment.pull_steps and deployment.path is None
    (run,) = finished_runs(stack.api, [created.id])
    logs = log_text(stack.api, run.id, wait_for="for flow 'data-swarms-evaluate'")  # "Beginning flow run ..."
    assert "ModuleNotFoundError" not in logs and "MissingFlowError" not in logs
    assert run.state.type.value == "FAILED" and run.labels["prefect.worker.name"] in WORKERS


def test_flow_run_page_shows_the_flow_log_line(stack: Stack, request: pytest.FixtureRequest) -> None:
    """The UI's flow-run page (V1 at /runs/flow-run/<id>, V2 at /v2/...) in headless Chromium shows the
    flow's INFO line on the Logs tab and its artifact on the Artifacts tab."""
    from prefect.deployments import run_deployment

    with use_api(stack.api):
        run = run_deployment(stack.deployment_id, parameters={"tag": "ui-check"}, timeout=120, poll_interval=1)
    assert run.state.is_completed(), run.state
    name = run.labels["prefect.worker.name"]
    line = f"{GREETING}: tag=ui-check worker={name}"
    shots = stack.artifacts / "screenshots"
    v1 = flow_run_page_text(stack.api, run.id, shots, expect={"Logs": line, "Artifacts": ARTIFACT_KEY})
    assert line in v1["Logs"]
    assert "INFO" in v1["Logs"] and f"Worker '{name}' submitting flow run '{run.id}'" in v1["Logs"]
    assert ARTIFACT_KEY in v1["Artifacts"]
    v2 = flow_run_page_text(stack.api, run.id, shots, tabs=("Logs",), expect={"Logs": line}, ui="v2")
    assert line in v2["Logs"] and run.name in v2["Logs"]
    saved = sorted(p.name for p in shots.glob(f"flow-run-{str(run.id)[:8]}-*.png"))
    stem = f"flow-run-{str(run.id)[:8]}"
    assert saved == [f"{stem}-v1-artifacts.png", f"{stem}-v1-logs.png", f"{stem}-v2-logs.png"]
    assert all((shots / p).stat().st_size > 10_000 for p in saved)
    _report(request, f"flow-run page screenshots: {shots}")


def test_postgres_holds_the_servers_records(stack: Stack) -> None:
    """The server's records are rows in the PostgreSQL database: the run, its logs, the pool's workers."""
    from prefect.deployments import run_deployment

    with use_api(stack.api):
        run = run_deployment(stack.deployment_id, parameters={"tag": "pg-check"}, timeout=120, poll_interval=1)
    log_text(stack.api, run.id, wait_for="tag=pg-check")
    rows = sql(stack.db, "SELECT state_type::text AS state, deployment_id FROM flow_run WHERE id = $1", run.id)
    assert rows == [{"state": "COMPLETED", "deployment_id": stack.deployment_id}]
    logged = sql(
        stack.db, "SELECT count(*) AS n FROM log WHERE flow_run_id = $1 AND message LIKE $2", run.id, "%tag=pg-check%"
    )
    assert logged[0]["n"] >= 1
    workers = sql(
        stack.db, "SELECT w.name FROM worker w JOIN work_pool p ON p.id = w.work_pool_id WHERE p.name = $1", POOL
    )
    assert sorted(row["name"] for row in workers) == sorted(WORKERS)
    assert sql(stack.db, "SELECT name FROM flow WHERE name = 'service-check'") == [{"name": "service-check"}]
