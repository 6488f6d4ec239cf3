"""A sweep whose trials are flow runs of a deployment, spread over two workers: a Prefect server (SQLite), a
process work pool, two workers (all real, on 127.0.0.1), the search deployment of ``dataswarms deploy`` for a
tiny benchmark; the sweep flow itself runs in this process against the server."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from services import api_client, deployment_runs, prefect_server, use_api, work_pool, worker
from tiny import tiny_search_config

from dataswarms_core.errors import ConfigError
from dataswarms_core.sweep import Dimension

POOL = "dataswarms-sweep"
WORKERS = ("sweep-worker-1", "sweep-worker-2")
WORKER_ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@contextlib.contextmanager
def _stack(tmp: Path) -> Iterator[str]:
    with contextlib.ExitStack() as services:
        db = f"sqlite+aiosqlite:///{tmp / 'prefect.db'}"
        api = services.enter_context(prefect_server(db, tmp / "server-home", ui=False))
        services.enter_context(work_pool(api, POOL))
        for name in WORKERS:
            services.enter_context(worker(api, POOL, name, env=WORKER_ENV, home=tmp / name, limit=1))
        yield api


def test_sweep_trials_run_as_deployment_flow_runs_on_two_workers(format_model_dir, tmp_path):
    from dataswarms.flows.deploy import deploy
    from dataswarms.flows.sweep import data_swarms_sweep

    root = tmp_path / "runs"
    cfg = tiny_search_config(
        format_model_dir, root, None,
        **{"benchmark.name": "tiny-sweep", "benchmark.models": [f"base={format_model_dir}"], "pso.max_iterations": 1},
    )  # fmt: skip
    space = [Dimension(key="pso.inertia", low=0.1, high=0.9)]
    with _stack(tmp_path) as api, use_api(api):
        deploy([cfg], work_pool=POOL)
        with pytest.raises(ConfigError, match="--deployment data-swarms-search/nope: no such deployment"):
            data_swarms_sweep(cfg, "svc", trials=1, space=space, deployment="data-swarms-search/nope")
        table = data_swarms_sweep(
            cfg, "svc", trials=2, sampler="random", space=space, deployment="data-swarms-search/tiny-sweep", parallel=2
        )
        with api_client(api) as client:
            deployment = client.read_deployment_by_name("data-swarms-search/tiny-sweep")
        runs = deployment_runs(api, deployment.id)
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=30)  # this process's last logs, before the server stops
    assert sorted(r.parameters["config"]["run_name"] for r in runs) == ["sweep-svc-t000", "sweep-svc-t001"]
    assert all(r.state.type.value == "COMPLETED" for r in runs), [r.state.message for r in runs]
    assert {r.labels["prefect.worker.name"] for r in runs} == set(WORKERS)  # the batch spread over both workers
    for t in table.trials:
        summary = json.loads((root / t.run_name / "summary.json").read_text())
        assert t.state == "complete" and t.value == summary["global_best_utility"]
        stored = yaml.safe_load((root / t.run_name / "config.yaml").read_text())
        assert stored["pso"]["inertia"] == t.params["pso.inertia"]
    assert (root / "sweeps" / "svc" / "sweep.json").exists()
