"""The command's temporary Prefect server (flows/_server.py): it starts, answers, and leaves nothing behind."""

import os
import signal
import socket
import sys
import time
import urllib.request

import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

from dataswarms.flows import _server


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _environ(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the server process, its session and environment through /proc, which only Linux has (CI runs on Linux)")
def test_temporary_server_answers_and_is_gone_afterwards(tmp_path, monkeypatch):
    """The first port offered is taken: the server retries on another, answers /api/health, runs in its
    own session with the command's environment, and after the block neither process nor listener remain."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    ports = iter([busy.getsockname()[1]])
    real_free_port = _server.free_port
    monkeypatch.setattr(_server, "free_port", lambda: next(ports, None) or real_free_port())
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
    try:
        with temporary_settings({PREFECT_HOME: str(tmp_path / "prefect-home")}):
            with _server.temporary_server() as server:
                assert server.port != busy.getsockname()[1]
                with urllib.request.urlopen(f"{server.api_url}/health", timeout=10) as response:
                    assert response.status == 200
                assert os.getsid(server.pid) == server.pid != os.getsid(0)  # its own session
                env = _environ(server.pid)
                assert env["PREFECT_SERVER_ANALYTICS_ENABLED"].lower() == "false"
                assert env["PREFECT_LOGGING_LEVEL"].upper() == "WARNING"
                assert env["PREFECT_HOME"] == str(tmp_path / "prefect-home")  # in-process settings too
    finally:
        busy.close()
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)  # nothing left in its process group either
    assert not _listening(server.port)


def test_a_server_that_dies_is_a_one_line_error_with_its_log(monkeypatch):
    monkeypatch.setattr(
        _server, "_server_command", lambda port: [sys.executable, "-c", "print('no database'); exit(3)"]
    )
    with pytest.raises(_server.ServerError) as info:
        with _server.temporary_server(timeout=60):
            pass
    message = str(info.value)
    assert "exited with code 3" in message and "no database" in message and "\n" not in message


def test_a_configured_api_is_used_and_nothing_started(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no server should be started")

    monkeypatch.setattr(_server, "temporary_server", refuse)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with _server.prefect_api() as url:
            assert url is None


def test_sigterm_becomes_an_interrupt_with_exit_code_143():
    from dataswarms_core.stop import exit_code, stop_signals

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as info:
        with stop_signals((signal.SIGTERM,)):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # the handler raises at once; this only bounds a failure
    assert exit_code(info.value) == 143
    assert exit_code(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGTERM) is previous


def _gone(pid: int) -> bool:
    """No such process, or only its exit status is left (a zombie nobody reaps: not running)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the server process, its session and environment through /proc, which only Linux has (CI runs on Linux)")
def test_the_server_stops_when_the_command_that_started_it_is_killed(tmp_path):
    """SIGKILL of the command (no cleanup at all runs in it): its temporary server stops within seconds."""
    import subprocess
    import textwrap

    script = textwrap.dedent(
        """
        import sys, time
        from prefect.settings import PREFECT_HOME, temporary_settings
        from dataswarms.flows import _server

        with temporary_settings({PREFECT_HOME: sys.argv[1]}), _server.temporary_server() as server:
            print(server.pid, server.port, flush=True)
            time.sleep(300)
        """
    )
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    command = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "prefect-home")],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pid, port = map(int, command.stdout.readline().split())
        assert not _gone(pid) and _listening(port)
        command.kill()
        command.wait(timeout=30)
        deadline = time.monotonic() + 15
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(pid), open(f"/proc/{pid}/cmdline").read()
        assert not _listening(port)
    finally:
        command.kill()
        command.stdout.close()


def test_the_server_exits_at_once_when_its_parent_is_already_gone():
    """The command died between starting the server and the server asking to die with it."""
    import subprocess

    not_my_parent = "1"
    done = subprocess.run(
        [sys.executable, "-m", "dataswarms.flows._server", not_my_parent, "prefect", "server", "start"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "has exited" in done.stderr
