"""Where a run keeps its files, and the two small files every stage reads or writes: the checkpoint pointer and
the progress record.

Run layout under ``<storage.root>/<run_name>`` (format version 2; the schema of each JSON file is in
:mod:`dataswarms_core.records`)::

    config.yaml, run.json                          the configuration and what it resolved to
    checkpoint.json                                the newest complete checkpoint (written last each iteration)
    progress.json                                  the stage in progress
    reference_scores.json                          test takers' scores on real dev items (novelty only)
    swarms/<swarm>/iter_NNNN/                      swarm state ready for evaluation at iteration NNNN
    iterations/iter_NNNN/replies.jsonl             each generator call's raw reply, with parsed/missing counts
    iterations/iter_NNNN/items.jsonl               items written by each generator
    iterations/iter_NNNN/synthesis.json            counts (parse failures, duplicates) and timings
    iterations/iter_NNNN/answers.parquet           every test taker's answer and its judge score
    iterations/iter_NNNN/<swarm>/scoring.json      score matrix, utilities, judge failures, timings
    iterations/iter_NNNN/<swarm>/pso.json          what the swarm update did
    iterations/iter_NNNN/test_takers/answers.parquet, held_out.json
                                                   Adversarial Swarms: pool answers, the curve's point
    pools/iter_NNNN/pool.jsonl, pool.json          Adversarial Swarms: the pool ready at iteration NNNN
    export/...                                     see ``stages/export.py``
    summary.json

A swarm is named (``generators``; ``test_takers`` in Adversarial Swarms): its checkpoints, reports and
random streams carry the name. Trained seed generators and test takers live in
``<storage.root>/_cache/<kind>/<key>/`` where the key hashes everything they depend on, so another run with
the same data and settings reuses them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from ..config import RunConfig
from ..records import CheckpointPointer, Progress
from ..storage import Store, join

SWARMS_DIR = "swarms"
POOLS_DIR = "pools"
ITER_DIR = "iterations"
CHECKPOINT_POINTER = "checkpoint.json"
PROGRESS = "progress.json"
REFERENCE_SCORES = "reference_scores.json"
EXPORT_DIR = "export"
ADAPTER_ORIGIN = "dataswarms.json"  # beside an exported adapter: its AdapterOrigin


def swarm_key(swarm: str, iteration: int) -> str:
    """Key of swarm ``swarm``'s checkpoint ready for evaluation at ``iteration``."""
    return f"{SWARMS_DIR}/{swarm}/iter_{iteration:04d}"


def pool_key(iteration: int) -> str:
    """Key of the Adversarial Swarms pool folder ready at ``iteration`` (``pool.jsonl``, ``pool.json``)."""
    return f"{POOLS_DIR}/iter_{iteration:04d}"


def iter_key(iteration: int, name: str = "") -> str:
    """Key of a per-iteration artifact shared by the run (items, replies, answers)."""
    return f"{ITER_DIR}/iter_{iteration:04d}" + (f"/{name}" if name else "")


def swarm_iter_key(iteration: int, swarm: str, name: str) -> str:
    """Key of a per-iteration artifact of one swarm (``scoring.json``, ``pso.json``)."""
    return iter_key(iteration, f"{swarm}/{name}")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def task_stem(config: RunConfig) -> str:
    """The task's part of a run name: the task file's name (or built-in name) without its extension, reduced
    to letters, digits and ``-`` (at most 60 characters; ``task`` when nothing is left)."""
    stem = config.task.source.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:60] or "task"


def default_run_name(config: RunConfig, flow_run_id: str | None = None, stamp: str | None = None) -> str:
    """``<task>-<objective>-<UTC yyyymmdd-HHMMSS>`` (adversarial mode: ``<task>-<pool>-...``, pool ``adversarial`` or ``static``), or
    ``<task>-<objective>-<flow run id prefix>`` inside a flow run (so every retry of that flow run finds the same run folder). The task part is the task file's
    name reduced to letters, digits and ``-`` (always a valid run name)."""
    task = task_stem(config)
    if stamp is None:  # a given stamp names runs made together (dataswarms run --pool both) alike
        stamp = flow_run_id.split("-")[0] if flow_run_id else datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    what = config.adversarial.pool if config.mode == "adversarial" else config.scoring.objective
    return f"{task}-{what}-{stamp}"[:128]


def run_store(config: RunConfig) -> Store:
    """The store of this run: ``<storage.root>/<run_name>``.

    Raises:
        ValueError: ``run_name`` is not set.
    """
    if not config.run_name:
        raise ValueError("run_name must be set before the run store is opened")
    return Store(join(config.storage.root, config.run_name), config.storage.fsspec_options())


def cache_store(config: RunConfig, *parts: str) -> Store:
    """The shared cache of trained adapters: ``<storage.root>/_cache/...``."""
    return Store(join(config.storage.root, "_cache", *parts), config.storage.fsspec_options())


def write_progress(
    config: RunConfig,
    stage: str,
    iteration: int | None = None,
    *,
    detail: str | None = None,
    utilities: list[float] | None = None,
) -> None:
    """Write ``progress.json`` at the run root: the stage in progress (read by the CLI's progress display)."""
    Progress(
        stage=stage, iteration=iteration, max_iterations=config.max_iterations, detail=detail,
        utilities=utilities,
    ).write(run_store(config), PROGRESS)  # fmt: skip


def write_checkpoint_pointer(
    run: Store, iteration: int, swarms: list[str], stopped: str | None, pool: bool = False
) -> CheckpointPointer:
    """Point at the newest complete checkpoint of every swarm (and, with ``pool``, the Adversarial Swarms
    pool of ``iteration``). Written last, after the checkpoints and the iteration's artifacts, so a reader (a
    resumed run) never follows it to a half-written checkpoint."""
    pointer = CheckpointPointer(
        iteration=iteration,
        swarms={s: swarm_key(s, iteration) for s in swarms},
        stopped=stopped,
        written=now(),
        pool=pool_key(iteration) if pool else None,
    )
    pointer.write(run, CHECKPOINT_POINTER)
    return pointer


def read_checkpoint_pointer(run: Store) -> CheckpointPointer | None:
    """The newest complete checkpoint, or None before the first.

    Raises:
        FormatError: the pointer was written by another format version (e.g. a one-swarm run of 0.1).
    """
    return CheckpointPointer.read(run, CHECKPOINT_POINTER) if run.exists(CHECKPOINT_POINTER) else None


def completed_iterations(run: Store) -> int:
    """Number of completed iterations: the newest complete checkpoint's iteration (0 before the first)."""
    pointer = read_checkpoint_pointer(run)
    return 0 if pointer is None else pointer.iteration
