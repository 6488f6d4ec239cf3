"""Particle swarm optimisation over LoRA adapters (docs/method.md §5).

Public API: :class:`PSOConfig`, :class:`SwarmState`, :func:`init_swarm`, :func:`continue_swarm`, :func:`update_swarm`,
:func:`save_swarm_state`, :func:`load_swarm_state`.
"""

from .config import PSOConfig
from .state import (
    SwarmState,
    continue_swarm,
    init_swarm,
    load_swarm_state,
    save_swarm_state,
    validate_positions,
)
from .update import UpdateReport, draw_weights, record_utilities, update_swarm

__all__ = [
    "PSOConfig",
    "SwarmState",
    "UpdateReport",
    "continue_swarm",
    "draw_weights",
    "init_swarm",
    "load_swarm_state",
    "record_utilities",
    "save_swarm_state",
    "update_swarm",
    "validate_positions",
]
