"""Thin Prefect tasks over ``dataswarms_core``: each calls one core stage and passes URLs, keys and small
reports — never tensors or models."""

from .export import export_results
from .pso import complete_iteration, init_swarms, update_swarm
from .scoring import score_items, score_reference
from .setup import prepare_run
from .sft import train_seed_generators, train_test_takers
from .synthesis import synthesize_items

__all__ = [
    "complete_iteration",
    "export_results",
    "init_swarms",
    "prepare_run",
    "score_items",
    "score_reference",
    "synthesize_items",
    "train_seed_generators",
    "train_test_takers",
    "update_swarm",
]
