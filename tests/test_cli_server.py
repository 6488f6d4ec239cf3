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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
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
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as info:
        with _server.sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # the handler raises at once; this only bounds a failure
    assert _server.interrupt_exit_code(info.value) == 143
    assert _server.interrupt_exit_code(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGTERM) is previous
