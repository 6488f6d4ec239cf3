"""The command line: help, and one-line errors for bad input."""

import pytest
from typer.testing import CliRunner

from dataswarms.flows.cli import app

runner = CliRunner()


def test_help_lists_run_and_its_options():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "run" in result.output
    result = runner.invoke(app, ["run", "--help"])
    for option in ("--config", "--task", "--iterations", "--seed", "--output", "--run-name"):
        assert option in result.output


def test_bad_config_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "error:" in result.output and "config file not found" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("pso: {inertia: -2}\n")
    result = runner.invoke(app, ["run", "--config", str(bad)])
    assert result.exit_code == 2 and "pso.inertia" in result.output
    result = runner.invoke(app, ["run", "--run-name", "../x"])
    assert result.exit_code == 2 and "not a valid run name" in result.output


def test_bad_inputs_are_refused_before_the_flow_starts(tmp_path, tiny_model_dir):
    """Task file, model and run folder are checked up front: one line, exit 2, no traceback."""
    bad_task = tmp_path / "t.csv"
    bad_task.write_text("question\nq?\n")
    for args, message in [
        (["--task", str(bad_task)], "no 'input' column"),
        (["--task", str(tmp_path / "missing.jsonl")], "task file not found"),
    ]:
        result = runner.invoke(app, ["run", *args, "--output", str(tmp_path / "runs")])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{base_model: {tmp_path / 'nomodel'}}}\n")
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2 and "not a built-in name" in result.output
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    (tmp_path / "runs" / "taken" / "run.json").write_text("{}")
    result = runner.invoke(app, ["run", "--output", str(tmp_path / "runs"), "--run-name", "taken"])
    assert result.exit_code == 2 and "exists already" in result.output and "resume" in result.output
    result = runner.invoke(app, ["resume", str(tmp_path / "runs" / "taken")])
    assert result.exit_code == 2 and "config.yaml not found" in result.output
    # --backend vllm on this machine (no vLLM, no GPU); --base-model with a Hub id that is not cached (offline)
    for args, message in [
        (["--backend", "vllm", "--base-model", str(tiny_model_dir)], "backend 'vllm' needs"),
        (["--base-model", "acme/not-cached-model"], "model 'acme/not-cached-model': not in the Hugging Face cache"),
        (["--backend", "tgi"], "unknown local backend 'tgi'; known local backends: hf, vllm"),
    ]:
        result = runner.invoke(app, ["run", *args, "--output", str(tmp_path / "runs2")], env={"COLUMNS": "300"})
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "runs2").exists()


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory):
    """A Prefect home for the commands run in subprocesses (its database is created once)."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.mark.parametrize(("signum", "code"), [(2, 130), (15, 143)])
def test_ctrl_c_prints_the_resume_command_and_it_finishes_the_run(
    format_model_dir, tmp_path, signum, code, prefect_home
):
    """As in a terminal: SIGINT (Ctrl-C) to the command's process group — or SIGTERM, as from a scheduler —
    with no Prefect server configured, so the command starts its own. It stops within seconds, stops its
    server, prints how to resume, and that command completes the run."""
    import json
    import os
    import re
    import shutil
    import signal
    import subprocess
    import sys
    import time

    import yaml
    from tiny import tiny_search_config

    cfg = tiny_search_config(
        format_model_dir, tmp_path / "runs", "int",
        **{"pso.max_iterations": 8, "pso.patience": 100, "generation.max_new_tokens": 64},
    )  # fmt: skip
    config = tmp_path / "int.yaml"
    config.write_text(yaml.safe_dump(cfg.public_dict()))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(prefect_home)  # its own Prefect database, not the user's
    exe = shutil.which("dataswarms", path=os.path.dirname(sys.executable))
    proc = subprocess.Popen(
        [exe, "run", "--config", str(config)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    progress = tmp_path / "runs/int/progress.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if (json.loads(progress.read_text()).get("iteration") or 0) >= 2:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    stopped = time.time()
    os.killpg(proc.pid, signum)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, out[-3000:]
    assert "Traceback" not in out
    assert time.time() - stopped < 60
    command = re.search(r"continue with: (.+)", out).group(1).strip()
    assert command == f"{exe} resume {tmp_path / 'runs' / 'int'}"
    pointer = json.loads((tmp_path / "runs/int/checkpoint.json").read_text())
    assert 2 <= pointer["iteration"] < 8
    resumed = subprocess.run(command.split(), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "runs/int/summary.json").read_text())
    assert summary["iterations_completed"] == 8 and summary["resumes"] == 1


def test_messages_are_printed_verbatim(tmp_path):
    """Brackets in paths are not rich markup: the message names the real file."""
    weird = tmp_path / "[bold]x[/b].yaml"
    result = runner.invoke(app, ["run", "--config", str(weird)])
    assert result.exit_code == 2 and f"{weird}: config file not found" in result.output


def test_bad_task_files_and_options_are_refused_up_front(tmp_path, tiny_model_dir):
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_text('{"input": "q1"}\n[1, 2]\n')
    small = tmp_path / "small.csv"
    small.write_text("input\na?\nb?\n")
    lora_config = tmp_path / "lora.yaml"
    lora_config.write_text(
        f"model: {{base_model: {tiny_model_dir}}}\nseed_generators: {{lora: {{target_modules: [w_in]}}}}\n"
    )
    for args, message in [
        (["--task", str(jsonl)], "line 2 is not a JSON object"),
        (["--task", "foo://x/y.json"], "foo://x/y.json: cannot read the file"),
        (["--task", str(small)], "2 dev items, but 4 seed generators"),
        (["--output", ""], "storage.root"),
        (["--output", str(small)], "is a file, expected a folder"),
        (["--objective", "banana"], "command line: scoring.objective"),
        (["--config", str(lora_config)], "seed_generators.lora.target_modules: ['w_in'] are not layers"),
    ]:
        result = runner.invoke(app, ["run", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, (args, result.output)


def test_resume_of_a_one_swarm_run_of_dataswarms_0_1_is_refused_unchanged(tmp_path):
    """A run folder of the 0.1 layout (one ``swarm/`` folder, files without ``format_version``) is refused in
    one line naming the file and both versions, before its old-style config is read; nothing is written."""
    import json

    run = tmp_path / "old"
    (run / "swarm/iter_0001").mkdir(parents=True)
    (run / "config.yaml").write_text("scoring:\n  judge: expected-score\nstorage:\n  root: ./runs\n")
    (run / "run.json").write_text(json.dumps({"run_name": "old", "task_hash": "x", "resumes": 0}))
    (run / "checkpoint.json").write_text(
        json.dumps({"iteration": 1, "swarm": "swarm/iter_0001", "stopped": None})
    )
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = runner.invoke(app, ["resume", str(run)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"{run}/run.json: format version 1" in lines[0] and "reads version 2" in lines[0]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(("signum", "code"), [(2, 130), (15, 143)])
def test_a_stop_before_the_flow_starts_ends_the_command_quietly(tmp_path, monkeypatch, signum, code):
    """Ctrl-C or SIGTERM while the command loads or checks its inputs: 128 + signal, no "Aborted!" (click's
    exit 1) and no traceback; the signal handlers are restored afterwards."""
    import os
    import signal
    import time

    from dataswarms_core import stages, stop

    def preflight(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(10)  # the handler raises at once; this only bounds a failure

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(stages, "preflight", preflight)
    result = runner.invoke(app, ["run", "--output", str(tmp_path / "runs")])
    assert result.exit_code == code, result.output
    assert "Aborted" not in result.output and "Traceback" not in result.output
    assert signal.getsignal(signal.SIGTERM) is before and stop.stop_requested() is None


def test_adversarial_options_are_checked_up_front(tmp_path, tiny_model_dir):
    """--mode and --pool: one line, exit 2, nothing started (docs/method.md §6)."""
    out = ["--output", str(tmp_path / "runs")]
    for args, message in [
        (["--pool", "static"], "--pool static applies to adversarial mode only; add --mode adversarial"),
        (
            ["--mode", "adversarial", "--pool", "sometimes"],
            "adversarial.pool: Input should be 'adversarial' or",
        ),
        (["--mode", "duel"], "mode: Input should be 'data-swarms' or 'adversarial'"),
        (
            ["--mode", "adversarial", "--objective", "novelty"],
            "scoring.objective is 'novelty', expected 'difficulty'",
        ),
    ]:
        result = runner.invoke(app, ["run", *args, *out], env={"COLUMNS": "300"})
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    small = tmp_path / "small.yaml"
    small.write_text("mode: adversarial\nadversarial: {pool_size: 301}\n")
    result = runner.invoke(
        app, ["run", "--config", str(small), *out, "--pool", "both"], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 2 and "adversarial.pool_size 301 is larger than the dev split (300 items)" in (
        result.output
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_compare_refuses_what_it_cannot_compare(tmp_path):
    result = runner.invoke(app, ["compare", str(tmp_path / "nowhere")], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "nowhere" in result.output and "Traceback" not in result.output
