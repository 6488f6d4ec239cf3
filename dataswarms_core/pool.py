"""The Adversarial Swarms pool (docs/method.md §6): real dev items that generated items replace over the
iterations, and the draw that replaces them.

The pool starts as the first ``pool_size`` real dev items (the authors' choice: the first 200). At iteration k
each entry is replaced with probability p by a generated item of the moved generators; the draw is seeded by
``derive_seed(run_seed, "pool", "test_takers", k)`` (run, iteration and swarm), so a resumed run draws what an
uninterrupted one drew and no other random stream of the run shares it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .records import PoolEntry


def initial_pool(inputs: Sequence[str], outputs: Sequence[str | None], size: int) -> list[PoolEntry]:
    """The first ``size`` real dev items as pool entries.

    Args:
        inputs, outputs: the dev split's items and reference answers (same length).
        size: pool size, 1 <= size <= len(inputs).

    Raises:
        ValueError: ``size`` outside [1, len(inputs)] (preflight reports this with the file's name first).
    """
    if not 1 <= size <= len(inputs):
        raise ValueError(
            f"pool size {size}: the dev split has {len(inputs)} items (1 to {len(inputs)} allowed)"
        )
    return [PoolEntry(item=inputs[i], output=outputs[i], source="dev", dev_index=i) for i in range(size)]


@dataclass(frozen=True)
class PoolDraw:
    """The result of one replacement draw.

    Attributes:
        pool: the new pool (same length as the old).
        replaced: positions that received a generated item, ascending.
        unfilled: positions drawn for replacement but kept because fewer generated items were available.
    """

    pool: list[PoolEntry]
    replaced: list[int]
    unfilled: list[int]


def replace_entries(
    pool: Sequence[PoolEntry], generated: Sequence[PoolEntry], probability: float, seed: int
) -> PoolDraw:
    """Replace each pool entry with probability ``probability`` by a random generated item (docs/method.md §6,
    step 2), without reusing a generated item within one draw.

    The draw, from ``random.Random(seed)``: first one ``random()`` per entry in order (entry i is drawn when
    it is < ``probability``); then ``sample(range(len(generated)), min(drawn, len(generated)))`` picks the
    generated items, assigned to the drawn positions in order. Drawn positions beyond the generated items
    available keep their entry (``unfilled``).

    Args:
        pool: the current pool (real or generated entries).
        generated: candidate items of the moved generators.
        probability: p in [0, 1].
        seed: the draw's seed (see the module docstring).

    Raises:
        ValueError: ``probability`` outside [0, 1].
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"replacement probability {probability}: expected a number in [0, 1]")
    rng = random.Random(seed)
    drawn = [i for i in range(len(pool)) if rng.random() < probability]
    picks = rng.sample(range(len(generated)), min(len(drawn), len(generated)))
    new = list(pool)
    for position, pick in zip(drawn, picks, strict=False):
        new[position] = generated[pick]
    return PoolDraw(pool=new, replaced=drawn[: len(picks)], unfilled=drawn[len(picks) :])


def generated_share(pool: Sequence[PoolEntry]) -> float:
    """Share of generated entries in the pool, in [0, 1] (0 for an empty pool)."""
    return sum(e.source == "generated" for e in pool) / len(pool) if pool else 0.0
