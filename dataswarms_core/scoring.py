"""Test takers answer items; a judge scores each answer; objectives turn scores into utilities
(docs/method.md §3–4).

A little over 300 lines on purpose: the one path from answers to utilities, whose steps share the per-item
failure accounting (answer failures, judge failures, empty generators) that must agree from end to end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ScoringError
from .generation import GenerationBackend, GenerationRequest, reply_failure
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

    One request that fails does not fail the batch (``return_exceptions=True``): its row gets
    ``response=None`` and ``answer_failure`` = the reason (:func:`~dataswarms_core.generation.reply_failure`:
    no choices, null content, refusal, content filter, error object, a body that is not JSON, a failed
    request); :func:`judge_answers` never judges it and the score matrix counts it apart from judge
    failures. An empty reply of a model that finished normally is an answer (``response=""``).

    Args:
        items: rows with ``item`` (the query) and any other fields (copied to the output rows).
        test_takers: who answers.
        stage, iteration: label the sampling seed ``derive_seed(run_seed, stage, iteration, backend index)``.

    Returns:
        One row per (item, test taker), item-major: the item's fields plus ``test_taker``, ``query``,
        ``response`` (``str``, None when the answer failed) and ``answer_failure`` (None, or the reason).

    Raises:
        EndpointError: EVERY request to one backend failed without any response (endpoint down, or rejecting
            every request): the error of a last single request when it fails again (transient or not, with
            its message), else a transient one.
    """
    backends: list[GenerationBackend] = []
    for taker in test_takers:
        if not any(b is taker.backend for b in backends):
            backends.append(taker.backend)
    rows = [
        {**row, "test_taker": t.name, "query": row["item"], "response": None, "answer_failure": None}
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
        settings: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": 1.0,
            "seed": derive_seed(run_seed, stage, iteration, b_index),
            "batch_size": batch_size,
        }
        replies = backend.generate(requests, **settings, return_exceptions=True)
        if requests and all(r is None for r in replies):
            _raise_unreachable(backend, requests, settings, sorted({t.name for _, t in positions}))
        for (k, _), reply in zip(positions, replies, strict=True):
            failure = reply_failure(reply)
            rows[k]["response"] = None if failure is not None else reply
            rows[k]["answer_failure"] = failure
    return rows


def _raise_unreachable(
    backend: GenerationBackend,
    requests: Sequence[GenerationRequest],
    settings: dict[str, Any],
    takers: list[str],
) -> None:
    """Every request to ``backend`` failed without a response: ask once more without ``return_exceptions``
    so the backend's own error (its message and whether it is transient) is raised; a transient
    :class:`~dataswarms_core.openai_backend.EndpointError` when that request goes through."""
    from .openai_backend import EndpointError

    backend.generate(requests[:1], **settings, return_exceptions=False)
    raise EndpointError(
        f"test taker(s) {takers}: every one of {len(requests)} answer requests to {backend!r} failed without a "
        "response (endpoint unreachable?); nothing was answered",
        transient=True,
    )


def judge_answers(
    judge: Judge, rows: list[dict[str, Any]], with_references: bool = False
) -> list[dict[str, Any]]:
    """Add ``score`` (in [0, 1], None when the judgement failed) and ``judge_detail`` to answer rows.

    A row whose answer failed (``answer_failure`` set, see :func:`answer`) is never judged: ``score`` None,
    ``judge_detail`` ``{"answer_failure": reason}``.

    Args:
        with_references: pass each row's ``output`` (reference answer) to the judge.
    """
    todo = [r for r in rows if not r.get("answer_failure")]
    for row in rows:
        if row.get("answer_failure"):
            row["score"] = None
            row["judge_detail"] = {"answer_failure": row["answer_failure"]}
    if not todo:
        return rows
    references = [r.get("output") for r in todo] if with_references else None
    judgements = judge.judge([r["query"] for r in todo], [r["response"] for r in todo], references)
    for row, j in zip(todo, judgements, strict=True):
        row["score"] = j.score
        row["judge_detail"] = dict(j.detail)
    return rows


@dataclass(frozen=True)
class TakerScores:
    """Each test taker's judged answers summed up (reference scores, the Adversarial Swarms pool).

    Attributes:
        means: test taker → mean judge score over its judged answers, in [0, 1]; None when none was judged.
        judged: test taker → answers judged.
        judge_failures: test taker → answers given but not judged (``score`` None).
        answer_failures: test taker → the reasons of the answers that failed (never judged).
    """

    means: dict[str, float | None]
    judged: dict[str, int]
    judge_failures: dict[str, int]
    answer_failures: dict[str, list[str]]


def scores_per_test_taker(rows: Sequence[Mapping[str, Any]], test_takers: Sequence[str]) -> TakerScores:
    """Sum up judged answer rows (``test_taker``, ``score``, ``answer_failure``) per test taker: failures are
    counted apart and left out of the means, never scored 0."""
    means, judged, failed, unanswered = {}, {}, {}, {}
    for name in test_takers:
        mine = [r for r in rows if r["test_taker"] == name]
        got = [r["score"] for r in mine if r["score"] is not None]
        unanswered[name] = [str(r["answer_failure"]) for r in mine if r.get("answer_failure")]
        failed[name] = sum(1 for r in mine if r["score"] is None and not r.get("answer_failure"))
        judged[name] = len(got)
        means[name] = sum(got) / len(got) if got else None
    return TakerScores(means, judged, failed, unanswered)


def score_matrix(
    answers: Sequence[Mapping[str, Any]], generators: Sequence[str], test_takers: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m[g, t] = mean over g's items of the judge score of t (missing judgements left out).

    Rows whose answer failed (``answer_failure`` set) are left out and not counted as failed judgements
    (see :func:`answer_failure_matrix`).

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
        if row.get("answer_failure"):
            continue
        if row["score"] is None:
            failed[i, j] += 1
        else:
            total[i, j] += row["score"]
            judged[i, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(judged > 0, total / np.maximum(judged, 1), np.nan)
    return m, judged, failed


def answer_failure_matrix(
    answers: Sequence[Mapping[str, Any]], generators: Sequence[str], test_takers: Sequence[str]
) -> np.ndarray:
    """(G, T) the number of answers that failed (``answer_failure`` set: never judged, never scored)."""
    gi = {g: i for i, g in enumerate(generators)}
    ti = {t: j for j, t in enumerate(test_takers)}
    out = np.zeros((len(generators), len(test_takers)), dtype=np.int64)
    for row in answers:
        if row.get("answer_failure"):
            out[gi[row["generator"]], ti[row["test_taker"]]] += 1
    return out


def answer_failure_kinds(answers: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Failed answers per kind (the reason's text before the first ``":"``, e.g. ``no_choices``)."""
    kinds = Counter(str(r["answer_failure"]).split(":", 1)[0] for r in answers if r.get("answer_failure"))
    return dict(sorted(kinds.items()))


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
        failed: (G, T) failed (missing) judgements (answers that failed are not among them).
        answer_failures: (G, T) answers that failed at the test taker (never judged nor scored).
    """

    utilities: list[float]
    components: dict[str, list[float]]
    empty_generators: list[str]
    undefined: dict[str, list[str]] = field(default_factory=dict)
    score_matrix: np.ndarray | None = None
    failed: np.ndarray | None = None
    answer_failures: np.ndarray | None = None


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
        ScoringError: a generator with items but a test taker all of whose answers failed (naming the
            answer failures and a reason), or none of whose answers could be judged; an empty
            generator when ``on_empty_generator`` is ``"error"``; an input a component needs is missing;
            ``objective`` is not among ``components``.
    """
    needs = objective_needs(components)
    if objective != COMPOSITE and OBJECTIVES.get(objective).name not in components:
        raise ScoringError(f"objective {objective!r} is not among the components computed {list(components)}")
    m, judged, failed = score_matrix(answers, generators, test_takers)
    answer_failed = answer_failure_matrix(answers, generators, test_takers)
    empty = [g for i, g in enumerate(generators) if (judged[i] + failed[i] + answer_failed[i]).sum() == 0]
    if empty and on_empty_generator == "error":
        raise ScoringError(
            f"generator {empty[0]}: no item could be parsed from its replies (scoring.on_empty_generator is 'error')"
        )
    for i, g in enumerate(generators):
        if g in empty:
            continue
        lost = [j for j in range(len(test_takers)) if judged[i, j] == 0]
        unanswered = [test_takers[j] for j in lost if failed[i, j] == 0 and answer_failed[i, j] > 0]
        if unanswered:
            cols = [test_takers.index(t) for t in unanswered]
            reasons = Counter(
                str(r["answer_failure"])
                for r in answers
                if r["generator"] == g and r["test_taker"] in unanswered and r.get("answer_failure")
            )
            raise ScoringError(
                f"generator {g}: every answer of test taker(s) {unanswered} failed "
                f"({int(answer_failed[i, cols].sum())} answer failures, e.g. {reasons.most_common(1)[0][0]!r}); "
                "no utility can be computed"
            )
        if lost:
            names = [test_takers[j] for j in lost]
            answer_note = (
                f", and {int(answer_failed[i, lost].sum())} answer failures"
                if answer_failed[i, lost].sum()
                else ""
            )
            raise ScoringError(
                f"generator {g}: every judgement of test taker(s) {names} failed ({int(failed[i].sum())} "
                f"failures{answer_note}); no utility can be computed"
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
        answer_failures=answer_failed,
    )
