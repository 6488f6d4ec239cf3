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
