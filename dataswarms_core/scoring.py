"""Test takers answer generated items; a judge scores each answer; an objective turns scores into
utilities (DESIGN §3–4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ScoringError
from .generation import GenerationBackend, GenerationRequest
from .judges import Judge
from .objectives import OBJECTIVE_MIN, OBJECTIVES
from .prompts import answer_messages
from .seeding import derive_seed


def answer_and_judge(
    backend: GenerationBackend,
    judge: Judge,
    items: Sequence[dict[str, Any]],
    test_takers: Sequence[tuple[str, str]],
    *,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    run_seed: int,
    iteration: int,
) -> list[dict[str, Any]]:
    """Every test taker answers every item; the judge scores every (query, response).

    Args:
        items: rows with ``generator``, ``index`` and ``item`` (the query).
        test_takers: ``(name, adapter)`` pairs; adapter ``"__base__"`` is the base model.

    Returns:
        One row per (item, test taker): ``{"generator", "index", "test_taker", "query", "response",
        "score" (float in [0, 1] or None when the judge failed), "judge_mass"}``.
    """
    requests, keys = [], []
    for row in items:
        for name, adapter in test_takers:
            requests.append(GenerationRequest(answer_messages(row["item"]), adapter=adapter))
            keys.append((row, name))
    responses = backend.generate(
        requests, max_new_tokens=max_new_tokens, temperature=temperature, top_p=1.0,
        seed=derive_seed(run_seed, "answers", iteration), batch_size=batch_size,
    )  # fmt: skip
    judgements = judge.judge([row["item"] for row, _ in keys], responses)
    return [
        {
            "generator": row["generator"],
            "index": row["index"],
            "test_taker": name,
            "query": row["item"],
            "response": response,
            "score": j.score,
            "judge_mass": j.detail.get("mass"),
        }
        for (row, name), response, j in zip(keys, responses, judgements, strict=True)
    ]


def score_matrix(
    answers: Sequence[dict[str, Any]], generators: Sequence[str], test_takers: Sequence[str]
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


def utilities_from_scores(
    m: np.ndarray,
    judged: np.ndarray,
    failed: np.ndarray,
    generators: Sequence[str],
    test_takers: Sequence[str],
    objective: str,
    on_empty_generator: str,
) -> tuple[list[float], list[str]]:
    """Apply the objective to the rows of ``m``.

    A generator with no items at all (``judged + failed`` all zero) is *empty*: with
    ``on_empty_generator == "worst"`` it gets ``OBJECTIVE_MIN[objective]`` and is listed; with ``"error"``
    a :class:`ScoringError` is raised. A generator with items but a test taker none of whose judgements
    succeeded raises :class:`ScoringError` (no utility is invented).

    Returns:
        ``(utilities, empty_generators)``.
    """
    fn = OBJECTIVES[objective]
    utilities: list[float] = []
    empty = []
    for i, g in enumerate(generators):
        if (judged[i] + failed[i]).sum() == 0:
            if on_empty_generator == "error":
                raise ScoringError(
                    f"generator {g}: no item could be parsed from its replies (scoring.on_empty_generator is 'error')"
                )
            empty.append(g)
            utilities.append(OBJECTIVE_MIN[objective])
            continue
        lost = [test_takers[j] for j in range(len(test_takers)) if judged[i, j] == 0]
        if lost:
            raise ScoringError(
                f"generator {g}: every judgement of test taker(s) {lost} failed ({int(failed[i].sum())} failures); "
                "no utility can be computed"
            )
        utilities.append(float(fn(m[i : i + 1])[0]))
    return utilities, empty
