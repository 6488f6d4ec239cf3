"""The Prefect API a command talks to: the configured one, or a temporary local server started for it.

The temporary server is a plain ``prefect server start`` subprocess (Prefect's supported way to run a
server), not Prefect's ephemeral in-process helper: that one is a child in the terminal's process group, so
Ctrl-C killed it before the interrupted flow run could record its state. This one runs in its own session:
Ctrl-C reaches only the command, the flow run is marked as crashed, its last logs and events are sent, and
the server stops when the command ends. It uses Prefect's local database (under ``PREFECT_HOME``), so a later
``prefect server start`` shows the run.

The server never outlives the command, however the command ends (SIGKILL of it or of its process group
included): the server is started through this module (``python -m dataswarms.flows._server PARENT_PID prefect
server start ...``), which runs Prefect's command in-process after asking Linux for SIGTERM when the parent
dies (``prctl(PR_SET_PDEATHSIG)``), and watches its parent pid: once it changes, the server's process group
gets SIGTERM, then SIGKILL. ``prefect server start`` (one worker) runs uvicorn in the same process and
starts no child; the group kill would take any child along.

A little over 300 lines on purpose: starting, watching and stopping the server process, and the small
parent-watching wrapper it runs in, belong together.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from dataswarms_core.stop import at_forced_exit, stop_signals

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0
ORPHAN_POLL_S = 0.5  # how often the server checks that the command that started it is still its parent
ORPHAN_GRACE_S = 5.0  # after the parent died: SIGTERM to the server's group, SIGKILL this much later
_PORT_ATTEMPTS = 3  # a free port can be taken by another process before the server binds it
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ServerError(RuntimeError):
    """The temporary Prefect server did not start (its message is one line and ends with the log tail)."""


@dataclass(frozen=True)
class TemporaryServer:
    """A running temporary Prefect server.

    Attributes:
        pid: Process id of the ``prefect server start`` process (also its session and process group id).
        port: TCP port on ``127.0.0.1``.
    """

    pid: int
    port: int

    @property
    def api_url(self) -> str:
        """The value for ``PREFECT_API_URL``, e.g. ``http://127.0.0.1:8123/api``."""
        return f"http://{HOST}:{self.port}/api"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Returns:
        The port number (the OS picks it; another process may still take it before it is used).
    """
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _server_command(port: int) -> list[str]:
    # No UI (nobody opens it during the command), no scheduler or late-run service (they serve deployments,
    # which this short-lived server never has). Analytics and log level come from the environment, where
    # the CLI's quiet defaults (PREFECT_SERVER_ANALYTICS_ENABLED=false, PREFECT_LOGGING_LEVEL) are set.
    # Run through this module's __main__, which ties the server's life to this process (see the docstring).
    return [
        sys.executable, "-m", "dataswarms.flows._server", str(os.getpid()),
        "prefect", "server", "start", "--host", HOST, "--port", str(port),
        "--no-ui", "--no-scheduler", "--no-late-runs",
    ]  # fmt: skip


def _server_environment() -> dict[str, str]:
    # The process environment plus the Prefect settings active in this process (a profile, or
    # temporary_settings such as PREFECT_HOME), so the server uses the same database as this command.
    from prefect.settings import get_current_settings

    return {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True)}


def _log_tail(log: IO[bytes], lines: int = 3, limit: int = 600) -> str:
    log.flush()
    log.seek(0)
    text = log.read().decode(errors="replace")
    tail = " | ".join([line.strip() for line in text.splitlines() if line.strip()][-lines:])
    return tail[-limit:] or "(empty)"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/health", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM the server's process group, wait up to ``grace`` seconds, then SIGKILL it."""
    try:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _kill(process)
    except BaseException:  # a second Ctrl-C while waiting: still never leave the server behind
        _kill(process)
        raise


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _kill_now(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGKILL the servers' process groups without waiting (the command is about to ``os._exit``)."""
    for process in processes:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)


def _start(
    log: IO[bytes], timeout: float, started: list[subprocess.Popen[bytes]] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``prefect server start`` on a free port; return the process once /api/health answers.

    Each process started is also appended to ``started`` (so a forced exit can kill it while it starts).
    """
    deadline = time.monotonic() + timeout
    env = _server_environment()
    for attempt in range(_PORT_ATTEMPTS):
        port = free_port()
        log.seek(0)
        log.truncate()
        process = subprocess.Popen(
            _server_command(port), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: Ctrl-C in the terminal does not reach it
        )  # fmt: skip
        if started is not None:
            started.append(process)
        try:
            while process.poll() is None and time.monotonic() < deadline:
                if _healthy(port):
                    return process, port
                time.sleep(0.25)
        except BaseException:
            _stop(process)
            raise
        if process.poll() is None:
            _stop(process)
            raise ServerError(
                f"the temporary Prefect server on port {port} did not answer within {timeout:.0f} s "
                f"(log: {_log_tail(log)})"
            )
        tail = _log_tail(log)
        if "already in use" not in tail or attempt == _PORT_ATTEMPTS - 1:
            raise ServerError(
                f"the temporary Prefect server exited with code {process.returncode} before it answered "
                f"(log: {tail})"
            )
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def temporary_server(timeout: float = STARTUP_TIMEOUT_S) -> Iterator[TemporaryServer]:
    """Run ``prefect server start`` on a free local port, in its own session, for the ``with`` block.

    The server's output goes to a temporary file, shown (its last lines) only if it fails to start. On
    leaving the block, normally or by an exception (Ctrl-C included), the server gets SIGTERM, then SIGKILL
    after 10 s; on a forced exit (a second signal, :mod:`dataswarms_core.stop`) SIGKILL at once. If this
    process dies without either (SIGKILL), the server stops itself (see the module docstring). Use it from the
    thread that keeps the block open (on Linux the server also stops when the thread that started it ends).

    Args:
        timeout: Seconds to wait for ``/api/health`` to answer.

    Returns:
        A context manager yielding the :class:`TemporaryServer`.

    Raises:
        ServerError: The server exited or did not answer in time.
    """
    started: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryFile() as log, at_forced_exit(lambda signum: _kill_now(started)):
        process, port = _start(log, timeout, started)
        try:
            yield TemporaryServer(pid=process.pid, port=port)
        finally:
            _stop(process)


def drain_prefect_workers(timeout: float = 5.0) -> None:
    """Send the flow run's queued logs and events to the API now (best effort, never raises).

    Args:
        timeout: Seconds to wait for each of Prefect's log and event workers.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout)
        except Exception:  # noqa: BLE001 - nothing to flush, or the server is unreachable
            pass


@contextlib.contextmanager
def prefect_api(timeout: float = STARTUP_TIMEOUT_S) -> Iterator[str | None]:
    """Use the configured Prefect API, or start a temporary local server for the ``with`` block.

    SIGINT, SIGTERM and SIGHUP are stop signals (:func:`dataswarms_core.stop.stop_signals`): the first raises
    :class:`~dataswarms_core.stop.StopRequested` and records the stop, so the run is marked, the server
    stopped and the resume command printed; a second one exits at once. With ``PREFECT_API_URL`` set, nothing is started. Otherwise a
    :func:`temporary_server` runs, ``PREFECT_API_URL`` points at it, and on leaving the block the run's last
    logs and events are sent before the server stops.

    Args:
        timeout: Seconds to wait for the temporary server to answer.

    Returns:
        A context manager yielding the temporary server's API URL, or None when one was configured.

    Raises:
        ServerError: The temporary server did not start.
    """
    # Prefect is imported here, not at the top: `dataswarms --help` should not pay for it.
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with stop_signals():
        if PREFECT_API_URL.value():
            yield None
            return
        with temporary_server(timeout) as server, temporary_settings({PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                drain_prefect_workers()  # while the server is still up


def _set_parent_death_signal(signum: int) -> None:
    """Linux: ask the kernel to send ``signum`` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl (another libc): the parent watch below still works
        pass


def _stop_group_when_orphaned(
    parent: int, poll: float = ORPHAN_POLL_S, grace: float = ORPHAN_GRACE_S
) -> None:
    """Wait until ``parent`` is no longer this process's parent, then SIGTERM this process group (SIGKILL after
    ``grace`` seconds); just this process when it does not lead its group."""
    while os.getppid() == parent:
        time.sleep(poll)
    kill = os.killpg if os.getpgrp() == os.getpid() else os.kill  # its own group (a new session), or itself
    with contextlib.suppress(OSError):
        kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        kill(os.getpid(), signal.SIGKILL)


def _serve(argv: Sequence[str]) -> None:
    """``python -m dataswarms.flows._server PARENT_PID MODULE [ARGS...]``: run ``python -m MODULE ARGS`` in this
    process, stopping it (and its process group) when PARENT_PID stops being its parent."""
    parent, module, args = int(argv[0]), argv[1], list(argv[2:])
    _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the command died before the line above took effect
        sys.exit(f"{module}: the process that started it ({parent}) has exited")
    threading.Thread(
        target=_stop_group_when_orphaned, args=(parent,), name="parent-watch", daemon=True
    ).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _serve(sys.argv[1:])
