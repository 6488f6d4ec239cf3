"""Objectives and the score matrix on hand-made numbers (DESIGN §3–4)."""

import numpy as np
import pytest

from dataswarms_core.errors import ScoringError
from dataswarms_core.objectives import difficulty
from dataswarms_core.scoring import score_matrix, utilities_from_scores


def test_difficulty_is_one_minus_the_best_test_taker():
    m = np.array([[0.2, 0.7, 0.4], [0.9, 0.1, 0.3], [0.0, 0.0, 0.05]])
    assert difficulty(m).tolist() == pytest.approx([0.3, 0.1, 0.95])
    with pytest.raises(ValueError, match="shape"):
        difficulty(np.array([0.1, 0.2]))


def _answer(g, t, score, index=0):
    return {"generator": g, "index": index, "test_taker": t, "score": score}


def test_score_matrix_leaves_failed_judgements_out_of_the_mean():
    answers = [
        _answer("g0", "base", 1.0, 0), _answer("g0", "base", 0.5, 1), _answer("g0", "t0", None, 0),
        _answer("g0", "t0", 0.25, 1), _answer("g1", "base", 0.0), _answer("g1", "t0", 0.75),
    ]  # fmt: skip
    m, judged, failed = score_matrix(answers, ["g0", "g1", "g2"], ["base", "t0"])
    assert m[:2].tolist() == [[0.75, 0.25], [0.0, 0.75]]
    assert np.isnan(m[2]).all()
    assert judged.tolist() == [[2, 1], [1, 1], [0, 0]]
    assert failed.tolist() == [[0, 1], [0, 0], [0, 0]]
    utilities, empty = utilities_from_scores(
        m, judged, failed, ["g0", "g1", "g2"], ["base", "t0"], "difficulty", "worst"
    )
    assert utilities == pytest.approx([0.25, 0.25, 0.0])  # g2 had no items: the objective's minimum
    assert empty == ["g2"]
    with pytest.raises(ScoringError, match="generator g2: no item could be parsed"):
        utilities_from_scores(m, judged, failed, ["g0", "g1", "g2"], ["base", "t0"], "difficulty", "error")


def test_a_test_taker_with_only_failed_judgements_is_an_error():
    answers = [_answer("g0", "base", 0.5), _answer("g0", "t0", None)]
    m, judged, failed = score_matrix(answers, ["g0"], ["base", "t0"])
    with pytest.raises(ScoringError, match=r"every judgement of test taker\(s\) \['t0'\] failed"):
        utilities_from_scores(m, judged, failed, ["g0"], ["base", "t0"], "difficulty", "worst")
