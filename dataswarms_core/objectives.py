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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

OBJECTIVE_NAMES = ("difficulty", "separation", "novelty", "consistency", "realistic")
# The lowest value each objective takes (for generators without items when on_empty_generator is "worst").
OBJECTIVE_MIN: dict[str, float] = dict.fromkeys(OBJECTIVE_NAMES, 0.0)
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
