"""Test takers answer items; a judge scores each answer; objectives turn scores into utilities
(docs/method.md §3–4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ScoringError
from .generation import GenerationBackend, GenerationRequest
from .judges import Judge
from .objectives import (
    COMPOSITE,
    OBJECTIVE_NEEDS,
    OBJECTIVES,
    BM25Corpus,
    ObjectiveInputs,
    composite,
    lowest,
    objective_needs,
)
from .prompts import answer_messages
from .seeding import derive_seed

if TYPE_CHECKING:
    from .config import ScoringConfig


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
        score_matrix: (G, T) m[g, t], NaN where nothing was judged (see :func:`score_matrix`).
        failed: (G, T) failed (missing) judgements.
    """

    utilities: list[float]
    components: dict[str, list[float]]
    empty_generators: list[str]
    undefined: dict[str, list[str]] = field(default_factory=dict)
    score_matrix: np.ndarray | None = None
    failed: np.ndarray | None = None


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
    settings: ScoringConfig | None = None,
) -> ObjectiveResult:
    """Compute the requested objectives per generator and the utility (docs/method.md §4).

    Each component is looked up in :data:`~dataswarms_core.objectives.OBJECTIVES`; set matrices, the
    reference scores, the items and the corpus are computed or passed on only when a component needs them.

    Args:
        answers: judged answer rows (``generator``, ``test_taker``, ``score``, ``call``).
        objective: the objective maximised (a component name or ``"composite"``).
        components: registered objectives to compute (must include every weighted one for a composite).
        weights, normalise: the composite's weights and per-objective min–max normalisation.
        reference: (T,) test takers' mean scores on real dev items (``reference_scores``: novelty).
        n_sets: R item sets (``item_sets``: consistency).
        items: per generator (G lists), its items (``items``: realistic).
        corpus: the BM25 corpus (``corpus``: realistic).
        settings: the run's ``scoring`` section, handed to the objectives (:class:`ObjectiveInputs`).

    Raises:
        UnknownNameError: ``objective`` or a component is not a registered objective.
        ScoringError: a generator with items but a test taker all of whose judgements failed; an empty
            generator when ``on_empty_generator`` is ``"error"``; an input a component needs is missing;
            ``objective`` is not among ``components``.
    """
    needs = objective_needs(components)
    if objective != COMPOSITE and OBJECTIVES.get(objective).name not in components:
        raise ScoringError(f"objective {objective!r} is not among the components computed {list(components)}")
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
    available = {
        "reference_scores": reference is not None,
        "item_sets": n_sets >= 1,
        "items": items is not None,
        "corpus": corpus is not None,
        "test_takers>=2": len(test_takers) >= 2,
    }
    for name in components:
        missing = [OBJECTIVE_NEEDS[n] for n in sorted(OBJECTIVES.get(name).needs) if not available[n]]
        if missing:
            raise ScoringError(f"{name} needs {' and '.join(missing)}")
    keep = [i for i, g in enumerate(generators) if g not in empty]
    inputs = ObjectiveInputs(
        m=m[keep],  # (G', T)
        set_matrices=(
            set_matrices(answers, generators, test_takers, n_sets)[:, keep, :]
            if "item_sets" in needs
            else None
        ),  # (R, G', T)
        reference=reference if "reference_scores" in needs else None,
        items=[items[i] for i in keep] if "items" in needs else None,
        corpus=corpus if "corpus" in needs else None,
        settings=settings,
    )
    values: dict[str, np.ndarray] = {}
    for name in components:
        full = np.full(len(generators), lowest(name))
        full[keep] = OBJECTIVES.get(name).impl(inputs)
        values[name] = full
    undefined = {}
    for name, vals in values.items():
        bad = [generators[i] for i in range(len(generators)) if np.isnan(vals[i])]
        if bad:
            undefined[name] = bad
            vals[np.isnan(vals)] = lowest(name)
    if objective == COMPOSITE:
        total = composite(values, weights or {}, normalise)
    else:
        total = values[objective]
    return ObjectiveResult(
        utilities=[float(u) for u in total],
        components={k: [float(x) for x in v] for k, v in values.items()},
        empty_generators=empty,
        undefined=undefined,
        score_matrix=m,
        failed=failed,
    )
