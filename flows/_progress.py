"""A search's progress: written by the flow at each stage, shown by the command line and by the Prefect UI.

The flow (through :class:`RunProgress`) writes ``progress.json`` at each stage
(``dataswarms_core.stages.write_progress``) and updates a Prefect progress artifact, which the UI shows on the
flow-run page (Artifacts tab, and the artifact's own page) with the stage as its description. The command's
display is a rich progress bar: a daemon thread reads ``progress.json`` once a second, prints one timestamped
line per new stage and advances the bar. Reading a file, rather than hooking into Prefect, works the same for
local and remote (s3://) runs. Both show the same position: :func:`describe`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dataswarms_core.records import Progress as ProgressRecord
from dataswarms_core.stages.layout import PROGRESS

if TYPE_CHECKING:
    from dataswarms_core.config import RunConfig

POLL_SECONDS = 1.0

STAGE_TEXT = {
    "seed-generators": "training seed generators (LoRA SFT)",
    "test-takers": "training test takers (LoRA SFT)",
    "reference": "test takers answer real dev items (novelty reference)",
    "synthesis": "iteration {k}: generators write items",
    "scoring": "iteration {k}: test takers answer, judge scores",
    "pso": "iteration {k}: swarm update",
    "moved-synthesis": "iteration {k}: the moved generators write items",
    "pool": "iteration {k}: generated items replace pool entries",
    "test-taker-scoring": "iteration {k}: test takers answer the pool, judge scores",
    "held-out": "iteration {k}: best test taker on held-out test items",
    "test-taker-pso": "iteration {k}: test-taker swarm update",
    "export": "exporting the global best, its data set, metrics",
    "done": "done",
}
_SETUP = ["seed-generators", "test-takers", "reference"]
_LOOP = ["synthesis", "scoring", "pso"]
_ADVERSARIAL = ["moved-synthesis", "pool", "test-taker-scoring", "held-out", "test-taker-pso"]  # within the "pso" step


def total_steps(total_iterations: int) -> int:
    """Steps of the bar: two SFT stages, three per iteration, and the export.

    Args:
        total_iterations: ``pso.max_iterations``.

    Returns:
        The bar's total.
    """
    return 2 + 3 * total_iterations + 1


def describe(state: ProgressRecord, total: int) -> tuple[int, str]:
    """Turn one ``progress.json`` into the bar's position and a line of text.

    Args:
        state: the run's progress record (stage, iteration or None, detail, utilities).
        total: :func:`total_steps` of the run.

    Returns:
        ``(steps completed, text)``; unknown stages are shown by name.
    """
    stage, k = state.stage, state.iteration or 0
    if stage in _SETUP:
        done = min(_SETUP.index(stage), 2)
    elif stage in _LOOP:
        done = 2 + 3 * k + _LOOP.index(stage)
    elif stage in _ADVERSARIAL:
        done = 2 + 3 * k + 2
    else:
        done = total - 1 if stage == "export" else total
    text = STAGE_TEXT.get(stage, stage).format(k=k)
    if state.detail:
        text += f": {state.detail}"
    if stage == "pso" and state.utilities:
        text += f" (utilities {', '.join(f'{u:.3f}' for u in state.utilities)})"
    return done, text


def percent(stage: str, iteration: int | None, total_iterations: int) -> tuple[float, str]:
    """Where a stage puts the run, in percent of :func:`total_steps`, with the bar's text.

    Args:
        stage: a stage of :data:`STAGE_TEXT`.
        iteration: the iteration in progress, or None.
        total_iterations: the run's ``max_iterations``.

    Returns:
        ``(percent in [0, 100], text)``; ``"done"`` is 100.
    """
    total = total_steps(total_iterations)
    done, text = describe(ProgressRecord(stage=stage, iteration=iteration), total)
    return 100.0 * min(done, total) / total, text


class RunProgress:
    """The flow's progress writer: ``progress.json`` for the command line and a Prefect progress artifact
    (key ``<run name>-progress``) for the UI, created at 0 % on construction (in the flow run) and updated at
    every stage and iteration; it reaches 100 % at ``done``.

    Args:
        config: the run's configuration (``run_name`` set).
    """

    def __init__(self, config: RunConfig) -> None:  # imports here: the module is also the command's display
        from prefect.artifacts import create_progress_artifact

        from dataswarms.tasks.package import artifact_key

        self.config = config
        self.artifact_id = create_progress_artifact(
            0.0,
            key=f"{artifact_key(config.run_name)}-progress",
            description=f"Progress of {config.run_name}: preparing (base model, task data)",
        )

    def __call__(
        self, stage: str, iteration: int | None = None, *, utilities: list[float] | None = None
    ) -> None:
        """Record that ``stage`` of ``iteration`` starts: write ``progress.json``, update the artifact.

        Args:
            stage: a stage of :data:`STAGE_TEXT`.
            iteration: the iteration, or None for the stages before and after the iterations.
            utilities: the iteration's utilities, shown in the bar's text at the "pso" stages.
        """
        from prefect.artifacts import update_progress_artifact

        from dataswarms_core import stages

        stages.write_progress(self.config, stage, iteration, utilities=utilities)
        value, text = percent(stage, iteration, self.config.max_iterations)
        update_progress_artifact(
            self.artifact_id, value, description=f"Progress of {self.config.run_name}: {text}"
        )


def watch_progress(store: Any, total_iterations: int, stop: threading.Event, progress: Progress) -> None:
    """Poll ``progress.json`` until ``stop`` is set: advance the bar and print a line per new stage.

    Args:
        store: The run's ``dataswarms_core.storage.Store``.
        total_iterations: ``pso.max_iterations``.
        stop: Set by the caller to end the loop.
        progress: The rich progress display to update.
    """
    total = total_steps(total_iterations)
    bar = progress.add_task("preparing (base model, task data)", total=total)
    last = None
    while not stop.wait(POLL_SECONDS):
        try:
            state = ProgressRecord.read(store, PROGRESS)
        except Exception:  # noqa: BLE001 - not written yet
            continue
        key = (state.stage, state.iteration or 0, state.detail)
        if key == last:
            continue
        last = key
        done, text = describe(state, total)
        progress.console.print(f"{time.strftime('%H:%M:%S')} {text}")
        progress.update(bar, completed=done, description=text)


@contextlib.contextmanager
def progress_display(console: Console, store: Any, total_iterations: int) -> Iterator[Progress]:
    """Show the progress bar and run :func:`watch_progress` in a daemon thread for the ``with`` block.

    On leaving the block (also by an exception) the thread is stopped and the bar removed, so what the
    caller prints afterwards are the last lines.

    Args:
        console: Where to draw.
        store: The run's ``dataswarms_core.storage.Store``.
        total_iterations: ``pso.max_iterations``.

    Returns:
        A context manager yielding the rich ``Progress``.
    """
    stop = threading.Event()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        watcher = threading.Thread(
            target=watch_progress, args=(store, total_iterations, stop, progress), daemon=True
        )
        watcher.start()
        try:
            yield progress
        finally:
            stop.set()
            watcher.join(timeout=5)
