"""Swarm stage: the initial swarms from trained adapters, and one particle swarm update per iteration
(docs/method.md §5). Every swarm is named; its checkpoints live in ``swarms/<name>/iter_NNNN``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict

from ..adapters import check_same_lora_config
from ..baselines import SEARCHES, update_baseline
from ..config import RunConfig
from ..errors import ConfigError, InvalidParticleError
from ..pso import (
    PSOConfig,
    SwarmState,
    continue_swarm,
    init_swarm,
    load_swarm_state,
    save_swarm_state,
    update_swarm,
)
from ..records import (
    AdapterManifest,
    CheckpointPointer,
    PoolScoringReport,
    ScoringReport,
    SwarmStepReport,
)
from ..seeding import GENERATOR_SWARM, TEST_TAKER_SWARM
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
        if config.continue_from is not None and swarm == GENERATOR_SWARM:
            save_swarm_state(continued_swarm(config, swarm, manifest), run, swarm_key(swarm, 0))
            continue
        names, configs, positions = [], {}, []
        for name, entry in manifest.adapters.items():
            cfg, tensors = read_adapter_url(entry.url, options)
            if isinstance(cfg.get("target_modules"), list):
                cfg = {**cfg, "target_modules": sorted(cfg["target_modules"])}  # order carries no meaning
            names.append(name)
            configs[name] = cfg
            positions.append(tensors)
        check_same_lora_config(configs)
        if swarm == GENERATOR_SWARM:
            positions = SEARCHES.get(config.search).impl.initial(positions)  # e.g. base-model: LoRA B = 0
        state = init_swarm(
            positions, swarm_pso(config, swarm), config.stream_seed, names=names, metadata={"lora_config": configs[names[0]]},
            swarm=swarm,
        )  # fmt: skip
        save_swarm_state(state, run, swarm_key(swarm, 0))
    if before_pointer is not None:
        before_pointer()
    return write_checkpoint_pointer(run, 0, list(manifests), None, pool=before_pointer is not None)


def continued_swarm(config: RunConfig, swarm: str, manifest: AdapterManifest) -> SwarmState:
    """The initial ``swarm`` of a run that continues ``config.continue_from`` (a benchmark refresh): that run's
    newest checkpoint of the swarm, continued with :func:`~dataswarms_core.pso.continue_swarm` under this run's
    stream seed. ``manifest`` (this run's seed adapters) must match it in particle count and LoRA configuration.

    Raises:
        ConfigError: the previous run has no checkpoint of the swarm, or its particles or LoRA configuration
            differ from this run's seed generators (the message names the run folder and both values).
    """
    source = Store(config.continue_from, config.storage.options_for(config.continue_from))
    pointer = read_checkpoint_pointer(source)
    if pointer is None or swarm not in pointer.swarms:
        raise ConfigError(
            f"continue_from: {source.root} has no complete checkpoint of the {swarm} swarm (checkpoint.json); "
            "expected the folder of a run that completed at least its first checkpoint"
        )
    previous = load_swarm_state(source, pointer.swarms[swarm])
    if previous.n_particles != len(manifest.adapters):
        raise ConfigError(
            f"continue_from: {source.root} has {previous.n_particles} {swarm} particles, this run has "
            f"{len(manifest.adapters)} seed generators (seed_generators.n_generators); they must be equal"
        )
    first = next(iter(manifest.adapters))
    cfg, _ = read_adapter_url(manifest.adapters[first].url, config.storage.fsspec_options())
    try:  # the fields that matter for PSO arithmetic (not the base model's path on this machine)
        check_same_lora_config({f"{swarm} of {source.root}": previous.metadata.get("lora_config", {}), first: cfg})
    except InvalidParticleError as exc:
        raise ConfigError(f"continue_from: {exc}; a refresh must keep the adapters' shape (seed_generators.lora)") from None
    origin = {"run": source.root, "checkpoint": pointer.swarms[swarm], "iteration": pointer.iteration}
    return continue_swarm(previous, config.stream_seed, metadata={"continued_from": origin})


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
    strategy = SEARCHES.get(config.search).impl
    if swarm == GENERATOR_SWARM and not strategy.pso:  # a baseline (docs/method.md §9)
        # random search draws around the iteration-0 positions; a strategy that stays needs none of them
        seeds = load_swarm_state(run, swarm_key(swarm, 0)).positions if strategy.move is not None else []
        update = asdict(update_baseline(state, utilities, swarm_pso(config, swarm), config.search, seeds))
    else:
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
