"""Deterministic seeds derived from the run seed.

Every random draw of a search (item selection, sampling in generation, SFT, PSO factors) is seeded from
``derive_seed(run_seed, *parts)``, e.g. ``derive_seed(7, "synthesis", 3, 1)`` for iteration 3, particle 1.
The derivation is a BLAKE2b hash of the parts, so it is the same in every process and on every machine
(unlike Python's salted ``hash``) and a resumed run draws exactly what an uninterrupted run drew.
"""

from __future__ import annotations

import hashlib


def derive_seed(run_seed: int, *parts: object) -> int:
    """Return a 63-bit seed derived from ``run_seed`` and ``parts``.

    Args:
        run_seed: the run's master seed (any int).
        *parts: labels of the draw: strings and ints (stage name, iteration, particle index, ...).

    Returns:
        An int in ``[0, 2**63)``, usable by ``torch.manual_seed``, ``random.Random`` and numpy.
    """
    text = "\x1f".join([str(int(run_seed)), *(repr(p) for p in parts)])
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


GENERATOR_SWARM = "generators"
"""Name of the swarm of generators (the data swarm)."""

TEST_TAKER_SWARM = "test_takers"
"""Name of the swarm of test takers (Adversarial Swarms, docs/method.md §6)."""


def swarm_stream(swarm: str, label: str) -> tuple[str, ...]:
    """The labels of a swarm's random stream ``label`` (e.g. ``"pso"``, ``"pso-init"``), for :func:`derive_seed`.

    The generator swarm keeps the labels of the one-swarm layout (``("pso",)``), so seeded searches give the
    same swarm as before named swarms existed; every other swarm adds its name (``("pso", "test_takers")``),
    so no two swarms of a run share a random stream.
    """
    return (label,) if swarm == GENERATOR_SWARM else (label, swarm)
