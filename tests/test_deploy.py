"""Deployments of a benchmark (``dataswarms deploy``): names, module entry points, small parameters, schedules,
registered on a real Prefect API (the session's test server); and the one-line refusals of bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataswarms_core.config_files import load_config
from dataswarms_core.errors import ConfigError, ModelError

EXAMPLE = "docs/examples/gsm8k-weekly.yaml"


def _cfg(name: str, **extra):
    return load_config(
        EXAMPLE,
        {"benchmark.name": name, "benchmark.schedules": [{"cron": "0 3 * * 1"}, {"interval_seconds": 3600, "active": False}],
         "storage.options": {"key": "secret-key"}, **extra},
    )  # fmt: skip


def test_deployments_registered_with_schedules_and_small_parameters(prefect_harness):
    from prefect.client.orchestration import get_client

    from dataswarms.flows.deploy import deploy

    names = deploy([_cfg("bench-a"), _cfg("bench-b")], work_pool="test-pool")
    assert names == [
        "data-swarms-refresh/bench-a", "data-swarms-search/bench-a", "data-swarms-evaluate/bench-a",
        "data-swarms-refresh/bench-b", "data-swarms-search/bench-b", "data-swarms-evaluate/bench-b",
    ]  # fmt: skip
    with get_client(sync_client=True) as client:
        pool = client.read_work_pool("test-pool")
        refresh = client.read_deployment_by_name("data-swarms-refresh/bench-a")
        evaluate = client.read_deployment_by_name("data-swarms-evaluate/bench-b")
    assert pool.type == "process"
    assert refresh.entrypoint == "dataswarms.flows.refresh.data_swarms_refresh"  # no source to pull
    assert refresh.work_pool_name == "test-pool"
    assert refresh.global_concurrency_limit.limit == 1  # refresh r needs r - 1: one at a time
    schedules = sorted(refresh.schedules, key=lambda s: str(s.schedule))
    crons = [s.schedule.cron for s in schedules if hasattr(s.schedule, "cron")]
    intervals = [(s.schedule.interval.total_seconds(), s.active) for s in schedules if hasattr(s.schedule, "interval")]
    assert crons == ["0 3 * * 1"] and intervals == [(3600.0, False)]
    params = json.dumps(refresh.parameters)
    assert len(params) < 20_000 and "secret-key" not in params  # storage option values are masked
    assert refresh.parameters["config"]["benchmark"]["name"] == "bench-a"
    # a process worker runs a flow in a temporary folder: ./runs must not resolve there
    assert refresh.parameters["config"]["storage"]["root"] == str(Path("runs").absolute())
    assert evaluate.parameters == {"models": ["smollm2=smollm2-135m-instruct"], "storage_options": {}}


def test_deploy_refuses_bad_benchmarks_in_one_line(tmp_path, monkeypatch):
    from dataswarms.flows.cli import app
    from dataswarms.flows.deploy import check_benchmarks

    with pytest.raises(ConfigError, match="^a.yaml: benchmark.name is not set"):
        check_benchmarks([load_config("quickstart")], ["a.yaml"])
    with pytest.raises(ConfigError, match="^b.yaml: benchmark 'x' is also defined by a.yaml$"):
        check_benchmarks([_cfg("x"), _cfg("x")], ["a.yaml", "b.yaml"])
    gone = _cfg("g", **{"benchmark.models": [f"{tmp_path}/gone"]})
    with pytest.raises(ModelError, match=rf"^c.yaml: benchmark.models {tmp_path}/gone: model "):
        check_benchmarks([gone], ["c.yaml"])
    empty = tmp_path / "empty.yaml"
    empty.write_text("extends: quickstart\nbenchmark: {name: e}\n")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(app, ["deploy", "--config", str(empty)])
    assert result.exit_code == 2 and f"error: {empty}: benchmark.models is empty" in result.output
    result = runner.invoke(app, ["refresh", "--model", "m"])
    assert result.exit_code == 2 and "error: quickstart: benchmark.name is not set" in result.output


def test_prefect_yaml_deploys_with_prefect_deploy(prefect_harness, tmp_path):
    """``prefect deploy --all`` (Prefect's own command, as a user runs it) registers prefect.yaml's deployments."""
    import os
    import subprocess
    import sys

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from dataswarms.flows.deploy import ensure_work_pool

    root = Path(__file__).resolve().parent.parent
    ensure_work_pool("dataswarms")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PWD": str(root)}
    prefect = Path(sys.executable).parent / "prefect"
    done = subprocess.run(
        [str(prefect), "--no-prompt", "deploy", "--all"], cwd=root, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with get_client(sync_client=True) as client:
        refresh = client.read_deployment_by_name("data-swarms-refresh/gsm8k-weekly")
        evaluate = client.read_deployment_by_name("data-swarms-evaluate/gsm8k-weekly")
    assert refresh.entrypoint == "dataswarms.flows.refresh.data_swarms_refresh" and refresh.pull_steps in (None, [])
    assert refresh.job_variables == {"working_dir": str(root)}
    assert [s.schedule.cron for s in refresh.schedules] == ["0 3 * * 1"]
    assert refresh.global_concurrency_limit.limit == 1
    assert refresh.parameters == {"config": "docs/examples/gsm8k-weekly.yaml"}
    assert evaluate.parameters == {"models": ["smollm2=smollm2-135m-instruct"]}

    from dataswarms.flows.refresh import resolve_config

    before = os.getcwd()
    os.chdir(root)  # how the worker resolves it: in working_dir
    try:
        assert resolve_config(refresh.parameters["config"]).benchmark.name == "gsm8k-weekly"
    finally:
        os.chdir(before)
