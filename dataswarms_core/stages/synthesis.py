"""Synthesis stage: generators (particles of a swarm state) write evaluation items (docs/method.md §2)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..baselines import SEARCHES
from ..config import RunConfig
from ..copies import CopyDetector
from ..data import Task
from ..objectives import goal as objective_goal
from ..pso import load_swarm_state
from ..records import RunInfo, SynthesisReport
from ..seeding import GENERATOR_SWARM
from ..stop import check_stop
from ..storage import Store
from ..synthesis import Sample, sample_items
from .components import load_local
from .layout import iter_key, swarm_key
from .setup import load_run_task


def sample_generators(
    config: RunConfig,
    info: RunInfo,
    task: Task,
    generators: Mapping[str, tuple[dict[str, Any], dict[str, Any]]],
    *,
    calls: int,
    iteration: int,
    stage: str,
) -> Sample:
    """The one way a search samples items from generators, used by the search and by the export: load the
    base model once with every generator (name → (adapter_config, tensors)) attached and let each make
    ``calls`` calls with the run's generation settings (a strategy that states the objective, ``prompted``, adds
    its goal to every prompt). Copies of shown, dev or test items or of earlier items
    are left out of ``items`` and listed in ``Sample.copies`` when ``config.copies.enabled``
    (docs/method.md §2, "Copies").

    Args:
        stage: labels the random streams: ``synthesis`` in the search, ``export`` for the exported set.
    """
    dev = task.dev["input"].tolist()
    copies = None
    if config.copies.enabled:  # the test split may be empty (its "input" column is always there)
        copies = CopyDetector.from_config(config.copies, dev, task.test["input"].tolist())
    local = load_local(config, info, generators)
    g = config.generation
    goal = None
    if SEARCHES.get(config.search).impl.states_goal:  # the prompted baseline: the objective in the prompt
        goal = objective_goal(config.scoring.objective, config.scoring.composite_weights)
    return sample_items(
        local.backend, dev, task.domain, list(generators), items_shown=g.items_shown,
        items_written=g.items_written, calls=calls, max_new_tokens=g.max_new_tokens, temperature=g.temperature,
        top_p=g.top_p, batch_size=g.batch_size, run_seed=config.stream_seed, iteration=iteration, stage=stage,
        copies=copies, goal=goal,
    )  # fmt: skip


def synthesize(
    config: RunConfig, info: RunInfo, run: Store, iteration: int, swarm: str = GENERATOR_SWARM
) -> SynthesisReport:
    """Every generator (particle) of checkpoint ``swarms/<swarm>/iter_k`` writes items; writes
    ``replies.jsonl``, ``items.jsonl``, ``copies.jsonl`` (the items left out as copies) and ``synthesis.json``.

    Returns:
        The :class:`~dataswarms_core.records.SynthesisReport` (counts per generator, parse failures, seconds).
    """
    check_stop()  # a stop requested while a library swallowed the interrupt ends the run here
    t0 = time.perf_counter()
    task = load_run_task(config, info)
    state = load_swarm_state(run, swarm_key(swarm, iteration))
    lora = state.metadata["lora_config"]
    generators = {n: (lora, x) for n, x in zip(state.names, state.positions, strict=True)}
    sample = sample_generators(
        config, info, task, generators, calls=config.generation.calls_per_generator, iteration=iteration,
        stage="synthesis",
    )  # fmt: skip
    run.write_jsonl(iter_key(iteration, "replies.jsonl"), [r.model_dump() for r in sample.replies])
    run.write_jsonl(iter_key(iteration, "items.jsonl"), [r.model_dump() for r in sample.items])
    run.write_jsonl(iter_key(iteration, "copies.jsonl"), [r.model_dump() for r in sample.copies])
    counts = sample.counts
    report = SynthesisReport(
        iteration=iteration,
        counts=counts,
        items=len(sample.items),
        parse_failures=sum(c.parse_failures for c in counts.values()),
        seconds=round(time.perf_counter() - t0, 3),
    )
    report.write(run, iter_key(iteration, "synthesis.json"))
    return report
