"""What every judge returns and the protocol it follows (docs/method.md §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Judgement:
    """One judgement.

    Attributes:
        score: in [0, 1]; None when the judge failed (counted, left out of means, never replaced).
        detail: judge-specific diagnostics (e.g. ``mass``: probability on the score tokens).
    """

    score: float | None
    detail: dict[str, float] = field(default_factory=dict)


class Judge(Protocol):
    """Scores answers; ``name`` identifies it in metrics."""

    name: str

    def judge(
        self, queries: Sequence[str], responses: Sequence[str], references: Sequence[str | None] | None = None
    ) -> list[Judgement]:
        """One :class:`Judgement` per (query, response) pair, in order; ``references`` are reference
        answers where known (used by the reference judge, ignored by the others)."""
        ...
