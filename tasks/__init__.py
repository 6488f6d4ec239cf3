"""Thin Prefect tasks over ``dataswarms_core``: each calls one core stage and passes URLs, keys and small
reports — never tensors or models."""

from .adversarial import score_test_takers, track_held_out, update_pool
from .evaluate import evaluate_one, leaderboard
from .export import export_results
from .package import package_run
from .pso import complete_iteration, init_swarms, update_swarm
from .scoring import score_items, score_reference
from .setup import prepare_run
from .sft import train_seed_generators, train_test_takers
from .synthesis import synthesize_items

__all__ = [
    "complete_iteration",
    "evaluate_one",
    "export_results",
    "init_swarms",
    "leaderboard",
    "package_run",
    "prepare_run",
    "score_items",
    "score_reference",
    "score_test_takers",
    "synthesize_items",
    "train_seed_generators",
    "track_held_out",
    "train_test_takers",
    "update_pool",
    "update_swarm",
]
