"""Swarm stage: the initial swarms from trained adapters, and one particle swarm update per iteration
(docs/method.md §5). Every swarm is named; its checkpoints live in ``swarms/<name>/iter_NNNN``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict

from ..adapters import check_same_lora_config
from ..config import RunConfig
from ..pso import PSOConfig, init_swarm, load_swarm_state, save_swarm_state, update_swarm
from ..records import (
    AdapterManifest,
    CheckpointPointer,
    PoolScoringReport,
    ScoringReport,
    SwarmStepReport,
)
from ..seeding import TEST_TAKER_SWARM
from ..stop import check_stop
from ..storage import Store
from .components import read_adapter_url
from .layout import read_checkpoint_pointer, swarm_iter_key, swarm_key, write_checkpoint_pointer


def swarm_pso(config: RunConfig, swarm: str) -> PSOConfig:
    """The PSO settings of ``swarm``: ``adversarial.pso`` for the test-taker swarm, else ``pso``."""
    return config.adversarial.pso if swarm == TEST_TAKER_SWARM else config.pso


def init_swarms(
    config: RunConfig,
    run: Store,
    manifests: Mapping[str, AdapterManifest],
    before_pointer: Callable[[], object] | None = None,
) -> CheckpointPointer:
    """Build each named swarm from its trained adapters (swarm name → manifest), write checkpoints
    ``swarms/<name>/iter_0000``, call ``before_pointer`` (Adversarial Swarms: it writes the initial pool) and
    then write the checkpoint pointer — or, when the run already has a pointer (a resumed run), return it
    unchanged.

    Raises:
        InvalidParticleError: a swarm's adapters disagree in LoRA configuration or tensors.
        FormatError: the run's pointer was written by another format version.
    """
    check_stop()  # a stop requested while a library swallowed the interrupt ends the run here
    pointer = read_checkpoint_pointer(run)
    if pointer is not None:
        return pointer
    options = config.storage.fsspec_options()
    for swarm, manifest in manifests.items():
        names, configs, positions = [], {}, []
        for name, entry in manifest.adapters.items():
            cfg, tensors = read_adapter_url(entry.url, options)
            if isinstance(cfg.get("target_modules"), list):
                cfg = {**cfg, "target_modules": sorted(cfg["target_modules"])}  # order carries no meaning
            names.append(name)
            configs[name] = cfg
            positions.append(tensors)
        check_same_lora_config(configs)
        state = init_swarm(
            positions, swarm_pso(config, swarm), config.seed, names=names, metadata={"lora_config": configs[names[0]]},
            swarm=swarm,
        )  # fmt: skip
        save_swarm_state(state, run, swarm_key(swarm, 0))
    if before_pointer is not None:
        before_pointer()
    return write_checkpoint_pointer(run, 0, list(manifests), None, pool=before_pointer is not None)


def pso_step(config: RunConfig, run: Store, iteration: int, swarm: str) -> SwarmStepReport:
    """Record iteration k's utilities of ``swarm`` (its ``scoring.json``), move the swarm and write its
    checkpoint ``swarms/<swarm>/iter_{k+1}`` (docs/method.md §5); writes ``<swarm>/pso.json``.

    The checkpoint pointer is not written here: the flow writes it once every swarm of the run has moved
    (:func:`~dataswarms_core.stages.layout.write_checkpoint_pointer`).

    Returns:
        The :class:`~dataswarms_core.records.SwarmStepReport`.

    Raises:
        InvalidUtilityError / InvalidParticleError: from the update (nothing is written).
    """
    check_stop()  # a stop requested while a library swallowed the interrupt ends the run here
    t0 = time.perf_counter()
    state = load_swarm_state(run, swarm_key(swarm, iteration))
    report_type = PoolScoringReport if swarm == TEST_TAKER_SWARM else ScoringReport
    utilities = report_type.read(run, swarm_iter_key(iteration, swarm, "scoring.json")).utilities
    update = asdict(update_swarm(state, utilities, swarm_pso(config, swarm)))
    url = save_swarm_state(state, run, swarm_key(swarm, iteration + 1))
    report = SwarmStepReport(
        swarm=swarm,
        **update,
        global_best_utility=state.global_best_utility,
        global_best_particle=state.names[state.global_best_particle],
        global_worst_utility=state.global_worst_utility,
        personal_best_utility=state.personal_best_utility,
        next_step_length=state.step_length,
        checkpoint=url,
        seconds=round(time.perf_counter() - t0, 3),
    )
    report.write(run, swarm_iter_key(iteration, swarm, "pso.json"))
    return report
