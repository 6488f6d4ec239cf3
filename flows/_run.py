"""Run the search flow for a command: progress display, Prefect API, and the outcome printed.

Imports Prefect and torch (through ``dataswarms.flows.search``), so the command line imports this module only
inside its commands, after :func:`dataswarms.flows._environment.quiet_environment`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

import typer
from rich.console import Console

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.errors import DataSwarmsError
from dataswarms_core.records import Progress
from dataswarms_core.stages.layout import PROGRESS
from dataswarms_core.stop import at_forced_exit, exit_code, reclaim_signals, stop_requested, stop_signals

from ._progress import progress_display
from ._report import print_failure, print_interrupted, print_run_header, print_summary, resume_command
from ._server import ServerError, prefect_api
from .search import data_swarms_search

RETRY_DELAY_S = 10


def execute(cfg: RunConfig, *, resume: bool, force: bool, retries: int, console: Console) -> None:
    """Run the search flow for ``cfg`` with a progress display; print the outcome, or how to resume.

    Args:
        cfg: The run's configuration (``run_name`` set, preflight passed).
        resume: Continue the run from its newest checkpoint.
        force: Resume even if the configuration or task file changed.
        retries: Flow-run retries (each resumes from the newest checkpoint).
        console: Where to print.

    Stops (:mod:`dataswarms_core.stop`): the first SIGINT/SIGTERM/SIGHUP interrupts the flow run, which is
    marked as crashed; if a library swallows that interrupt, the next stop check raises it again, and a run
    that failed while a stop was pending counts as interrupted. A second signal exits at once (temporary
    server killed, the resume command still printed last).

    Raises:
        typer.Exit: 130 after Ctrl-C, 143 after SIGTERM, 129 after SIGHUP (the resume command is the last line
            printed), 1 if the flow run did not complete or the temporary Prefect server did not start.
    """
    started = time.time()
    store = stages.run_store(cfg)
    print_run_header(console, cfg, store.root, resume=resume)
    if store.exists(PROGRESS):  # a resumed run: do not show its last attempt's stage
        Progress(stage="resuming").write(store, PROGRESS)
    # Prefect's engine swaps in its own SIGTERM handler for the flow run; the hook puts the stop handler back.
    options: dict[str, Any] = {"on_running": [*data_swarms_search.on_running_hooks, _reclaim_stop_signals]}
    if retries:
        options.update(retries=retries, retry_delay_seconds=RETRY_DELAY_S)
    flow = data_swarms_search.with_options(**options)
    with stop_signals(), at_forced_exit(lambda signum: _print_forced_exit(store.root)):
        try:
            with progress_display(console, store, cfg.max_iterations), prefect_api():
                state = flow(cfg, resume=resume, force=force, return_state=True)
        except KeyboardInterrupt as exc:  # printed after the progress bar is gone: the last lines
            _print_interrupted(console, store.root)
            raise typer.Exit(exit_code(exc)) from None
        except ServerError as exc:
            console.print(f"error: {exc}", style="red")
            raise typer.Exit(1) from None
        if not state.is_completed() and stop_requested():  # a library turned the interrupt into an error
            _print_interrupted(console, store.root)
            raise typer.Exit(exit_code())
    if not state.is_completed():
        print_failure(console, state, store)
        raise typer.Exit(1)
    print_summary(console, state.result(), time.time() - started, state.state_details.flow_run_id)


def _reclaim_stop_signals(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow ``on_running`` hook: SIGTERM records the stop (:func:`dataswarms_core.stop.reclaim_signals`)."""
    reclaim_signals()


def _print_interrupted(console: Console, store_root: str) -> None:
    with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
        print_interrupted(console, store_root)


def _print_forced_exit(store_root: str) -> None:
    """The last lines before ``os._exit`` on a second signal: written straight to stdout, which the
    interrupted code may have been writing to (a signal handler must not re-enter its buffer)."""
    show_cursor = "\x1b[?25h" if os.isatty(1) else ""  # the progress bar may have hidden it
    text = (
        f"{show_cursor}\nstopped at once; every finished iteration is checkpointed in {store_root}\n"
        f"continue with: {resume_command(store_root)}\n"
    )
    for stream in (sys.stdout, sys.stderr):  # what is buffered comes first; a re-entered buffer refuses
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        os.write(1, text.encode(errors="replace"))


def run_flow(
    flow: Any, parameters: dict[str, Any], console: Console, *, what: str, again: str, retries: int = 0
) -> Any:
    """Run ``flow`` (a short flow: export, evaluate) with ``parameters`` under the Prefect API or a temporary
    server; return its result.

    Args:
        what: the flow's work in messages ("export", "evaluation").
        again: what to do after a stop (printed after "interrupted; ").

    Raises:
        typer.Exit: 1 when the flow run failed (its error printed in one line), 128 + signum when stopped.
    """
    if retries:
        flow = flow.with_options(retries=retries, retry_delay_seconds=RETRY_DELAY_S)
    with stop_signals():
        try:
            with prefect_api():
                state = flow(**parameters, return_state=True)
        except KeyboardInterrupt as exc:
            console.print(f"\ninterrupted; {again}")
            raise typer.Exit(exit_code(exc)) from None
        except ServerError as exc:
            console.print(f"error: {exc}", style="red")
            raise typer.Exit(1) from None
    if not state.is_completed() and stop_requested():  # a library turned the interrupt into an error
        console.print(f"\ninterrupted; {again}")
        raise typer.Exit(exit_code())
    if not state.is_completed():
        try:
            state.result()
        except DataSwarmsError as exc:
            console.print(f"error: {exc}", style="red")
        except Exception as exc:  # noqa: BLE001 - one line; details are in Prefect
            console.print(f"error: {type(exc).__name__}: {exc}", style="red")
        console.print(f"Flow run {state.state_details.flow_run_id} ({what}) did not complete")
        raise typer.Exit(1)
    return state.result()
