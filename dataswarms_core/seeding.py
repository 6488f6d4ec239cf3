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
