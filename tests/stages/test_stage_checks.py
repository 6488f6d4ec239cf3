"""Up-front checks of storage and of run folders about to be resumed, through the command line: one line
naming the file or URL and the cause, no traceback, no resume command that cannot work, and a refused folder
is left exactly as it was."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from tiny import tiny_search_config
from typer.testing import CliRunner

from dataswarms.flows.cli import app
from dataswarms_core import stages

runner = CliRunner()


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    assert "continue with" not in result.output
    return lines[0]


@pytest.fixture
def started_run(tiny_model_dir, tmp_path):
    """A run folder as ``prepare_run`` leaves it (config.yaml, run.json), and its configuration file."""
    cfg = tiny_search_config(tiny_model_dir, tmp_path / "runs", "r")
    stages.prepare_run(cfg)
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(cfg.public_dict()))
    return tmp_path / "runs" / "r", config


def test_a_folder_without_run_json_is_not_a_run(tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "config.yaml").write_text("seed: 3\n")
    (folder / "checkpoint.json").write_bytes(b"\xff\xfe not json")
    before = _files(folder)
    line = _one_line_error(runner.invoke(app, ["resume", str(folder)]))
    assert line == f"error: {folder}: no run here (run.json not found)"
    assert _files(folder) == before  # config.yaml was not replaced by a new paper-sized run


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("checkpoint.json", '{"format_version": 2, "iteration": 1, "swa', "checkpoint.json: invalid JSON"),
        ("checkpoint.json", json.dumps({"format_version": 2, "iteration": 1, "swarms": {"generators": "swarms/generators/iter_0001"}, "stopped": None, "written": "x"}),
         "names checkpoint swarms/generators/iter_0001 of swarm generators, which is missing"),
        ("checkpoint.json", json.dumps({"format_version": 2, "iteration": "one"}), "checkpoint.json: not a valid CheckpointPointer: iteration"),
        ("run.json", '{"run_name": "r", ', "run.json: invalid JSON"),
        ("reference_scores.json", "[]", "reference_scores.json: expected a JSON object"),
    ],
)  # fmt: skip
def test_resume_refuses_untrustworthy_run_files_before_any_work(started_run, name, content, message):
    run, _ = started_run
    (run / name).write_text(content)
    before = _files(run)
    line = _one_line_error(runner.invoke(app, ["resume", str(run)], env={"COLUMNS": "300"}))
    assert message in line, line
    assert _files(run) == before


def test_resume_with_another_configuration_is_refused_up_front(started_run, tmp_path):
    run, config = started_run
    changed = yaml.safe_load(config.read_text())
    changed["pso"]["inertia"] = 0.2
    config.write_text(yaml.safe_dump(changed))
    before = _files(run)
    args = ["run", "--config", str(config), "--run-name", "r", "--resume"]
    line = _one_line_error(runner.invoke(app, args, env={"COLUMNS": "300"}))
    assert "pso.inertia: 0.4 → 0.2" in line and "--force" in line
    assert _files(run) == before  # progress.json was not written


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("where", ["proc", "under-a-file"])
def test_storage_that_cannot_be_written_is_one_line(tmp_path, where):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    output = "/proc/dataswarms-runs" if where == "proc" else str(blocker / "runs")
    line = _one_line_error(runner.invoke(app, ["run", "--output", output], env={"COLUMNS": "300"}))
    assert line.startswith(f"error: storage.root {output}: cannot write there (")
    assert ("not a folder" in line) if where == "under-a-file" else ("permission" in line or "No such file" in line)


@pytest.mark.parametrize("case", ["no-credentials", "endpoint-down"])
def test_s3_storage_failures_are_one_line_without_secrets(tmp_path, monkeypatch, case):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask a metadata service
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    if case == "endpoint-down":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sekrit-value-123")
    config = tmp_path / "s3.yaml"
    storage = {"root": "s3://bucket/runs", "endpoint_url": f"http://127.0.0.1:{_free_port()}"}
    storage["options"] = {"config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}
    config.write_text(yaml.safe_dump({"storage": storage}))
    line = _one_line_error(runner.invoke(app, ["run", "--config", str(config)], env={"COLUMNS": "300"}))
    assert line.startswith("error: storage.root s3://bucket/runs: cannot write there (")
    expected = "no credentials" if case == "no-credentials" else "the endpoint cannot be reached"
    assert expected in line and "sekrit" not in line, line


def _task_file(path: Path, inputs: list[str]) -> Path:
    path.write_text("".join(json.dumps({"input": q, "output": "1"}) + "\n" for q in inputs))
    return path


def test_an_item_longer_than_the_prompts_allow_is_refused_up_front(tiny_model_dir, tmp_path):
    inputs = [f"How many apples does person {i} have?" for i in range(30)]
    task = _task_file(tmp_path / "long.jsonl", [*inputs[:17], "many words " * 100_000, *inputs[17:]])
    cfg = tiny_search_config(tiny_model_dir, tmp_path / "runs", "long", **{"task.source": str(task)})
    config = tmp_path / "long.yaml"
    config.write_text(yaml.safe_dump(cfg.public_dict()))
    line = _one_line_error(runner.invoke(app, ["run", "--config", str(config)], env={"COLUMNS": "400"}))
    assert "1 dev item(s) longer than the 682 tokens the prompts leave for one item" in line
    assert "4096-token context (dev item 17 has 300001 tokens)" in line and "task.long_items: exclude" in line
    assert not (tmp_path / "runs" / "long").exists()

    # Excluded instead: counted in run.json, and every stage sees the task without it.
    excluded = cfg.model_copy(update={"task": cfg.task.model_copy(update={"long_items": "exclude"})})
    stages.preflight(excluded)
    info = stages.prepare_run(excluded)
    assert info.dev_excluded == [17] and info.n_dev == 30
    assert stages.load_run_task(excluded, info).dev["input"].tolist() == inputs


def test_repeated_dev_items_count_once(tiny_model_dir, tmp_path):
    task = _task_file(tmp_path / "same.jsonl", ["What is 2 + 2?"] * 24)
    cfg = tiny_search_config(tiny_model_dir, tmp_path / "runs", "same", **{"task.source": str(task)})
    config = tmp_path / "same.yaml"
    config.write_text(yaml.safe_dump(cfg.public_dict()))
    line = _one_line_error(runner.invoke(app, ["run", "--config", str(config)], env={"COLUMNS": "400"}))
    assert "1 dev items distinct (23 repeated items dropped), but 3 seed generators" in line
