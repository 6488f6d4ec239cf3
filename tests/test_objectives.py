"""Objectives on hand-made score matrices (docs/method.md §4), and the accounting of missing judgements."""

import numpy as np
import pytest
from scipy.stats import entropy

from dataswarms_core.errors import ScoringError
from dataswarms_core.objectives import (
    BM25Corpus,
    composite,
    consistency,
    difficulty,
    minmax,
    novelty,
    realistic,
    separation,
)
from dataswarms_core.scoring import compute_objectives, score_matrix, set_matrices

M = np.array([[0.2, 0.7, 0.4], [0.9, 0.1, 0.3], [0.0, 0.0, 0.05]])


def test_difficulty_is_one_minus_the_best_test_taker():
    assert difficulty(M).tolist() == pytest.approx([0.3, 0.1, 0.95])
    with pytest.raises(ValueError, match="shape"):
        difficulty(np.array([0.1, 0.2]))


def test_separation_is_range_over_t_minus_one():
    """Row 0 sorted (0.2, 0.4, 0.7): gaps 0.2, 0.3, mean 0.25 = (0.7 − 0.2)/2; row 1 (0.9 − 0.1)/2."""
    assert separation(M).tolist() == pytest.approx([0.25, 0.4, 0.025])
    with pytest.raises(ValueError, match="at least 2 test takers"):
        separation(np.array([[0.5]]))


def test_novelty_is_kl_of_reference_against_generator_scores():
    """q = (.5, .3, .2); row 0 normalised p = (.2, .7, .4)/1.3:
    KL = .5 ln(.5/.153846) + .3 ln(.3/.538462) + .2 ln(.2/.307692) = .589327 − .175480 − .086157 = .327691."""
    q = [0.5, 0.3, 0.2]
    got = novelty(M, q)
    assert got[0] == pytest.approx(0.327691, abs=1e-5)
    assert got[0] == pytest.approx(entropy(q, M[0]))
    assert got[2] == pytest.approx(entropy(q, np.maximum(M[2], 1e-6)))  # zeros floored: finite
    assert np.isfinite(got).all()
    assert novelty(np.array([[0.5, 0.3, 0.2]]), q)[0] == pytest.approx(0.0)  # same ranking as real data
    with pytest.raises(ValueError, match="one per test taker"):
        novelty(M, [0.5, 0.5])


def test_consistency_uses_population_std_over_item_sets():
    """R = 2: t0 scores (.2, .4) → std .1; t1 (.6, .6) → 0; 1 − mean(.1, 0) = .95.
    R = 4: t0 (0, 1, 0, 1) → std .5; t1 constant → 0; 1 − .25 = .75. A generator with one scored set: NaN."""
    two = np.array([[[0.2, 0.6]], [[0.4, 0.6]]])  # (R=2, G=1, T=2)
    assert consistency(two).tolist() == pytest.approx([0.95])
    four = np.array([[[0.0, 0.5]], [[1.0, 0.5]], [[0.0, 0.5]], [[1.0, 0.5]]])
    assert consistency(four).tolist() == pytest.approx([0.75])
    one_set = np.array([[[0.2, 0.6]], [[np.nan, np.nan]]])
    assert np.isnan(consistency(one_set)[0])


def test_realistic_averages_bm25_of_nearest_queries():
    corpus = BM25Corpus(
        ["How many apples does Tom have?", "What is the capital of France?", "Why is the sky blue?"],
        neighbours=2,
    )
    import bm25s

    near = corpus.retriever.retrieve(
        bm25s.tokenize(["How many apples does Tom have?"], stopwords="en", show_progress=False),
        k=2,
        show_progress=False,
    )[1]
    got = realistic(
        [["How many apples does Tom have?", "the of a"], ["Quantum chromodynamics lattice"], []], corpus
    )
    assert got[0] == pytest.approx((near.mean() + 0.0) / 2)  # mean over items of the mean over 2 neighbours
    assert got[1] == 0.0 and np.isnan(got[2])
    assert got[0] > got[1]


def test_composite_weights_and_normalisation():
    """difficulty (.3, .1, .95) → min–max (.235294, 0, 1); separation (.25, .4, .025) → (.6, 1, 0);
    .6·d + .4·s = (.381176, .4, .6). Without normalisation: (.28, .22, .58)."""
    parts = {"difficulty": difficulty(M), "separation": separation(M)}
    w = {"difficulty": 0.6, "separation": 0.4}
    assert composite(parts, w, normalise=True).tolist() == pytest.approx([0.381176, 0.4, 0.6], abs=1e-6)
    assert composite(parts, w, normalise=False).tolist() == pytest.approx([0.28, 0.22, 0.58])
    assert minmax(np.array([0.3, 0.3])).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="no values for weighted objective"):
        composite(parts, {"novelty": 1.0}, normalise=True)


def _answer(g, t, score, call=0):
    return {
        "generator": g,
        "index": call,
        "call": call,
        "test_taker": t,
        "score": score,
        "item": f"{g}-{call}",
    }


ANSWERS = [
    _answer("g0", "base", 1.0, 0), _answer("g0", "base", 0.5, 1), _answer("g0", "t0", None, 0),
    _answer("g0", "t0", 0.25, 1), _answer("g1", "base", 0.0, 0), _answer("g1", "t0", 0.75, 0),
]  # fmt: skip


def test_score_matrix_leaves_failed_judgements_out_of_the_mean():
    m, judged, failed = score_matrix(ANSWERS, ["g0", "g1", "g2"], ["base", "t0"])
    assert m[:2].tolist() == [[0.75, 0.25], [0.0, 0.75]]
    assert np.isnan(m[2]).all()
    assert judged.tolist() == [[2, 1], [1, 1], [0, 0]]
    assert failed.tolist() == [[0, 1], [0, 0], [0, 0]]
    sets = set_matrices(ANSWERS, ["g0", "g1"], ["base", "t0"], 2)
    assert sets.shape == (2, 2, 2)
    assert sets[0, 0, 0] == 1.0 and np.isnan(sets[0, 0, 1])  # call 0 of g0: t0's judgement failed
    assert sets[0, 1].tolist() == [0.0, 0.75]
    assert sets[1][0].tolist() == [0.5, 0.25]


def test_compute_objectives_components_empty_generators_and_composite():
    res = compute_objectives(
        ANSWERS, ["g0", "g1", "g2"], ["base", "t0"], objective="composite", components=["difficulty", "separation"],
        weights={"difficulty": 0.5, "separation": 0.5}, normalise=False,
    )  # fmt: skip
    # g0: m = (.75, .25) → difficulty .25, separation .5; g1: (0, .75) → .25, .75; g2 empty → 0, 0
    assert res.components["difficulty"] == pytest.approx([0.25, 0.25, 0.0])
    assert res.components["separation"] == pytest.approx([0.5, 0.75, 0.0])
    assert res.utilities == pytest.approx([0.375, 0.5, 0.0])
    assert res.empty_generators == ["g2"]
    with pytest.raises(ScoringError, match="generator g2: no item could be parsed"):
        compute_objectives(
            ANSWERS,
            ["g0", "g1", "g2"],
            ["base", "t0"],
            objective="difficulty",
            components=["difficulty"],
            on_empty_generator="error",
        )
    with pytest.raises(ScoringError, match="novelty needs"):
        compute_objectives(ANSWERS, ["g0", "g1"], ["base", "t0"], objective="novelty", components=["novelty"])
    nov = compute_objectives(
        ANSWERS,
        ["g0", "g1"],
        ["base", "t0"],
        objective="novelty",
        components=["novelty"],
        reference=[0.5, 0.5],
    )
    assert nov.utilities == pytest.approx(
        [entropy([0.5, 0.5], [0.75, 0.25]), entropy([0.5, 0.5], [1e-6, 0.75])]
    )
    con = compute_objectives(
        ANSWERS, ["g0", "g1"], ["base", "t0"], objective="consistency", components=["consistency"], n_sets=2
    )
    assert con.undefined == {"consistency": ["g0", "g1"]}  # g0's set 0 lacks a t0 score; g1 has one set
    assert con.utilities == [0.0, 0.0]


def test_a_test_taker_with_only_failed_judgements_is_an_error():
    answers = [_answer("g0", "base", 0.5), _answer("g0", "t0", None)]
    with pytest.raises(ScoringError, match=r"every judgement of test taker\(s\) \['t0'\] failed"):
        compute_objectives(answers, ["g0"], ["base", "t0"], objective="difficulty", components=["difficulty"])
