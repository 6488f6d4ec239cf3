"""Benchmark refreshes as a service: PostgreSQL, a Prefect server on it with its scheduler, a process work pool
and two workers (all real, on 127.0.0.1), the deployments of ``dataswarms deploy`` for three tiny benchmarks.

- Scale-out: refreshes of two benchmarks triggered together are taken by both workers.
- Transient fault: one of them evaluates a model behind an endpoint that is down; its flow run fails after the
  task retries, is retried through the API once the endpoint is up, and resumes: the finished search and the
  finished model evaluation are reused, only the missing model is evaluated.
- Schedule: the third benchmark's interval schedule fires twice; the two scheduled runs complete one after the
  other (the refresh deployment's concurrency limit), the second writes version 2 with new items, and its
  leaderboard change matches the two leaderboards; the schedule is paused and resumed through the API.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from conftest import _free_port, openai_server_on
from services import (
    api_client,
    chromium_page,
    deployment_runs,
    finished_runs,
    flow_run_page_text,
    log_text,
    open_artifact,
    postgres,
    prefect_server,
    use_api,
    wait_until,
    work_pool,
    worker,
)
from tiny import tiny_search_config

POOL = "dataswarms-refresh"
WORKERS = ("worker-1", "worker-2")
# Two flow runs at once on a 2-core machine: one thread each. Offline, as every test.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _config(model_dir: Path, root: Path, name: str, seed: int, models: list[str], **extra: Any):
    return tiny_search_config(
        model_dir, root, None, seed=seed, **{"benchmark.name": name, "benchmark.models": models,
                                             "pso.max_iterations": 1, **extra},
    )  # fmt: skip


@contextlib.contextmanager
def _stack(tmp: Path) -> Iterator[str]:
    with contextlib.ExitStack() as services:
        db = services.enter_context(postgres(tmp / "postgres"))
        api = services.enter_context(prefect_server(db, tmp / "server-home", ui=True))
        services.enter_context(work_pool(api, POOL))
        for name in WORKERS:
            services.enter_context(worker(api, POOL, name, env=WORKER_ENV, home=tmp / name, limit=1))
        yield api


def _index(root: Path, name: str) -> list[dict[str, Any]]:
    path = root / "benchmarks" / name / "benchmark.json"
    return json.loads(path.read_text())["versions"] if path.exists() else []


def _items(root: Path, name: str, version: str) -> list[str]:
    text = (root / "benchmarks" / name / version / "items.jsonl").read_text()
    return [json.loads(line)["item"] for line in text.splitlines()]


def _leaderboard(root: Path, name: str, version: str, what: str = "leaderboard") -> dict[str, Any]:
    return json.loads((root / "benchmarks" / name / version / "leaderboard" / f"{what}.json").read_text())


def test_refresh_deployments_on_postgres_with_two_workers(format_model_dir, tmp_path):
    from prefect.deployments import run_deployment
    from prefect.states import AwaitingRetry

    from dataswarms.flows.deploy import deploy

    root = tmp_path / "runs"
    port = _free_port()
    served = f"served={format_model_dir}@http://127.0.0.1:{port}/v1"
    base = f"base={format_model_dir}"
    configs = [
        _config(format_model_dir, root, "tiny-fan", 1, [base]),
        _config(format_model_dir, root, "tiny-fault", 2, [base, served]),
        _config(format_model_dir, root, "tiny-weekly", 3, [base], **{"benchmark.schedules": [{"interval_seconds": 30}]}),
    ]
    with _stack(tmp_path) as api, use_api(api):
        deploy(configs, work_pool=POOL)
        with api_client(api) as client:
            ids = {
                c.benchmark.name: client.read_deployment_by_name(f"data-swarms-refresh/{c.benchmark.name}").id
                for c in configs
            }
        fan = run_deployment(ids["tiny-fan"], timeout=0)
        fault = run_deployment(ids["tiny-fault"], timeout=0)

        # scale-out: the two benchmarks' runs are taken by both workers
        fan_run, fault_run = finished_runs(api, [fan.id, fault.id], timeout=600)
        assert fan_run.state.type.value == "COMPLETED", fan_run.state.message
        assert fault_run.state.type.value == "FAILED"  # the endpoint model could not be reached
        ran_on = {fan_run.labels["prefect.worker.name"], fault_run.labels["prefect.worker.name"]}
        assert ran_on == set(WORKERS)
        assert [v["version"] for v in _index(root, "tiny-fan")] == [1] and _index(root, "tiny-fault") == []
        summary = root / "tiny-fault-r0001" / "summary.json"
        searched_at = summary.stat().st_mtime_ns  # the search finished before the evaluation failed
        # a run's last log batch reaches the API after its final state: wait for the endpoint's error
        wait_until(
            lambda: "onnect" in log_text(api, fault.id), 60, "the endpoint's connection error in the run's logs"
        )

        # the endpoint comes up; the failed run is retried through the API (as the UI's Retry does)
        with openai_server_on(format_model_dir, port, tmp_path / "serve.log"):
            with api_client(api) as client:
                client.set_flow_run_state(fault.id, AwaitingRetry(), force=True)
            (retried,) = finished_runs(api, [fault.id], timeout=400)
        assert retried.state.type.value == "COMPLETED", retried.state.message
        assert retried.run_count == 2
        assert summary.stat().st_mtime_ns == searched_at  # the finished search was not run again
        logs = log_text(api, fault.id, wait_for="already finished")
        assert "search tiny-fault-r0001 already finished" in logs
        rows = {r["model"]: r for r in _leaderboard(root, "tiny-fault", "v0001")["rows"]}
        assert rows["base"]["cached"] is True and rows["served"]["cached"] is False  # only the missing model
        assert [v["version"] for v in _index(root, "tiny-fault")] == [1]

        # the schedule: two auto-scheduled runs, one after the other; the second writes version 2
        def two_scheduled_started() -> list[Any] | None:
            runs = [r for r in deployment_runs(api, ids["tiny-weekly"]) if r.auto_scheduled]
            started = [r for r in runs if r.state.type.value in ("RUNNING", "COMPLETED")]
            return started if len(started) >= 2 else None

        wait_until(two_scheduled_started, 600, "two scheduled refresh runs to start", every=2)
        with api_client(api) as client:
            client.pause_deployment(ids["tiny-weekly"])  # no third run; the started ones go on
            assert client.read_deployment(ids["tiny-weekly"]).paused is True
        versions = wait_until(
            lambda: v if len(v := _index(root, "tiny-weekly")) >= 2 else None, 400, "version 2 of tiny-weekly", every=2
        )
        by_run = {r.id: r for r in deployment_runs(api, ids["tiny-weekly"])}
        for v in versions[:2]:
            run = by_run[UUID(v["flow_run_id"])]
            assert run.auto_scheduled and run.labels["prefect.worker.name"] in WORKERS
        assert _items(root, "tiny-weekly", "v0001") != _items(root, "tiny-weekly", "v0002")
        board1 = _leaderboard(root, "tiny-weekly", "v0001")
        board2 = _leaderboard(root, "tiny-weekly", "v0002")
        (move,) = _leaderboard(root, "tiny-weekly", "v0002", "change")["rows"]
        assert (move["model"], move["status"], move["rank"], move["previous_rank"], move["rank_move"]) == (
            "base", "kept", 1, 1, 0,
        )  # fmt: skip
        assert move["previous_mean"] == board1["rows"][0]["mean"] and move["mean"] == board2["rows"][0]["mean"]
        assert move["delta"] == pytest.approx(board2["rows"][0]["mean"] - board1["rows"][0]["mean"])
        # the second scheduled refresh in the UI: its log lines and its leaderboard table with the change
        second = versions[1]["flow_run_id"]
        shots = Path(os.environ.get("DATASWARMS_TEST_ARTIFACTS") or tmp_path / "screenshots") / "test_service_refresh"
        with chromium_page(viewport=(1400, 1800)) as page:
            tabs = flow_run_page_text(
                api, second, shots, page=page,
                expect={"Logs": "leaderboard v0002: base rank 1 (kept)", "Artifacts": "tiny-weekly-v0002-leaderboard"},
            )  # fmt: skip
            assert "benchmark tiny-weekly: refresh 2, search tiny-weekly-r0002, continuing the swarm" in tabs["Logs"]
            table = open_artifact(page, api, second, "tiny-weekly-v0002-leaderboard", shots, "rank_move")
            for column in ("model", "status", "rank", "previous_rank", "rank_move", "mean", "previous_mean", "delta"):
                assert column in table, column
            assert "kept" in table and "base" in table
        assert sorted(p.name for p in shots.glob("*.png"))  # screenshots kept as test artifacts
        with api_client(api) as client:
            client.resume_deployment(ids["tiny-weekly"])
            assert client.read_deployment(ids["tiny-weekly"]).paused is False
            client.pause_deployment(ids["tiny-weekly"])
    assert os.path.exists(root / "benchmarks" / "tiny-weekly" / "v0002" / "leaderboard" / "change.md")
