"""Objectives: one utility per generator from test-taker scores (docs/method.md §4). Higher is better.

Shapes: G generators, T test takers, R item sets per generator.
- ``m`` (G, T): m[g, t] is the mean judge score in [0, 1] of test taker t on generator g's items.
- ``m_sets`` (R, G, T): the same per independent item set (NaN where a set had no items).
- ``reference`` (T,): each test taker's mean score on real dev items.

| name | utility of generator g |
| --- | --- |
| difficulty | 1 − max_t m[g, t] |
| separation | mean gap between adjacent sorted m[g, ·] = (max_t − min_t) / (T − 1) |
| novelty | KL(q ‖ m[g, ·]), q = reference; both floored at 1e-6 and normalised to sum 1 |
| consistency | 1 − mean_t std_r m_r[g, t] (population std over the R sets) |
| realistic | mean over g's items of the mean BM25 score of its k nearest real user queries |
| composite | Σ_j w_j · objective_j, optionally min–max normalised across the swarm per objective |

The pure functions below compute them; :data:`OBJECTIVES` registers one :class:`Objective` per name (all but
``composite``, which is a weighted sum of registered ones), saying what each needs from the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .registry import Registry

if TYPE_CHECKING:
    from .config import ScoringConfig

COMPOSITE = "composite"  # the weighted sum of registered objectives; not a registry entry
NOVELTY_FLOOR = 1e-6


def _matrix(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(f"score matrix must be (generators, test takers) with T >= 1, got shape {m.shape}")
    return m


def difficulty(m: np.ndarray) -> np.ndarray:
    """``1 − max_t m[g, t]``: hard even for the strongest test taker. (G, T) → (G,) in [0, 1]."""
    return 1.0 - _matrix(m).max(axis=1)


def separation(m: np.ndarray) -> np.ndarray:
    """Mean gap between adjacent values of sorted ``m[g, ·]``, which equals ``(max_t − min_t) / (T − 1)``.

    (G, T) → (G,) in [0, 1 / (T − 1)].

    Raises:
        ValueError: fewer than 2 test takers.
    """
    m = _matrix(m)
    if m.shape[1] < 2:
        raise ValueError("separation needs at least 2 test takers")
    return np.diff(np.sort(m, axis=1), axis=1).mean(axis=1)


def novelty(m: np.ndarray, reference: Sequence[float]) -> np.ndarray:
    """``KL(q ‖ m[g, ·])`` with q the test takers' mean scores on real dev items (docs/method.md §4).

    Both vectors are floored at ``NOVELTY_FLOOR`` (so KL stays finite when a test taker scores 0) and
    normalised to sum to 1; the value equals ``scipy.stats.entropy(q, m[g])`` on the floored vectors.
    Generators that rank test takers unlike real data score high.

    Args:
        m: (G, T) scores.
        reference: (T,) scores on real dev items.

    Returns:
        (G,) non-negative values (nats).
    """
    from scipy.stats import entropy

    m = _matrix(m)
    q = np.asarray(reference, dtype=np.float64)
    if q.shape != (m.shape[1],):
        raise ValueError(
            f"novelty: reference has shape {q.shape}, expected ({m.shape[1]},) — one per test taker"
        )
    q = np.maximum(q, NOVELTY_FLOOR)
    return np.array([entropy(q, np.maximum(row, NOVELTY_FLOOR)) for row in m])


def consistency(m_sets: np.ndarray) -> np.ndarray:
    """``1 − mean_t std_r(m_r[g, t])`` with the population standard deviation over the R item sets.

    Sets without items (NaN) are left out; a generator with fewer than 2 scored sets gets NaN.

    Args:
        m_sets: (R, G, T) scores per item set.

    Returns:
        (G,) values in [0.5, 1] (scores lie in [0, 1], so a std is at most 0.5), NaN where undefined.
    """
    m_sets = np.asarray(m_sets, dtype=np.float64)
    if m_sets.ndim != 3:
        raise ValueError(
            f"consistency: item-set scores must be (sets, generators, test takers), got {m_sets.shape}"
        )
    out = np.full(m_sets.shape[1], np.nan)
    for g in range(m_sets.shape[1]):
        scored = m_sets[:, g, :][~np.isnan(m_sets[:, g, :]).any(axis=1)]  # (R', T)
        if len(scored) >= 2:
            out[g] = 1.0 - scored.std(axis=0, ddof=0).mean()
    return out


class BM25Corpus:
    """A corpus of real user queries indexed with BM25 (``bm25s``), for the realistic objective.

    Args:
        queries: the corpus (≥ 1 non-empty strings).
        neighbours: k, how many nearest queries are averaged per item.
    """

    def __init__(self, queries: Sequence[str], neighbours: int = 5) -> None:
        import bm25s

        queries = [q for q in queries if q and q.strip()]
        if not queries:
            raise ValueError("realistic: the query corpus is empty")
        self.size = len(queries)
        self.k = min(neighbours, self.size)
        self._bm25s = bm25s
        self.retriever = bm25s.BM25()
        self.retriever.index(
            bm25s.tokenize(queries, stopwords="en", show_progress=False), show_progress=False
        )

    def scores(self, items: Sequence[str]) -> np.ndarray:
        """(N,) mean BM25 score of each item's k nearest queries (0 for an item of only stop words)."""
        if not items:
            return np.zeros(0)
        tokens = self._bm25s.tokenize(list(items), stopwords="en", show_progress=False)
        _, scores = self.retriever.retrieve(tokens, k=self.k, show_progress=False)  # (N, k)
        return np.asarray(scores, dtype=np.float64).mean(axis=1)


def realistic(items: Sequence[Sequence[str]], corpus: BM25Corpus) -> np.ndarray:
    """Mean over each generator's items of :meth:`BM25Corpus.scores`; NaN for a generator without items.

    Args:
        items: per generator, its items (G lists).

    Returns:
        (G,) non-negative BM25 scores (not on the [0, 1] scale: normalise in a composite).
    """
    return np.array([corpus.scores(list(g)).mean() if len(g) else np.nan for g in items])


def minmax(values: np.ndarray) -> np.ndarray:
    """Min–max normalise across the swarm to [0, 1]; all-equal values map to 0 (they rank nobody)."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = values.min(), values.max()
    return np.zeros_like(values) if hi - lo <= 0 else (values - lo) / (hi - lo)


def composite(
    components: Mapping[str, np.ndarray], weights: Mapping[str, float], normalise: bool
) -> np.ndarray:
    """``Σ_j w_j · objective_j`` over the weighted objectives (docs/method.md §4).

    Args:
        components: objective name → (G,) values; must hold every weighted objective.
        weights: objective name → weight (≥ 0).
        normalise: min–max normalise each objective across the swarm first (KL and BM25 are not on the
            [0, 1] scale of the others).

    Returns:
        (G,) utilities.
    """
    missing = [name for name in weights if name not in components]
    if missing:
        raise ValueError(f"composite: no values for weighted objective(s) {missing}")
    total = None
    for name, w in weights.items():
        part = minmax(components[name]) if normalise else np.asarray(components[name], dtype=np.float64)
        total = w * part if total is None else total + w * part
    return total


# -- the registry --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectiveInputs:
    """What an objective may read, for the G' generators that wrote items (empty ones are left out).

    Attributes:
        m: (G', T) mean judge scores in [0, 1].
        set_matrices: (R, G', T) mean scores per item set (NaN where a set has no judged item); computed
            only when an objective needs ``item_sets``, else None.
        reference: (T,) the test takers' mean scores on real dev items (``reference_scores``), else None.
        items: per generator, its items (G' lists), when an objective needs ``items``, else None.
        corpus: the BM25 query corpus, when an objective needs ``corpus``, else None.
        settings: the run's ``scoring`` section, for objectives with options (None in unit tests).
    """

    m: np.ndarray
    set_matrices: np.ndarray | None = None
    reference: Sequence[float] | None = None
    items: Sequence[Sequence[str]] | None = None
    corpus: BM25Corpus | None = None
    settings: ScoringConfig | None = None


class Objective(Protocol):
    """An objective: ``(inputs) -> (G',)`` utilities, higher is better; NaN where undefined for a generator
    (the caller then gives that generator the entry's ``lowest`` value and reports it)."""

    def __call__(self, inputs: ObjectiveInputs) -> np.ndarray: ...


OBJECTIVE_NEEDS = {
    "reference_scores": "the test takers' mean scores on real dev items",
    "item_sets": "the answers split into independent item sets by call",
    "items": "the generators' items",
    "corpus": "a corpus of real user queries",
    "test_takers>=2": "at least 2 test takers",
}
OBJECTIVES: Registry[Objective] = Registry("objective", known_needs=OBJECTIVE_NEEDS)


def objective_needs(names: Iterable[str]) -> frozenset[str]:
    """The union of the ``needs`` of the named objectives (registered names; not ``"composite"``).

    Raises:
        UnknownNameError: a name is not registered.
    """
    return frozenset().union(*(OBJECTIVES.get(n).needs for n in names))


_SOURCE = "docs/method.md §4"


@OBJECTIVES.register(
    "difficulty", source=_SOURCE, lowest=0.0,
    goal="Make them harder than the examples: questions that even a strong model answers wrongly.",
    summary="1 − max_t m[g, t]: hard even for the strongest test taker",
)  # fmt: skip
def _difficulty_objective(inputs: ObjectiveInputs) -> np.ndarray:
    return difficulty(inputs.m)


@OBJECTIVES.register(
    "separation", source=_SOURCE, lowest=0.0, needs=("test_takers>=2",),
    goal="Make them discriminative: questions that strong models answer correctly and weaker models answer wrongly.",
    summary="mean gap between adjacent sorted m[g, ·] = (max_t − min_t) / (T − 1)",
)  # fmt: skip
def _separation_objective(inputs: ObjectiveInputs) -> np.ndarray:
    return separation(inputs.m)


@OBJECTIVES.register(
    "novelty", source=_SOURCE, lowest=0.0, needs=("reference_scores", "test_takers>=2"),
    goal="Make them test something new: questions on which models rank differently than on the examples.",
    options=("scoring.novelty_dev_items", "judge.dev_name"),
    summary=(
        "KL(q ‖ m[g, ·]) with q each test taker's mean score on `scoring.novelty_dev_items` real dev items "
        "(answered once per run, judged by `judge.dev_name`; `reference_scores.json`); both vectors floored "
        "at 1e-6 and normalised"
    ),
)  # fmt: skip
def _novelty_objective(inputs: ObjectiveInputs) -> np.ndarray:
    return novelty(inputs.m, inputs.reference)


@OBJECTIVES.register(
    "consistency", source=_SOURCE, lowest=0.0, needs=("item_sets",), options=("scoring.consistency_sets",),
    goal="Make them equally hard as one another, so that any subset of them measures a model the same way.",
    summary=(
        "the calls of each generator are split into R = `scoring.consistency_sets` independent item sets; "
        "1 − mean_t std_r m_r[g, t] (population std); needs `generation.calls_per_generator` ≥ R"
    ),
)  # fmt: skip
def _consistency_objective(inputs: ObjectiveInputs) -> np.ndarray:
    return consistency(inputs.set_matrices)


@OBJECTIVES.register(
    "realistic", source=_SOURCE, lowest=0.0, needs=("items", "corpus"),
    goal="Make them realistic: questions a real user would ask.",
    options=("scoring.realistic_corpus", "scoring.realistic_neighbours"),
    summary=(
        "mean over g's items of the mean BM25 score (`bm25s`) of its `scoring.realistic_neighbours` nearest "
        "queries in `scoring.realistic_corpus` (default: 500 real questions from TruthfulQA and GSM8K, see "
        "`dataswarms_core/builtin/LICENSE-USER-QUERIES`)"
    ),
)  # fmt: skip
def _realistic_objective(inputs: ObjectiveInputs) -> np.ndarray:
    return realistic(inputs.items, inputs.corpus)


def lowest(name: str) -> float:
    """The lowest value objective ``name`` takes (given to generators without items, or where undefined)."""
    return float(OBJECTIVES.get(name).extra["lowest"])


def goal(name: str, weights: Mapping[str, float] | None = None) -> str:
    """The objective stated as an instruction to a generator (the ``prompted`` baseline, docs/method.md §9).

    Args:
        name: a registered objective or ``composite``.
        weights: the composite's weights; its goal lists the goals of the objectives weighted above 0, the
            largest weight first.

    Raises:
        UnknownNameError: ``name`` (or a weighted name) is not registered.
    """
    if name == COMPOSITE:
        named = sorted((n for n, w in (weights or {}).items() if w > 0), key=lambda n: -(weights or {})[n])
        return " ".join(str(OBJECTIVES.get(n).extra["goal"]) for n in named)
    return str(OBJECTIVES.get(name).extra["goal"])
