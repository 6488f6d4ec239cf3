"""Run the search flow for a command: progress display, Prefect API, and the outcome printed.

Imports Prefect and torch (through ``dataswarms.flows.search``), so the command line imports this module only
inside its commands, after :func:`dataswarms.flows._environment.quiet_environment`.
"""

from __future__ import annotations

import time

import typer
from rich.console import Console

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import Progress
from dataswarms_core.stages.layout import PROGRESS

from ._progress import progress_display
from ._report import print_failure, print_interrupted, print_run_header, print_summary
from ._server import ServerError, interrupt_exit_code, prefect_api
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

    Raises:
        typer.Exit: 130 after Ctrl-C, 143 after SIGTERM (the resume command is the last line printed), 1 if
            the flow run did not complete or the temporary Prefect server did not start.
    """
    started = time.time()
    store = stages.run_store(cfg)
    print_run_header(console, cfg, store.root, resume=resume)
    if store.exists(PROGRESS):  # a resumed run: do not show its last attempt's stage
        Progress(stage="resuming").write(store, PROGRESS)
    flow = (
        data_swarms_search.with_options(retries=retries, retry_delay_seconds=RETRY_DELAY_S)
        if retries
        else data_swarms_search
    )
    try:
        with progress_display(console, store, cfg.pso.max_iterations), prefect_api():
            state = flow(cfg, resume=resume, force=force, return_state=True)
    except KeyboardInterrupt as exc:  # printed after the progress bar is gone, so these are the last lines
        print_interrupted(console, store.root)
        raise typer.Exit(interrupt_exit_code(exc)) from None
    except ServerError as exc:
        console.print(f"error: {exc}", style="red")
        raise typer.Exit(1) from None
    if not state.is_completed():
        print_failure(console, state, store)
        raise typer.Exit(1)
    print_summary(console, state.result(), time.time() - started, state.state_details.flow_run_id)
