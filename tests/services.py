"""Real services for tests of a deployed dataswarms: PostgreSQL, a Prefect server on it (API, UI, scheduler),
process work pools and their workers, and a headless Chromium on the Prefect UI.

Each service is a context manager (a plain function: use it from a pytest fixture, a test or a script) that
listens on 127.0.0.1 on a free port and is cleaned up on leaving the ``with`` block, however it is left:
processes are stopped (SIGTERM to their process group, SIGKILL after a grace period) and temporary data
directories removed. Failures to start raise :class:`ServiceError` with the tail of the service's log.

The Prefect server and workers are started through ``python -m dataswarms.flows._server PARENT_PID prefect
...`` (the wrapper the ``dataswarms`` command uses for its temporary server): the Prefect command runs
in-process, in its own session, and stops itself when the process that started it dies without cleaning up
(SIGKILL of pytest included).

Example::

    with postgres(tmp) as db, prefect_server(db, tmp / "home") as api, work_pool(api, "pool"), \\
            worker(api, "pool", "w1"):
        ...

Helpers for tests on these services: :func:`sql` (a query on the database), :func:`api_client`,
:func:`use_api` (this process's Prefect client on a server), :func:`wait_until`, :func:`finished_runs`,
:func:`log_text`, :func:`deployment_runs`, :func:`worker_names`, and :func:`flow_run_page_text` (a flow run's
UI page, tab by tab, with screenshots).

Needs: PostgreSQL's ``initdb``/``pg_ctl`` on PATH or under ``/usr/lib/postgresql/*/bin`` (as root they run as
the ``postgres`` system user, since ``initdb`` refuses root), and for the browser helpers the ``playwright``
package with a system Chromium (Debian's ``/usr/bin/chromium``; no browser download).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from dataswarms.flows._server import _stop, free_port

HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
)  # fmt: skip
_PORT_ATTEMPTS = 3
_T = TypeVar("_T")

# Server settings that make deployments' schedules visible within seconds in tests (Prefect 3.9 names; the
# defaults are a 60 s scheduler loop, a 5 s loop for recently changed deployments, runs scheduled at least an
# hour and at least 3 runs ahead, at most 100).
FAST_SCHEDULER_ENV = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "true",
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "2",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "5",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_SCHEDULED_TIME": "PT30S",
}
# Worker settings for fast pick-up (defaults: query every 10 s, 10 s prefetch, heartbeat every 30 s).
FAST_WORKER_ENV = {
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_WORKER_PREFETCH_SECONDS": "2",
    "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
}


class ServiceError(RuntimeError):
    """A service did not start or answer in time (the message ends with the tail of its log)."""


# ---------------------------------------------------------------------------------------------- helpers


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": "text/html,application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode(errors="replace")


def _answers(url: str) -> bool:
    try:
        return _http_get(url, timeout=2)[0] == 200
    except (OSError, urllib.error.URLError):
        return False


def _run_coroutine(coroutine: Any) -> Any:
    """Run ``coroutine`` to completion in a fresh event loop on another thread (safe inside a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _asyncpg_dsn(url: str) -> str:
    return re.sub(r"^postgresql\+asyncpg://", "postgresql://", url)


def sql(url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    """Run one SQL statement on a PostgreSQL database and return its rows.

    Args:
        url: A ``postgresql+asyncpg://`` (SQLAlchemy) or ``postgresql://`` URL, as :func:`postgres` yields.
        query: The statement, with ``$1``-style placeholders for ``args``.
        *args: Values for the placeholders.

    Returns:
        The rows as dictionaries (empty for statements that return none).
    """
    import asyncpg

    async def run() -> list[dict[str, Any]]:
        connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
        try:
            return [dict(row) for row in await connection.fetch(query, *args)]
        finally:
            await connection.close()

    return _run_coroutine(run())


def _start_wrapped(command: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m dataswarms.flows._server OUR_PID COMMAND...`` in its own session, output to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dataswarms.flows._server", str(os.getpid()), *command],
            env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _base_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``PREFECT_*`` variable (a profile, an API URL, logging levels
    set by other code in this process), plus analytics off and ``extra``: a service is configured only by
    what its function passes."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}, **extra)
    return env


# --------------------------------------------------------------------------------------------- postgres


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[::-1]), None)
    if not found:
        raise ServiceError(
            f"PostgreSQL's `{name}` is not installed (Debian: apt-get install -y postgresql; it is then under "
            "/usr/lib/postgresql/<version>/bin)"
        )
    return found


def _as_postgres_user(args: Sequence[str]) -> list[str]:
    """The command line running ``args`` as the ``postgres`` system user when we are root, else as is."""
    if os.geteuid() != 0:
        return list(args)
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *args]
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(args)]


def _pg_run(args: Sequence[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _as_postgres_user(args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_postmaster(data: Path) -> None:
    pid = _postmaster_pid(data)
    if pid is None:
        return
    for kill in (os.killpg, os.kill):  # pg_ctl makes the postmaster a session leader; else just the process
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def postgres(
    tmpdir: str | os.PathLike[str], *, user: str = "prefect", database: str = "prefect", timeout: float = 60.0
) -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 and a free port, with an empty database, for the ``with`` block.

    ``initdb -A trust`` (run as the ``postgres`` system user when this process is root, since ``initdb``
    refuses root), ``pg_ctl start`` with the Unix socket in the cluster's folder, and ``CREATE DATABASE``.
    On leaving the block: ``pg_ctl stop -m fast`` (SIGKILL to the postmaster if that fails), the server log
    is copied to ``tmpdir/postgres.log`` and the cluster's folder removed. As root the cluster lives in a
    folder of its own under the system temporary directory, owned by ``postgres`` (pytest's temporary
    folders are private to root); otherwise under ``tmpdir``. Unlike the Prefect processes, the cluster does
    not watch this process: if it is SIGKILLed, stop the cluster with ``pg_ctl -D <folder>/data stop``.

    Args:
        tmpdir: A folder for the cluster (non-root) and the kept log.
        user: The database superuser to create (``initdb -U``); no password (trust authentication).
        database: The database to create.
        timeout: Seconds to wait for the server to accept connections.

    Returns:
        A context manager yielding the SQLAlchemy URL
        ``postgresql+asyncpg://USER@127.0.0.1:PORT/DATABASE`` (Prefect's ``PREFECT_API_DATABASE_CONNECTION_URL``).

    Raises:
        ServiceError: PostgreSQL is not installed, or the cluster did not initialise or start.
    """
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    as_root = os.geteuid() == 0
    # A Unix socket path is at most ~107 bytes: a deep pytest folder can be too long for it.
    use_tmpdir = not as_root and len(str(tmpdir)) < 60
    base = Path(tempfile.mkdtemp(prefix="dataswarms-pg-", dir=tmpdir if use_tmpdir else None))
    data, log = base / "data", base / "postgres.log"
    started = False
    try:
        if as_root:
            shutil.chown(base, "postgres", "postgres")
        init = _pg_run([initdb, "-D", str(data), "-A", "trust", "-U", user, "-E", "UTF8", "--no-sync"])
        if init.returncode != 0:
            raise ServiceError(f"initdb failed ({init.returncode}): {(init.stderr or init.stdout)[-1500:]}")
        for attempt in range(_PORT_ATTEMPTS):
            port = free_port()
            options = f"-p {port} -k {base} -c listen_addresses={HOST} -c fsync=off -c full_page_writes=off"
            start = _pg_run(
                [pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", str(int(timeout)), "start"],
                timeout=timeout + 30,
            )
            started = _postmaster_pid(data) is not None
            if start.returncode == 0:
                break
            if "already in use" not in _tail(log, 40) or attempt == _PORT_ATTEMPTS - 1:
                raise ServiceError(
                    f"pg_ctl start failed ({start.returncode}): {start.stderr.strip()[-500:]}\n{_tail(log)}"
                )
        admin = f"postgresql://{user}@{HOST}:{port}/postgres"
        sql(admin, f'CREATE DATABASE "{database}"')
        yield f"postgresql+asyncpg://{user}@{HOST}:{port}/{database}"
    finally:
        if started or _postmaster_pid(data) is not None:
            stop = _pg_run([pg_ctl, "-D", str(data), "stop", "-m", "fast", "-w", "-t", "30"], timeout=60)
            if stop.returncode != 0:
                _kill_postmaster(data)
        with contextlib.suppress(OSError):
            shutil.copyfile(log, tmpdir / "postgres.log")
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------------------ prefect server


@contextlib.contextmanager
def prefect_server(
    db_url: str,
    home: str | os.PathLike[str],
    ui: bool = True,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 180.0,
) -> Iterator[str]:
    """``prefect server start`` on 127.0.0.1 and a free port, on the database ``db_url``, for the block.

    The server runs in its own session with ``PREFECT_API_DATABASE_CONNECTION_URL=db_url``,
    ``PREFECT_HOME=home``, analytics off, all services on (the scheduler's loops shortened by
    :data:`FAST_SCHEDULER_ENV`), and the UI on when ``ui``. Its output goes to ``home/server.log``. The block
    starts once ``/api/health`` answers, the UI (when on) serves its page at ``/``, and — for a PostgreSQL URL
    — the database holds Prefect's migrated schema (``alembic_version``), i.e. the server really uses it.
    On leaving: SIGTERM to the server's process group, SIGKILL 10 s later.

    Args:
        db_url: SQLAlchemy URL of the database (e.g. from :func:`postgres`).
        home: ``PREFECT_HOME`` of the server (created if missing; keeps ``server.log`` and the UI's files).
        ui: Serve the UI.
        env: Extra environment for the server (overrides the defaults above).
        timeout: Seconds to wait for the server to answer (it migrates a fresh database first).

    Returns:
        A context manager yielding the API URL, ``http://127.0.0.1:PORT/api``.

    Raises:
        ServiceError: The server exited or did not answer in time, or does not use ``db_url``.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    deadline = time.monotonic() + timeout
    for attempt in range(_PORT_ATTEMPTS):
        port = free_port()
        api_url = f"http://{HOST}:{port}/api"
        server_env = _base_env(
            PREFECT_HOME=str(home),
            PREFECT_API_DATABASE_CONNECTION_URL=db_url,
            PREFECT_UI_API_URL=api_url,
            PREFECT_SERVER_UI_ENABLED=str(ui).lower(),
            **FAST_SCHEDULER_ENV,
        )
        server_env.update(env or {})
        command = ["prefect", "server", "start", "--host", HOST, "--port", str(port), "--ui" if ui else "--no-ui"]
        log.write_text("")
        process = _start_wrapped(command, server_env, log)
        try:
            while process.poll() is None and time.monotonic() < deadline and not _answers(f"{api_url}/health"):
                time.sleep(0.5)
            if process.poll() is not None:
                if "already in use" in _tail(log) and attempt < _PORT_ATTEMPTS - 1:
                    continue
                raise ServiceError(f"prefect server exited with code {process.returncode}:\n{_tail(log)}")
            if not _answers(f"{api_url}/health"):
                raise ServiceError(f"prefect server did not answer within {timeout:.0f} s:\n{_tail(log)}")
            if ui:
                status, page = _http_get(f"http://{HOST}:{port}/", timeout=10)
                if status != 200 or "<html" not in page.lower():
                    raise ServiceError(f"the Prefect UI is not served at http://{HOST}:{port}/ ({status})")
            if db_url.startswith("postgresql"):
                if not sql(db_url, "SELECT version_num FROM alembic_version"):
                    raise ServiceError(f"prefect server did not migrate {db_url}:\n{_tail(log)}")
            yield api_url
            return
        finally:
            _stop(process)
    raise AssertionError("unreachable")  # pragma: no cover


# -------------------------------------------------------------------------------------- pools and workers


@contextlib.contextmanager
def api_client(api_url: str) -> Iterator[Any]:
    """A synchronous Prefect client for the server at ``api_url`` (a ``SyncPrefectClient``), for the block."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api_url) as client:
        yield client


@contextlib.contextmanager
def work_pool(
    api_url: str, name: str, type: str = "process", *, concurrency_limit: int | None = None
) -> Iterator[Any]:
    """A work pool with the default base job template of its worker type, deleted on leaving the block.

    Args:
        api_url: The Prefect API.
        name: The pool's name.
        type: The worker type (``process``: flow runs as local subprocesses of the worker).
        concurrency_limit: Most flow runs of the pool running at once (None: no limit).

    Returns:
        A context manager yielding the created ``WorkPool``.
    """
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    template = _run_coroutine(get_default_base_job_template_for_infrastructure_type(type))
    if template is None:
        raise ServiceError(f"no worker type {type!r} is installed")
    with api_client(api_url) as client:
        pool = client.create_work_pool(
            WorkPoolCreate(name=name, type=type, base_job_template=template, concurrency_limit=concurrency_limit)
        )
    try:
        yield pool
    finally:
        with contextlib.suppress(Exception), api_client(api_url) as client:
            client.delete_work_pool(name)


def worker_names(api_url: str, pool: str, online: bool = True) -> list[str]:
    """The names of the workers of ``pool`` that the API knows (``online``: only those with status ONLINE)."""
    with api_client(api_url) as client:
        workers = client.read_workers_for_work_pool(pool)
    return sorted(w.name for w in workers if not online or str(getattr(w.status, "value", w.status)) == "ONLINE")


@contextlib.contextmanager
def worker(
    api_url: str,
    pool: str,
    name: str,
    *,
    env: Mapping[str, str] | None = None,
    home: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    type: str = "process",
    timeout: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``prefect worker start --pool POOL --name NAME --type TYPE`` in its own session, for the block.

    The worker polls every second (:data:`FAST_WORKER_ENV`); a process worker runs each flow run as a
    subprocess with the worker's environment (so ``env`` reaches the flow runs too; Prefect adds
    ``PREFECT__WORKER_NAME``). The block starts once the API lists the worker as ONLINE. Its output goes
    to ``home/worker.log``. On leaving: SIGTERM to its process group, SIGKILL 10 s later.

    Args:
        api_url: The Prefect API.
        pool: The work pool to poll.
        name: The worker's name (unique in the pool).
        env: Extra environment for the worker and its flow runs.
        home: ``PREFECT_HOME`` of the worker (default: a temporary folder, removed afterwards).
        limit: Most flow runs this worker runs at once (``--limit``; None: no limit).
        type: The worker type.
        timeout: Seconds to wait for the worker to come online.

    Returns:
        A context manager yielding the worker's ``Popen`` (its pid is also its process group id).

    Raises:
        ServiceError: The worker exited or did not come online in time.
    """
    own_home = home is None
    home = Path(tempfile.mkdtemp(prefix=f"dataswarms-worker-{name}-")) if home is None else Path(home)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "worker.log"
    worker_env = _base_env(PREFECT_API_URL=api_url, PREFECT_HOME=str(home), **FAST_WORKER_ENV)
    worker_env.update(env or {})
    command = ["prefect", "worker", "start", "--pool", pool, "--name", name, "--type", type]
    if limit is not None:
        command += ["--limit", str(limit)]
    process = _start_wrapped(command, worker_env, log)
    try:
        deadline = time.monotonic() + timeout
        while name not in worker_names(api_url, pool):
            if process.poll() is not None:
                raise ServiceError(f"worker {name!r} exited with code {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise ServiceError(f"worker {name!r} did not come online within {timeout:.0f} s:\n{_tail(log)}")
            time.sleep(0.5)
        yield process
    finally:
        _stop(process)
        if own_home:
            shutil.rmtree(home, ignore_errors=True)


# ------------------------------------------------------------------------------------ waiting on the API


@contextlib.contextmanager
def use_api(api: str) -> Iterator[None]:
    """Point this process's Prefect client (``run_deployment``, ``deploy``) at ``api``."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        yield


def wait_until(check: Callable[[], _T], timeout: float, what: str, every: float = 1.0) -> _T:
    """Call ``check`` until it returns something truthy (returned); fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {value!r})")
        time.sleep(every)


def finished_runs(api: str, ids: list[UUID], timeout: float = 120.0) -> list[Any]:
    """The flow runs ``ids`` (read from the API) once all are in a final state; AssertionError after
    ``timeout`` seconds."""

    def read() -> list[Any] | None:
        with api_client(api) as client:
            runs = [client.read_flow_run(i) for i in ids]
        return runs if all(r.state and r.state.is_final() for r in runs) else None

    return wait_until(read, timeout, f"flow runs {ids} to finish")


def log_text(api: str, flow_run_id: UUID, wait_for: str | None = None, timeout: float = 30.0) -> str:
    """All log messages of a flow run stored by the API, oldest first, one per line; with ``wait_for``, once
    they contain it (a flow run's process sends its last logs in a batch as it exits, after its final state).
    Fails (AssertionError) when ``wait_for`` does not appear within ``timeout`` seconds."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    def read() -> str:
        messages: list[str] = []
        with api_client(api) as client:
            while True:  # the API returns at most PREFECT_API_DEFAULT_LIMIT (200) logs a call
                page = client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                    limit=200, offset=len(messages),
                )  # fmt: skip
                messages += [log.message for log in page]
                if len(page) < 200:
                    return "\n".join(messages)

    if wait_for is None:
        return read()
    return wait_until(lambda: text if wait_for in (text := read()) else None, timeout, f"log line {wait_for!r}")


def deployment_runs(api: str, deployment_id: UUID) -> list[Any]:
    """Every flow run of a deployment (up to the API's page size, 200), as the API has them now."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    with api_client(api) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]))
        )


# ---------------------------------------------------------------------------------------------- chromium


@contextlib.contextmanager
def chromium_page(
    *, executable: str = CHROMIUM, viewport: tuple[int, int] = (1400, 1000), timeout_ms: float = 30_000
) -> Iterator[Any]:
    """A Playwright ``Page`` in the system's headless Chromium (no browser download), for the block.

    Chromium starts with :data:`CHROMIUM_ARGS` (no sandbox, GPU, first-run, background networking, component
    updates or sync: it must not try to reach the network) and a fresh profile that Playwright removes.

    Args:
        executable: The Chromium binary (Debian's ``/usr/bin/chromium``).
        viewport: Width and height of the page in pixels.
        timeout_ms: Default timeout of the page's actions and waits.

    Returns:
        A context manager yielding the page.

    Raises:
        ServiceError: Chromium or the ``playwright`` package is missing.
    """
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        raise ServiceError(
            f"Chromium is not installed at {executable} (Debian: apt-get update && apt-get install -y chromium; "
            "`.ci/run` does this)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise ServiceError("the `playwright` package is missing: pip install -e '.[dev]'") from error

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


def ui_url(api_url: str, path: str = "/") -> str:
    """The UI address for ``path`` on the server of ``api_url`` (``http://H:P/api`` → ``http://H:P/PATH``)."""
    return re.sub(r"/api/?$", "", api_url) + "/" + path.lstrip("/")


def _tab_name(tab: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", tab).strip("-").lower() or "tab"


def _click_tab(page: Any, tab: str) -> None:
    """Click the UI tab labelled ``tab``: V2 marks tabs ``role=tab``; V1 lists them (``li.p-tab``) in a
    ``role=tablist``."""
    pattern = re.compile(rf"^\s*{re.escape(tab)}\s*$", re.IGNORECASE)
    for locator in (
        page.get_by_role("tab", name=pattern),
        page.locator('[role="tablist"] > *').filter(has_text=pattern),
    ):
        if locator.count():
            locator.first.click()
            return
    raise ServiceError(f"no tab {tab!r} on {page.url}")


def flow_run_page_text(
    api_url: str,
    flow_run_id: Any,
    screenshot_dir: str | os.PathLike[str],
    tabs: Sequence[str] = ("Logs", "Artifacts"),
    *,
    expect: Mapping[str, str] | None = None,
    ui: str = "v1",
    page: Any = None,
    timeout: float = 60.0,
) -> dict[str, str]:
    """Open a flow run's page in the Prefect UI, click through ``tabs`` and return each tab's visible text.

    Opens ``http://H:P/runs/flow-run/<id>`` (``ui="v1"``: the address Prefect prints and the README gives;
    Prefect 3.9 serves the V1 UI there) or ``http://H:P/v2/runs/flow-run/<id>`` (``ui="v2"``, the new UI
    that ``/`` redirects to) in headless Chromium (:func:`chromium_page`, unless ``page`` is given), waits
    until the page shows its tab list, then for each tab: clicks it, waits for the page to settle (and, when
    ``expect`` names the tab, until that text is visible), and saves a full-page screenshot
    ``screenshot_dir/flow-run-<id8>-<ui>-<tab>.png``.

    Args:
        api_url: The Prefect API of the server (its UI is on the same host and port).
        flow_run_id: The flow run's id.
        screenshot_dir: Folder for the screenshots (created if missing).
        tabs: Names of the tabs to click, in order, as the UI labels them.
        expect: Per tab, a text to wait for (up to ``timeout``) before reading the tab.
        ui: ``"v1"`` or ``"v2"``.
        page: A Playwright page to use instead of starting Chromium.
        timeout: Seconds to wait for the page and for each expected text.

    Returns:
        ``{tab: visible text of the page with that tab open}`` for each of ``tabs``.

    Raises:
        ServiceError: Chromium or Playwright is missing, or a tab is not on the page.
    """
    if ui not in ("v1", "v2"):
        raise ValueError(f"ui must be 'v1' or 'v2', not {ui!r}")
    if page is None:
        with chromium_page() as own_page:
            return flow_run_page_text(
                api_url, flow_run_id, screenshot_dir, tabs, expect=expect, ui=ui, page=own_page, timeout=timeout
            )
    folder = Path(screenshot_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"flow-run-{str(flow_run_id)[:8]}-{ui}"
    prefix = "" if ui == "v1" else "/v2"
    page.goto(ui_url(api_url, f"{prefix}/runs/flow-run/{flow_run_id}"), timeout=timeout * 1000)
    page.locator('[role="tablist"]').first.wait_for(timeout=timeout * 1000)
    texts: dict[str, str] = {}
    for tab in tabs:
        _click_tab(page, tab)
        with contextlib.suppress(Exception):  # the UI polls a running flow run: the network may never idle
            page.wait_for_load_state("networkidle", timeout=5_000)
        wanted = (expect or {}).get(tab)
        if wanted:
            page.get_by_text(wanted).first.wait_for(state="visible", timeout=timeout * 1000)
        else:
            page.wait_for_timeout(500)
        texts[tab] = page.inner_text("body")
        page.screenshot(path=str(folder / f"{stem}-{_tab_name(tab)}.png"), full_page=True)
    return texts


def open_artifact(page: Any, api_url: str, flow_run_id: Any, key: str, shots: Path, expect: str) -> str:
    """Open the flow run's Artifacts tab, click the card of artifact ``key``, wait for ``expect`` on the
    artifact's page; save a full-page screenshot ``artifact-<key>.png``; return the page's text."""
    flow_run_page_text(
        api_url, flow_run_id, shots, tabs=("Artifacts",), page=page, expect={"Artifacts": key}
    )  # fmt: skip
    page.locator('a[href*="/artifacts/artifact/"]').filter(has_text=key).first.click()
    page.get_by_text(expect).first.wait_for(state="visible")
    page.screenshot(path=str(shots / f"artifact-{key}.png"), full_page=True)
    return page.inner_text("body")
