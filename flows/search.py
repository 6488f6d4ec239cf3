"""The Data Swarms search as one Prefect flow:
prepare → seed-generator SFT → test-taker SFT → swarm init → (synthesis → scoring → PSO step)* → export.

In adversarial mode (docs/method.md §6) the test takers are a second swarm:
swarm init + pool → synthesis 0 → (score generators → move them → the moved generators write items → pool
update → score test takers on the pool → held-out score of the best → move the test takers)* → export.

What the Prefect UI shows of a run: task runs named by stage, iteration and swarm (``synthesis-iter0002``,
``scoring-iter0002-generators``, ``pso-iter0002-generators``, ``checkpoint-iter0003``), one INFO log line per
stage from its task and one per iteration from the flow (utilities, parse and judge failures, seconds), a
progress artifact updated at every stage (:class:`dataswarms.flows._progress.RunProgress`), and the export's
metrics table and report with its plot inlined (``dataswarms.tasks.export``).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.filesystems import RemoteFileSystem
from prefect.runtime import flow_run

from dataswarms.tasks import (
    complete_iteration,
    export_results,
    init_swarms,
    prepare_run,
    score_items,
    score_reference,
    score_test_takers,
    synthesize_items,
    track_held_out,
    train_seed_generators,
    train_test_takers,
    update_pool,
    update_swarm,
)
from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.objectives import objective_needs
from dataswarms_core.records import AdapterManifest, RunInfo, RunSummary
from dataswarms_core.seeding import GENERATOR_SWARM, TEST_TAKER_SWARM
from dataswarms_core.stages.sft import SEED_GENERATORS, TEST_TAKERS
from dataswarms_core.storage import is_local, join

from ._progress import RunProgress


def _flow_run_name() -> str:
    config = flow_run.parameters.get("config")
    name = config.get("run_name") if isinstance(config, dict) else getattr(config, "run_name", None)
    return f"search-{name}" if name else "search"


def result_storage(config: RunConfig) -> Any:
    """Where Prefect persists cached task results (small manifests, not adapters), on the run's own
    storage so cached tasks survive a new process: ``<storage.root>/_cache/prefect-results``.

    Local roots give a path. Remote roots give a saved ``RemoteFileSystem`` block holding only the
    endpoint and region (credentials stay in the environment, never in Prefect).
    """
    url = join(config.storage.root, "_cache", "prefect-results")
    if is_local(url):
        return Path(url.removeprefix("file://")).expanduser().absolute()
    settings = config.storage.public_options()
    name = "dataswarms-results-" + hashlib.sha256(f"{url}|{settings}".encode()).hexdigest()[:12]
    block = RemoteFileSystem(basepath=url, settings=settings)
    block.save(name, overwrite=True)
    return block


def _adapters(task_fn: Any, config: RunConfig, info: RunInfo, kind: str) -> AdapterManifest:
    """Run an SFT task through Prefect's cache; retrain when the cached adapters were deleted."""
    key = stages.adapters_cache_key(config, info, kind)
    dest = stages.layout.cache_store(config, kind, key)
    complete = dest.exists("manifest.json")
    return task_fn.with_options(result_storage=result_storage(config), refresh_cache=not complete)(
        config, info, key, dest.root
    )


# log_prints=False: the flow logs through its run logger; redirected prints would also swallow what libraries
# print for themselves (dill disassembles functions for datasets' hashing through print and reads it back).
@flow(name="data-swarms-search", flow_run_name=_flow_run_name, log_prints=False)
def data_swarms_search(config: RunConfig, resume: bool = False, force: bool = False) -> RunSummary:
    """Run a whole Data Swarms search (docs/method.md §1–5, §7) and return its summary (also in ``summary.json``).

    Every iteration ends with a complete checkpoint; a resumed run continues from the newest one and, since
    every random draw derives from (seed, stage, iteration, particle), produces what an uninterrupted run
    would have produced.

    Args:
        config: the run configuration; a missing ``run_name`` becomes ``<task>-<objective>-<flow run id>``.
        resume: continue the run of this name from its newest complete checkpoint (a new run when there is
            none). A Prefect retry of this flow run resumes the folder it created, whatever ``resume`` says.
        force: resume even when the configuration or task file differ from the checkpointed run.
    """
    started = time.time()
    flow_run_id = str(flow_run.id) if flow_run.id else None
    if not config.run_name:
        config = config.model_copy(update={"run_name": stages.default_run_name(config, flow_run_id)})
    progress = RunProgress(config)
    info = prepare_run(config, resume, force, flow_run_id)
    progress("seed-generators")
    seeds = _adapters(train_seed_generators, config, info, SEED_GENERATORS)
    progress("test-takers")
    takers = _adapters(train_test_takers, config, info, TEST_TAKERS)
    if "reference_scores" in objective_needs(config.scoring.components):
        progress("reference")
        score_reference(config, info, takers)
    if config.mode == "adversarial":
        _adversarial_iterations(config, info, seeds, takers, progress)
    else:
        _iterations(config, info, seeds, takers, progress)
    progress("export")
    summary = export_results(config, info, started)
    progress("done", summary.iterations_completed - 1)
    get_run_logger().info(
        f"done: {summary.iterations_completed} iterations, global best {summary.global_best_utility:.4f} "
        f"from {summary.global_best_particle}; {time.time() - started:.0f} s"
    )
    return summary


def _utilities(names: list[str], utilities: list[float], missing: list[str]) -> str:
    return ", ".join(
        f"{n} {'—' if n in missing else f'{u:.4f}'}" for n, u in zip(names, utilities, strict=True)
    )


def _iterations(
    config: RunConfig, info: RunInfo, seeds: AdapterManifest, takers: AdapterManifest, progress: RunProgress
) -> None:
    """Data Swarms: the generator swarm searched against fixed test takers (docs/method.md §2–5)."""
    logger = get_run_logger()
    pointer = init_swarms(config, info, {GENERATOR_SWARM: seeds})
    k, stopped = pointer.iteration, pointer.stopped
    if k:
        logger.info(f"resuming {config.run_name} at iteration {k} from {pointer.swarms[GENERATOR_SWARM]}")
    while not stopped and k < config.pso.max_iterations:
        progress("synthesis", k)
        synthesis = synthesize_items(config, info, k)
        progress("scoring", k)
        scores = score_items(config, info, k, takers)
        progress("pso", k, utilities=scores.utilities)
        step = update_swarm(config, info, k, GENERATOR_SWARM)
        stopped = step.stopped
        complete_iteration(config, k + 1, [GENERATOR_SWARM], stopped)  # last: iteration k is complete
        logger.info(
            f"iteration {k}: utilities {_utilities(scores.generators, scores.utilities, scores.missing_utilities)}; "
            f"global best {step.global_best_utility:.4f} ({step.global_best_particle}), "
            f"{'no move' if step.step_length is None else f'step length {step.step_length:.4f}'}; "
            f"{synthesis.items} items, parse failures {synthesis.parse_failures}, judge "
            f"failures {scores.judge_failures}; seconds: synthesis {synthesis.seconds:.1f}, scoring "
            f"{scores.seconds:.1f}, pso {step.seconds:.1f}"
        )
        k += 1


def _adversarial_iterations(
    config: RunConfig, info: RunInfo, seeds: AdapterManifest, takers: AdapterManifest, progress: RunProgress
) -> None:
    """Adversarial Swarms (docs/method.md §6): generators and test takers co-evolve; every iteration ends
    with one checkpoint pointer naming both swarms and the pool."""
    logger = get_run_logger()
    swarms = [GENERATOR_SWARM, TEST_TAKER_SWARM]
    pointer = init_swarms(config, info, {GENERATOR_SWARM: seeds, TEST_TAKER_SWARM: takers})
    k, stopped = pointer.iteration, pointer.stopped
    if k:
        logger.info(f"resuming {config.run_name} at iteration {k} from {pointer.swarms} and {pointer.pool}")
    elif not stopped:
        progress("synthesis", 0)
        synthesize_items(config, info, 0)  # later iterations' items come from the moved generators
    while not stopped and k < config.max_iterations:
        progress("scoring", k)
        scores = score_items(config, info, k, takers)
        progress("pso", k, utilities=scores.utilities)
        generators = update_swarm(config, info, k, GENERATOR_SWARM)
        progress("moved-synthesis", k)
        synthesis = synthesize_items(config, info, k + 1)
        progress("pool", k)
        pool = update_pool(config, info, k)
        progress("test-taker-scoring", k)
        pool_scores = score_test_takers(config, info, k)
        progress("held-out", k)
        held_out = track_held_out(config, info, k)
        progress("test-taker-pso", k, utilities=pool_scores.utilities)
        test_takers = update_swarm(config, info, k, TEST_TAKER_SWARM)
        stopped = generators.stopped or test_takers.stopped
        complete_iteration(config, k + 1, swarms, stopped)  # last: iteration k is complete
        score = "missing" if held_out.held_out_score is None else f"{held_out.held_out_score:.4f}"
        logger.info(
            f"iteration {k}: generator utilities "
            f"{_utilities(scores.generators, scores.utilities, scores.missing_utilities)}; test-taker pool scores "
            f"{_utilities(pool_scores.test_takers, pool_scores.utilities, [])}; pool {pool.generated_share:.0%} "
            f"generated; best test taker {held_out.test_taker}: pool {held_out.pool_score:.4f}, held-out {score}; "
            f"seconds: scoring {scores.seconds:.1f}, pso {generators.seconds:.1f}, synthesis "
            f"{synthesis.seconds:.1f}, test-taker scoring {pool_scores.seconds:.1f}, held-out "
            f"{held_out.seconds:.1f}, test-taker pso {test_takers.seconds:.1f}"
        )
        k += 1
