"""Checkpoints, exact resume after a crash, retries, and S3 run roots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from crash_run import run_and_kill
from safetensors.torch import load_file
from tiny import tiny_search_config

from dataswarms_core.records import RunSummary

HERE = Path(__file__).parent
COMPARED = ("utility_history", "component_history", "global_best_utility", "global_best_particle",
            "global_best_iteration", "global_worst_utility", "step_length_history", "restarts", "parse_failures",
            "judge_failures", "items_per_iteration", "score_matrices", "export_items")  # fmt: skip


def _same_results(a, b) -> None:
    """Two run summaries (:class:`~dataswarms_core.records.RunSummary`) agree on every result."""
    for key in COMPARED:
        assert getattr(a, key) == getattr(b, key), key


def _same_tensors(run_a: Path, run_b: Path, iteration: int) -> None:
    a = load_file(run_a / f"swarms/generators/iter_{iteration:04d}/tensors.safetensors")
    b = load_file(run_b / f"swarms/generators/iter_{iteration:04d}/tensors.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = json.loads((run_a / f"swarms/generators/iter_{iteration:04d}/state.json").read_text())
    sb = json.loads((run_b / f"swarms/generators/iter_{iteration:04d}/state.json").read_text())
    assert sa == sb


@pytest.fixture(scope="module")
def reference_run(prefect_harness, format_model_dir, tmp_path_factory):
    """An uninterrupted 3-iteration search; its run folder and summary."""
    from dataswarms.flows.search import data_swarms_search

    root = tmp_path_factory.mktemp("reference")
    cfg = tiny_search_config(format_model_dir, root, "crash", **{"pso.max_iterations": 3})
    return root / "crash", data_swarms_search(cfg)


@pytest.mark.parametrize("point", ["synthesis:1", "scoring:1", "pso:1", "checkpoint:2", "pointer:2"])
def test_killed_run_resumes_to_the_uninterrupted_result(reference_run, format_model_dir, tmp_path, point):
    """SIGKILL at a point of iteration 1 or 2 in a subprocess; the resumed run ends with the swarm state and
    the figures of the uninterrupted run."""
    from dataswarms.flows.search import data_swarms_search

    reference_dir, reference = reference_run
    cfg = tiny_search_config(format_model_dir, tmp_path, "crash", **{"pso.max_iterations": 3})
    run_and_kill(cfg, tmp_path, point)
    run = tmp_path / "crash"
    pointer = json.loads((run / "checkpoint.json").read_text())
    stage, k = point.split(":")
    # The newest complete checkpoint is the last one whose pointer was written.
    assert pointer["iteration"] == (int(k) - 1 if stage in ("checkpoint", "pointer") else int(k))
    if stage == "checkpoint":
        assert (run / "swarms/generators/iter_0002/tensors.safetensors").exists()
        assert not (run / "swarms/generators/iter_0002/state.json").exists()  # half-written: never followed
    assert not (run / "summary.json").exists()

    summary = data_swarms_search(cfg, resume=True)
    _same_results(reference, summary)
    _same_tensors(reference_dir, run, 3)
    assert summary.resumes == 1


def test_changed_config_on_resume_is_refused_with_the_fields_named(
    prefect_harness, format_model_dir, tmp_path
):
    from dataswarms.flows.search import data_swarms_search
    from dataswarms_core.errors import ConfigMismatchError

    cfg = tiny_search_config(format_model_dir, tmp_path, "changed", **{"pso.max_iterations": 1})
    data_swarms_search(cfg)
    changed = tiny_search_config(
        format_model_dir,
        tmp_path,
        "changed",
        **{"pso.max_iterations": 1, "pso.inertia": 0.2, "generation.temperature": 0.9},
    )
    state = data_swarms_search(changed, resume=True, return_state=True)
    assert state.is_failed()
    with pytest.raises(ConfigMismatchError) as info:
        state.result()
    message = str(info.value)
    assert (
        "generation.temperature: 0.7 → 0.9" in message
        and "pso.inertia: 0.4 → 0.2" in message
        and "--force" in message
    )
    forced = data_swarms_search(changed, resume=True, force=True)
    assert forced.iterations_completed == 1
    run_info = json.loads((tmp_path / "changed/run.json").read_text())
    assert any("pso.inertia" in change for change in run_info["forced_changes"])

    # Another base model (here: a changed fingerprint) is refused too.
    run_info["model_fingerprint"] = "0" * 16
    (tmp_path / "changed/run.json").write_text(json.dumps(run_info))
    state = data_swarms_search(changed, resume=True, return_state=True)
    with pytest.raises(ConfigMismatchError, match="base model differs"):
        state.result()


def test_prefect_flow_retry_resumes_from_the_checkpoint(
    prefect_harness, format_model_dir, tmp_path, monkeypatch, reference_run
):
    """A failure in iteration 1 fails the flow run; its Prefect retry resumes at iteration 1 (iteration 0 is
    not redone) and ends where the uninterrupted run ends."""
    import dataswarms_core.stages.scoring as scoring
    import dataswarms_core.stages.synthesis as synthesis
    from dataswarms.flows.search import data_swarms_search

    reference_dir, reference = reference_run
    calls = {"judge": 0, "synthesis": 0}
    real_judge = scoring.judge_answers
    real_sample = synthesis.sample_items

    def flaky_judge(judge, rows, with_references=False):
        calls["judge"] += 1
        if calls["judge"] == 2:
            raise RuntimeError("the judge host went away")  # not transient: no task retry, the flow fails
        return real_judge(judge, rows, with_references)

    def counting_sample(*args, **kwargs):
        if kwargs.get("stage", "synthesis") == "synthesis" and kwargs.get("iteration") == 0:
            calls["synthesis"] += 1
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(scoring, "judge_answers", flaky_judge)
    monkeypatch.setattr(synthesis, "sample_items", counting_sample)
    cfg = tiny_search_config(format_model_dir, tmp_path, "crash", **{"pso.max_iterations": 3})
    state = data_swarms_search.with_options(retries=1, retry_delay_seconds=0)(cfg, return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    assert calls["synthesis"] == 1  # iteration 0 ran once: the retry resumed from its checkpoint
    _same_results(reference, summary)
    _same_tensors(reference_dir, tmp_path / "crash", 3)


def test_cli_resume_of_an_interrupted_run(prefect_harness, format_model_dir, tmp_path, reference_run):
    from typer.testing import CliRunner

    from dataswarms.flows.cli import app

    reference_dir, reference = reference_run
    cfg = tiny_search_config(format_model_dir, tmp_path, "crash", **{"pso.max_iterations": 3})
    run_and_kill(cfg, tmp_path, "scoring:2")
    result = CliRunner().invoke(app, ["resume", str(tmp_path / "crash")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "done" in result.output
    _same_results(reference, RunSummary.model_validate_json((tmp_path / "crash/summary.json").read_text()))
    missing = CliRunner().invoke(app, ["resume", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no run here" in missing.output


def _s3_config(format_model_dir, endpoint, name, **overrides):
    return tiny_search_config(
        format_model_dir, "s3://dataswarms-test/runs", name,
        **{"storage.endpoint_url": endpoint, "storage.options": {"config_kwargs": {"retries": {"max_attempts": 2}}}, **overrides},
    )  # fmt: skip


def test_search_on_s3_checkpoints_there_and_resumes(
    prefect_harness, format_model_dir, s3_bucket, monkeypatch
):
    import s3fs

    import dataswarms.flows.search as search_module
    from dataswarms.flows.search import data_swarms_search

    endpoint, options = s3_bucket
    fs = s3fs.S3FileSystem(**options)
    straight = data_swarms_search(_s3_config(format_model_dir, endpoint, "straight"))
    assert straight.outputs.summary == "s3://dataswarms-test/runs/straight/summary.json"
    for key in ("checkpoint.json", "summary.json", "swarms/generators/iter_0000/state.json", "swarms/generators/iter_0002/tensors.safetensors",
                "packages/iter_0002/adapter/adapter_model.safetensors", "export/metrics.parquet"):  # fmt: skip
        assert fs.exists(f"dataswarms-test/runs/straight/{key}"), key
    assert fs.ls("dataswarms-test/runs/_cache/prefect-results")  # Prefect's cached results live on S3 too
    assert (
        "testing" not in fs.cat_file("dataswarms-test/runs/straight/config.yaml").decode()
    )  # no credentials

    # The storage endpoint goes away while checkpoint 2 is written: checkpoint 1 stays the newest readable.
    from conftest import start_s3_server, stop_s3_server

    from dataswarms_core.storage import Store

    real_write = Store.write_bytes
    down = []

    def write_bytes(self, key, data):
        if key == "swarms/generators/iter_0002/tensors.safetensors" and not down:
            down.append(True)
            stop_s3_server()
        return real_write(self, key, data)

    monkeypatch.setattr(Store, "write_bytes", write_bytes)
    monkeypatch.setattr(
        search_module, "update_swarm", search_module.update_swarm.with_options(retries=1, retry_delay_seconds=0)
    )
    state = data_swarms_search(_s3_config(format_model_dir, endpoint, "outage"), return_state=True)
    assert state.is_failed()
    start_s3_server()
    pointer = json.loads(fs.cat_file("dataswarms-test/runs/outage/checkpoint.json"))
    assert pointer["iteration"] == 1 and not fs.exists(
        "dataswarms-test/runs/outage/swarms/generators/iter_0002/state.json"
    )
    resumed = data_swarms_search(_s3_config(format_model_dir, endpoint, "outage"), resume=True)
    _same_results(straight, resumed)


def test_transient_error_classification():
    import botocore.exceptions
    import openai

    from dataswarms_core.errors import ConfigError, DataError, StorageError, is_transient_error

    assert is_transient_error(ConnectionRefusedError())
    assert is_transient_error(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"))
    assert is_transient_error(openai.APITimeoutError(request=None))
    try:
        try:
            raise TimeoutError("slow")
        except TimeoutError as exc:
            raise StorageError("s3://b/k: write failed") from exc
    except StorageError as exc:
        assert is_transient_error(exc)
    assert not is_transient_error(DataError("bad file"))
    assert not is_transient_error(ConfigError("bad value"))
    assert not is_transient_error(FileNotFoundError("x"))
    assert not is_transient_error(ValueError("x"))
