"""Objectives: one utility per generator from the score matrix (DESIGN §4). Higher is better.

The score matrix ``m`` has shape (G generators, T test takers): m[g, t] is the mean judge score in [0, 1]
of test taker t on generator g's items.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def difficulty(m: np.ndarray) -> np.ndarray:
    """Difficulty: ``1 − max_t m[g, t]`` — hard even for the strongest test taker (DESIGN §4).

    Args:
        m: (G, T) mean scores in [0, 1].

    Returns:
        (G,) utilities in [0, 1].
    """
    m = np.asarray(m, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(f"score matrix must be (generators, test takers) with T >= 1, got shape {m.shape}")
    return 1.0 - m.max(axis=1)


OBJECTIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"difficulty": difficulty}
# The lowest value each objective can take: the utility of a generator with no parsable items when
# scoring.on_empty_generator is "worst".
OBJECTIVE_MIN: dict[str, float] = {"difficulty": 0.0}
