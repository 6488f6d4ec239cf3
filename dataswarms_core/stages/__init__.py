"""The stages of a search, one module per stage (mirroring the Prefect tasks in ``dataswarms.tasks``). Each
stage is a function of (config, run info, store contents) that reads and writes the run's store and returns
a small typed record (:mod:`dataswarms_core.records`): stages pass URLs, names and reports, never tensors.

- :mod:`.layout`: where a run keeps its files; the checkpoint pointer and progress record.
- :mod:`.setup`: preflight checks, starting a run folder, checks before a resume.
- :mod:`.sft`: training the seed generators and the LoRA test takers (cached).
- :mod:`.components`: building the local backend, test takers, judges and corpus from the configuration.
- :mod:`.pso`: the initial swarms and one swarm update per iteration.
- :mod:`.synthesis`: generators write items.
- :mod:`.scoring`: test takers answer, the judge scores, objectives give utilities.
- :mod:`.export`: the global best, its data set, metrics, report and ``summary.json``.
"""

from .export import export_run
from .layout import (
    completed_iterations,
    default_run_name,
    read_checkpoint_pointer,
    run_store,
    write_checkpoint_pointer,
    write_progress,
)
from .pso import init_swarms, pso_step
from .scoring import score, score_reference
from .setup import config_differences, load_run_task, preflight, prepare_run
from .sft import adapters_cache_key, train_seed_generators, train_test_takers
from .synthesis import sample_generators, synthesize

__all__ = [
    "adapters_cache_key",
    "completed_iterations",
    "config_differences",
    "default_run_name",
    "export_run",
    "init_swarms",
    "load_run_task",
    "preflight",
    "prepare_run",
    "pso_step",
    "read_checkpoint_pointer",
    "run_store",
    "sample_generators",
    "score",
    "score_reference",
    "synthesize",
    "train_seed_generators",
    "train_test_takers",
    "write_checkpoint_pointer",
    "write_progress",
]
