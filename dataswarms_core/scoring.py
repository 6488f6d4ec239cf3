"""Test takers answer items; a judge scores each answer; objectives turn scores into utilities
(docs/method.md §3–4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ScoringError
from .generation import GenerationBackend, GenerationRequest
from .judges import Judge
from .objectives import (
    OBJECTIVE_MIN,
    BM25Corpus,
    composite,
    consistency,
    difficulty,
    novelty,
    realistic,
    separation,
)
from .prompts import answer_messages
from .seeding import derive_seed


@dataclass(frozen=True)
class TestTaker:
    """A model that answers items.

    Attributes:
        name: its name in metrics (``base``, ``t0``, ...).
        backend: the backend serving it (local models share one backend).
        adapter: the adapter name within that backend (``"__base__"``: the base model / endpoint model).
    """

    name: str
    backend: GenerationBackend
    adapter: str = "__base__"


def answer(
    items: Sequence[Mapping[str, Any]],
    test_takers: Sequence[TestTaker],
    *,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    run_seed: int,
    stage: str,
    iteration: int = 0,
) -> list[dict[str, Any]]:
    """Every test taker answers every item; requests are grouped per backend (one batched call each).

    Args:
        items: rows with ``item`` (the query) and any other fields (copied to the output rows).
        test_takers: who answers.
        stage, iteration: label the sampling seed ``derive_seed(run_seed, stage, iteration, backend index)``.

    Returns:
        One row per (item, test taker), item-major: the item's fields plus ``test_taker``, ``query`` and
        ``response``.
    """
    backends: list[GenerationBackend] = []
    for taker in test_takers:
        if not any(b is taker.backend for b in backends):
            backends.append(taker.backend)
    rows = [
        {**row, "test_taker": t.name, "query": row["item"], "response": None}
        for row in items
        for t in test_takers
    ]
    for b_index, backend in enumerate(backends):
        positions = [
            (k, t)
            for k, (row, t) in enumerate((row, t) for row in items for t in test_takers)
            if t.backend is backend
        ]
        requests = [
            GenerationRequest(answer_messages(rows[k]["query"]), adapter=t.adapter) for k, t in positions
        ]
        replies = backend.generate(
            requests,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=1.0,
            seed=derive_seed(run_seed, stage, iteration, b_index),
            batch_size=batch_size,
        )
        for (k, _), reply in zip(positions, replies, strict=True):
            rows[k]["response"] = reply
    return rows


def judge_answers(
    judge: Judge, rows: list[dict[str, Any]], with_references: bool = False
) -> list[dict[str, Any]]:
    """Add ``score`` (in [0, 1], None when the judgement failed) and ``judge_detail`` to answer rows.

    Args:
        with_references: pass each row's ``output`` (reference answer) to the judge.
    """
    references = [r.get("output") for r in rows] if with_references else None
    judgements = judge.judge([r["query"] for r in rows], [r["response"] for r in rows], references)
    for row, j in zip(rows, judgements, strict=True):
        row["score"] = j.score
        row["judge_detail"] = dict(j.detail)
    return rows


def score_matrix(
    answers: Sequence[Mapping[str, Any]], generators: Sequence[str], test_takers: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m[g, t] = mean over g's items of the judge score of t (missing judgements left out).

    Returns:
        ``(m, judged, failed)``, each (G, T): the means (NaN where nothing was judged), the number of
        judgements used, and the number of failed (missing) judgements.
    """
    gi = {g: i for i, g in enumerate(generators)}
    ti = {t: j for j, t in enumerate(test_takers)}
    total = np.zeros((len(generators), len(test_takers)))
    judged = np.zeros_like(total, dtype=np.int64)
    failed = np.zeros_like(judged)
    for row in answers:
        i, j = gi[row["generator"]], ti[row["test_taker"]]
        if row["score"] is None:
            failed[i, j] += 1
        else:
            total[i, j] += row["score"]
            judged[i, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(judged > 0, total / np.maximum(judged, 1), np.nan)
    return m, judged, failed


def set_matrices(
    answers: Sequence[Mapping[str, Any]], generators: Sequence[str], test_takers: Sequence[str], n_sets: int
) -> np.ndarray:
    """Score matrices per independent item set: item set r holds the items of calls c with c mod R = r.

    Returns:
        (R, G, T) means, NaN where a set has no judged item.
    """
    sets = [
        score_matrix([a for a in answers if a["call"] % n_sets == r], generators, test_takers)[0]
        for r in range(n_sets)
    ]
    return np.stack(sets)


@dataclass
class ObjectiveResult:
    """Utilities and their components for one iteration.

    Attributes:
        utilities: (G,) the objective maximised.
        components: objective name → (G,) values (every objective computed this iteration).
        empty_generators: generators without any item (given each objective's minimum).
        undefined: objective name → generators for which it was undefined (e.g. consistency with fewer than
            two scored item sets), given the objective's minimum.
    """

    utilities: list[float]
    components: dict[str, list[float]]
    empty_generators: list[str]
    undefined: dict[str, list[str]] = field(default_factory=dict)


def compute_objectives(
    answers: Sequence[Mapping[str, Any]],
    generators: Sequence[str],
    test_takers: Sequence[str],
    *,
    objective: str,
    components: Sequence[str],
    weights: Mapping[str, float] | None = None,
    normalise: bool = True,
    on_empty_generator: str = "worst",
    reference: Sequence[float] | None = None,
    n_sets: int = 4,
    items: Sequence[Sequence[str]] | None = None,
    corpus: BM25Corpus | None = None,
) -> ObjectiveResult:
    """Compute the requested objectives per generator and the utility (docs/method.md §4).

    Args:
        answers: judged answer rows (``generator``, ``test_taker``, ``score``, ``call``).
        objective: the objective maximised (a component name or ``"composite"``).
        components: objectives to compute (must include every weighted one for a composite).
        weights, normalise: the composite's weights and per-objective min–max normalisation.
        reference: (T,) test takers' mean scores on real dev items (novelty).
        n_sets: R item sets (consistency).
        items: per generator, its items (realistic).
        corpus: the BM25 corpus (realistic).

    Raises:
        ScoringError: a generator with items but a test taker all of whose judgements failed; an empty
            generator when ``on_empty_generator`` is ``"error"``; a needed input missing.
    """
    m, judged, failed = score_matrix(answers, generators, test_takers)
    empty = [g for i, g in enumerate(generators) if (judged[i] + failed[i]).sum() == 0]
    if empty and on_empty_generator == "error":
        raise ScoringError(
            f"generator {empty[0]}: no item could be parsed from its replies (scoring.on_empty_generator is 'error')"
        )
    for i, g in enumerate(generators):
        lost = [test_takers[j] for j in range(len(test_takers)) if judged[i, j] == 0]
        if g not in empty and lost:
            raise ScoringError(
                f"generator {g}: every judgement of test taker(s) {lost} failed ({int(failed[i].sum())} "
                "failures); no utility can be computed"
            )
    keep = [i for i, g in enumerate(generators) if g not in empty]
    sub = m[keep]  # (G', T)
    values: dict[str, np.ndarray] = {}
    for name in components:
        if name == "difficulty":
            part = difficulty(sub)
        elif name == "separation":
            part = separation(sub)
        elif name == "novelty":
            if reference is None:
                raise ScoringError("novelty needs the test takers' reference scores on real dev items")
            part = novelty(sub, reference)
        elif name == "consistency":
            part = consistency(set_matrices(answers, generators, test_takers, n_sets)[:, keep, :])
        elif name == "realistic":
            if items is None or corpus is None:
                raise ScoringError("realistic needs the generators' items and a query corpus")
            part = realistic([items[i] for i in keep], corpus)
        else:
            raise ScoringError(f"unknown objective {name!r}")
        full = np.full(len(generators), OBJECTIVE_MIN[name])
        full[keep] = part
        values[name] = full
    undefined = {}
    for name, vals in values.items():
        bad = [generators[i] for i in range(len(generators)) if np.isnan(vals[i])]
        if bad:
            undefined[name] = bad
            vals[np.isnan(vals)] = OBJECTIVE_MIN[name]
    if objective == "composite":
        total = composite(values, weights or {}, normalise)
    else:
        total = values[objective]
    return ObjectiveResult(
        utilities=[float(u) for u in total],
        components={k: [float(x) for x in v] for k, v in values.items()},
        empty_generators=empty,
        undefined=undefined,
    )
