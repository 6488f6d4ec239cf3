"""The command line: help, and one-line errors for bad input."""

from typer.testing import CliRunner

from flows.cli import app

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
