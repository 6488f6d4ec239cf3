"""Run a search in this process and SIGKILL it at a chosen point (used by test_resume.py).

    python crash_run.py CONFIG.json POINT

POINT is ``synthesis:K`` (after iteration K's items were generated, before they are written),
``scoring:K`` (after iteration K's answers were judged, before anything is written), ``pso:K`` (after the
swarm moved in memory, before the checkpoint is written), ``checkpoint:K`` (checkpoint swarms/generators/iter_K has its
tensors but not its state.json) or ``pointer:K`` (checkpoint K is complete, the pointer not yet moved).
Adversarial runs also have ``pool-scoring:K`` (after the test takers' answers on iteration K's pool were judged,
before anything is written) and ``taker-pso:K`` (after the test-taker swarm moved in memory at iteration K,
before its checkpoint is written).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def run_and_kill(cfg, tmp_path: Path, point: str) -> None:
    """Run the search of ``cfg`` in a subprocess (on this process's Prefect server) that SIGKILLs itself at
    ``point``; assert that it was killed."""
    from prefect.settings import PREFECT_API_URL

    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(cfg.model_dump(mode="json")))
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(HERE.parent)}
    command = [sys.executable, str(HERE / "crash_run.py"), str(config_file), point]
    proc = subprocess.run(command, env=env, capture_output=True, timeout=600)
    assert proc.returncode == -9, proc.stderr.decode()[-3000:]


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    config_path, point = sys.argv[1], sys.argv[2]
    stage, k = point.split(":")
    k = int(k)

    import dataswarms_core.stages.adversarial as adversarial
    import dataswarms_core.stages.pso as pso
    import dataswarms_core.stages.scoring as scoring
    import dataswarms_core.stages.synthesis as synthesis
    from dataswarms_core.config import RunConfig
    from dataswarms_core.storage import Store

    if stage == "synthesis":
        real = synthesis.sample_items

        def sample_items(*args, **kwargs):
            out = real(*args, **kwargs)
            if kwargs.get("iteration") == k and kwargs.get("stage", "synthesis") == "synthesis":
                _die()
            return out

        synthesis.sample_items = sample_items
    elif stage == "scoring":
        real_judge, calls = scoring.judge_answers, []

        def judge_answers(judge, rows, with_references=False):
            out = real_judge(judge, rows, with_references)
            if not with_references:
                calls.append(1)
                if len(calls) == k + 1:
                    _die()
            return out

        scoring.judge_answers = judge_answers
    elif stage == "pool-scoring":
        real_pool_judge, pool_calls = adversarial.judge_answers, []

        def pool_judge_answers(judge, rows, with_references=False):
            out = real_pool_judge(judge, rows, with_references)
            if rows and "pool_index" in rows[0]:  # the pool's judgement, not the held-out answers
                pool_calls.append(1)
                if len(pool_calls) == k + 1:
                    _die()
            return out

        adversarial.judge_answers = pool_judge_answers
    elif stage in ("pso", "taker-pso"):
        real_update = pso.update_swarm
        swarm = "generators" if stage == "pso" else "test_takers"

        def update_swarm(state, utilities, config):
            out = real_update(state, utilities, config)
            if out.iteration == k and state.swarm == swarm:
                _die()
            return out

        pso.update_swarm = update_swarm
    elif stage in ("checkpoint", "pointer"):
        real_write = Store.write_bytes
        target = f"swarms/generators/iter_{k:04d}/state.json" if stage == "checkpoint" else "checkpoint.json"

        def write_bytes(self, key, data):
            if key == target and (stage == "checkpoint" or json.loads(data)["iteration"] == k):
                _die()
            return real_write(self, key, data)

        Store.write_bytes = write_bytes
    else:
        raise SystemExit(f"unknown crash point {point}")

    from dataswarms.flows.search import data_swarms_search

    config = RunConfig.model_validate(json.loads(open(config_path).read()))
    data_swarms_search(config)
    raise SystemExit("the run finished without reaching the crash point")


if __name__ == "__main__":
    main()
