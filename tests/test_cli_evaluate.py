"""``dataswarms export`` and ``dataswarms evaluate`` end to end through Prefect (the session's test server):
a package of a finished run's checkpoint, then a leaderboard of a local model, the model with the run's
adapter and an endpoint model; bad inputs fail in one line before any flow runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from dataswarms.flows.cli import app
from dataswarms_core.records import BenchmarkManifest, Leaderboard
from dataswarms_core.storage import Store

runner = CliRunner()
WIDE = {"COLUMNS": "300"}


def _run_copy(exported, tmp_path) -> Path:
    _, _, run, _, _, _, _, _ = exported
    dest = tmp_path / "runs" / "export-run"
    shutil.copytree(run.root, dest, ignore=shutil.ignore_patterns("packages"))
    return dest


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The command in its own process, on the session's Prefect test server (a CliRunner would leave Prefect's
    console log handler on the streams of the first invocation, closed by the second)."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, **WIDE, "PREFECT_API_URL": PREFECT_API_URL.value()}
    exe = Path(sys.executable).with_name("dataswarms")
    result = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=600)
    result.output = result.stdout + result.stderr
    result.exit_code = result.returncode
    return result


def _assert_artifacts(keys: list[str]) -> None:
    """The Prefect server holds a table / markdown artifact under each key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    assert {a.key for a in found} == set(keys)
    table = next(a for a in found if a.key == keys[0])
    assert table.type == "table" and "tuned" in str(table.data)


def test_export_then_evaluate(prefect_harness, exported, format_model_dir, openai_server, tmp_path):
    run = _run_copy(exported, tmp_path)
    result = _cli("export", str(run), "--items", "4", "--max-extra-calls", "2")
    assert result.exit_code == 0, result.output
    package = run / "packages" / "iter_0001"
    manifest = BenchmarkManifest.read(Store(str(package)), "package.json")
    assert manifest.counts.asked == 4 and manifest.counts.written <= 4
    assert f"version {manifest.version}" in result.output and f"evaluate {package}" in result.output

    base_url, served = openai_server
    models = ["--model", f"base={format_model_dir}", "--model", f"tuned={format_model_dir}+{package}/adapter",
              "--model", f"served={served}@{base_url}"]  # fmt: skip
    result = _cli("evaluate", str(package), *models)
    assert result.exit_code == 0, result.output
    board = Leaderboard.read(Store(str(package / "leaderboard")), "leaderboard.json")
    assert sorted(r.model for r in board.rows) == ["base", "served", "tuned"]
    assert not any(r.cached for r in board.rows)
    assert board.items == manifest.counts.written and board.test_items == manifest.test_items
    assert "Kendall" in result.output and "| 1 |" in result.output
    for name in ("leaderboard.csv", "leaderboard.parquet", "leaderboard.md", "leaderboard.png"):
        assert (package / "leaderboard" / name).is_file()

    _assert_artifacts(
        [
            f"export-run-{board.benchmark_version}-leaderboard",
            f"export-run-{board.benchmark_version}-leaderboard-report",
            "export-run-package",
        ]
    )

    again = _cli("evaluate", str(package), *models[:2])
    assert again.exit_code == 0, again.output
    board = Leaderboard.read(Store(str(package / "leaderboard")), "leaderboard.json")
    assert [r.cached for r in board.rows] == [True] and board.rows[0].model == "base"


def test_bad_inputs_fail_in_one_line(exported, format_model_dir, tmp_path):
    _, _, run, _, _, summary_pkg, _, summary = exported
    cases = [
        (["evaluate", str(tmp_path), "--model", str(format_model_dir)], "not a benchmark package"),
        (["evaluate", summary.outputs.package, "--model", str(tmp_path / "nope")], "nope"),
        (
            ["evaluate", summary.outputs.package, "--model", f"{format_model_dir}+{tmp_path}"],
            "not a PEFT adapter",
        ),
        (["evaluate", summary.outputs.package, "--model", "m@http://127.0.0.1:9/v1"], "does not answer"),
        (["export", str(tmp_path / "missing-run")], "no run here"),
        (["export", run.root, "--iteration", "5"], "--iteration 5: the run has 1 completed iterations"),
        (["export", run.root, "--answers", "sometimes"], "answers"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args, env=WIDE)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (
            args,
            result.output,
        )
