"""Stops of ``dataswarms run`` that used to get lost or leave things behind (subprocesses, bounded in time).

- SIGKILL of the command's process group (a pre-empting scheduler) leaves no temporary Prefect server.
- SIGTERM swallowed by a library while the SFT data are prepared still stops the run (exit 143, resume
  command last) instead of training on.
- A second signal while the first is stuck (a library that neither raises nor checks) exits at once, with
  the server killed and the resume command still printed last.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the server process, its session and environment through /proc, which only Linux has (CI runs on Linux)")

# Run the command in this process after making the first SFT data set's preparation swallow a SIGTERM, as
# `datasets` did inside a bare `except:`; with "stuck" it then works on for two minutes without any check.
DRIVER = textwrap.dedent(
    """
    import os, signal, sys, time

    mode, marker = sys.argv[1], sys.argv[2]
    del sys.argv[1:3]
    import datasets

    real = datasets.Dataset.from_list.__func__

    def from_list(cls, *args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        except BaseException:
            pass
        open(marker, "w").close()
        if mode == "stuck":
            time.sleep(120)
        return real(cls, *args, **kwargs)

    datasets.Dataset.from_list = classmethod(from_list)
    from dataswarms.flows.cli import main

    main()
    """
)


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory):
    """A Prefect home for these commands (its database is created once); it also identifies their servers."""
    return tmp_path_factory.mktemp("prefect-home-stop")


def _server_pids(prefect_home: Path) -> list[int]:
    """Running processes of a Prefect server started with this PREFECT_HOME (zombies have no cmdline)."""
    wanted = f"PREFECT_HOME={prefect_home}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if b"prefect" in cmdline and b"server" in cmdline and wanted in environ:
            pids.append(int(entry))
    return pids


def _wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _start(args: list[str], tmp_path: Path, prefect_home: Path, model_dir: Path) -> subprocess.Popen[str]:
    """``dataswarms run`` (or the driver) on a tiny run ``runs/stop``, in its own process group."""
    from tiny import tiny_search_config

    cfg = tiny_search_config(model_dir, tmp_path / "runs", "stop")
    config = tmp_path / "stop.yaml"
    config.write_text(yaml.safe_dump(cfg.public_dict()))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(prefect_home)
    return subprocess.Popen(
        [*args, "run", "--config", str(config)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"still running after {timeout} s: {out[-3000:]}") from None
    return out


def _cleanup(proc: subprocess.Popen[str], prefect_home: Path) -> None:
    """Never leave the command or a server behind, even when the test fails."""
    for pid, kill in [(proc.pid, os.killpg), *((pid, os.kill) for pid in _server_pids(prefect_home))]:
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=10)


def _last_line(out: str) -> str:
    return [line for line in out.splitlines() if line.strip()][-1]


def test_sigkill_of_the_process_group_leaves_no_server(tiny_model_dir, tmp_path, prefect_home):
    exe = shutil.which("dataswarms", path=os.path.dirname(sys.executable))
    proc = _start([exe], tmp_path, prefect_home, tiny_model_dir)
    try:
        assert _wait_until((tmp_path / "runs/stop/progress.json").exists, 300), "the run never started"
        servers = _server_pids(prefect_home)
        assert servers, "no temporary server found"
        os.killpg(proc.pid, signal.SIGKILL)  # as a pre-empting scheduler does: nothing runs in the command
        proc.communicate(timeout=30)
        killed = time.monotonic()
        assert _wait_until(lambda: not _server_pids(prefect_home), 15), _server_pids(prefect_home)
        assert time.monotonic() - killed < 15
    finally:
        _cleanup(proc, prefect_home)


def test_a_sigterm_swallowed_during_sft_data_preparation_still_stops_the_run(
    tiny_model_dir, tmp_path, prefect_home
):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    marker = tmp_path / "swallowed"
    proc = _start(
        [sys.executable, str(driver), "swallow", str(marker)], tmp_path, prefect_home, tiny_model_dir
    )
    out = _finish(proc, 400)
    assert marker.exists(), out[-3000:]  # the signal was sent and swallowed
    assert proc.returncode == 143, out[-3000:]
    assert "Traceback" not in out
    assert _last_line(out) == f"continue with: dataswarms resume {tmp_path / 'runs' / 'stop'}"
    assert not list((tmp_path / "runs").rglob("manifest.json"))  # no adapter set was finished
    progress = json.loads((tmp_path / "runs/stop/progress.json").read_text())
    assert progress["stage"] == "seed-generators"
    assert _wait_until(lambda: not _server_pids(prefect_home), 15)


def test_a_second_signal_exits_at_once_and_kills_the_server(tiny_model_dir, tmp_path, prefect_home):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    marker = tmp_path / "swallowed"
    proc = _start([sys.executable, str(driver), "stuck", str(marker)], tmp_path, prefect_home, tiny_model_dir)
    try:
        assert _wait_until(marker.exists, 300), "the first signal was never sent"
        assert _server_pids(prefect_home)
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)  # the first one was swallowed and the library works on
        out = _finish(proc, 30)
        assert time.monotonic() - sent < 10
        assert proc.returncode == 143, out[-3000:]
        assert "stopped at once" in out
        assert _last_line(out) == f"continue with: dataswarms resume {tmp_path / 'runs' / 'stop'}"
        assert _wait_until(lambda: not _server_pids(prefect_home), 15), _server_pids(prefect_home)
    finally:
        _cleanup(proc, prefect_home)


def test_a_run_that_failed_while_a_stop_was_pending_counts_as_interrupted(
    tiny_model_dir, tmp_path, monkeypatch
):
    """A library turned the interrupt into an ordinary error, so the flow run failed instead of crashing: the
    command still reports the stop (exit 143, resume command last), not a failure. Prefect's SIGTERM handler
    is replaced by the stop handler once the flow runs (its on_running hook)."""
    import io

    import typer
    from prefect.states import Failed
    from rich.console import Console
    from tiny import tiny_search_config

    from dataswarms.flows import _run
    from dataswarms_core import stop

    class Flow:
        on_running_hooks: list = []
        options: dict = {}

        def with_options(self, **options):
            self.options = options
            return self

        def __call__(self, cfg, **kwargs):
            stop.request_stop(signal.SIGTERM)
            return Failed(message="RuntimeError: the library re-raised the interrupt as an error")

    flow = Flow()
    monkeypatch.setattr(_run, "data_swarms_search", flow)
    monkeypatch.setattr(_run, "prefect_api", contextlib.nullcontext)
    cfg = tiny_search_config(tiny_model_dir, tmp_path / "runs", "failed")
    out = io.StringIO()
    with pytest.raises(typer.Exit) as info:
        _run.execute(cfg, resume=False, force=False, retries=0, console=Console(file=out, width=300))
    assert info.value.exit_code == 143
    assert _last_line(out.getvalue()) == f"continue with: dataswarms resume {tmp_path / 'runs' / 'failed'}"
    assert flow.options["on_running"] == [_run._reclaim_stop_signals]
    assert stop.stop_requested() is None  # forgotten once the command's block ended
