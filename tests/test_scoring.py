"""compute_objectives looks objectives up in the registry and hands each only what it needs
(docs/method.md §4)."""

import numpy as np
import pytest

from dataswarms_core.errors import ScoringError
from dataswarms_core.objectives import (
    OBJECTIVES,
    BM25Corpus,
    ObjectiveInputs,
    consistency,
    difficulty,
    novelty,
    realistic,
    separation,
)
from dataswarms_core.registry import UnknownNameError
from dataswarms_core.scoring import compute_objectives, score_matrix, set_matrices


def _answers():
    """g0 and g1 each with two calls (two item sets) judged for base and t0; g2 wrote nothing."""
    rows = []
    for g, scores in (("g0", [(1.0, 0.5), (0.5, 0.0)]), ("g1", [(0.25, 0.75), (0.0, 1.0)])):
        for call, (base, t0) in enumerate(scores):
            rows.append(
                {"generator": g, "test_taker": "base", "score": base, "call": call, "item": f"{g}-q{call}"}
            )
            rows.append(
                {"generator": g, "test_taker": "t0", "score": t0, "call": call, "item": f"{g}-q{call}"}
            )
    return rows


GENS, TAKERS = ["g0", "g1", "g2"], ["base", "t0"]


@pytest.fixture
def spy():
    """An objective that records the inputs it was given (needs nothing)."""
    seen = []

    @OBJECTIVES.register("spy", source="tests", summary="records its inputs", lowest=0.0)
    def _spy(inputs: ObjectiveInputs) -> np.ndarray:
        seen.append(inputs)
        return np.zeros(len(inputs.m))

    yield seen
    OBJECTIVES.unregister("spy")


def test_inputs_are_computed_and_passed_only_when_needed(spy):
    corpus = BM25Corpus(["How many apples?", "Why is the sky blue?"], neighbours=1)
    kwargs = dict(reference=[0.5, 0.5], items=[["a"], ["b"], []], corpus=corpus, n_sets=2, settings="scoring")
    compute_objectives(_answers(), GENS, TAKERS, objective="spy", components=["spy"], **kwargs)
    alone = spy[-1]
    assert alone.m.shape == (2, 2)  # G' = 2 non-empty generators
    assert (alone.set_matrices, alone.reference, alone.items, alone.corpus) == (None, None, None, None)
    assert alone.settings == "scoring"
    compute_objectives(
        _answers(), GENS, TAKERS, objective="spy", components=["spy", "consistency", "novelty", "realistic"],
        **kwargs,
    )  # fmt: skip
    full = spy[-1]
    assert full.set_matrices.shape == (2, 2, 2) and full.reference == [0.5, 0.5]
    assert full.items == [["a"], ["b"]] and full.corpus is corpus  # the empty generator is left out


def test_registered_objectives_give_the_pure_functions_values():
    corpus = BM25Corpus(["g0 q0 apples", "g1 question about the sky"], neighbours=1)
    items = [["g0-q0", "g0-q1"], ["g1-q0", "g1-q1"]]
    res = compute_objectives(
        _answers(), GENS[:2], TAKERS, objective="difficulty",
        components=["difficulty", "separation", "novelty", "consistency", "realistic"],
        reference=[0.7, 0.2], n_sets=2, items=items, corpus=corpus,
    )  # fmt: skip
    m = score_matrix(_answers(), GENS[:2], TAKERS)[0]
    expected = {
        "difficulty": difficulty(m),
        "separation": separation(m),
        "novelty": novelty(m, [0.7, 0.2]),
        "consistency": consistency(set_matrices(_answers(), GENS[:2], TAKERS, 2)),
        "realistic": realistic(items, corpus),
    }
    for name, values in expected.items():
        assert res.components[name] == list(values), name  # identical numbers, not just close
    assert res.utilities == res.components["difficulty"]


@pytest.mark.parametrize(
    ("components", "kwargs", "message"),
    [
        (["novelty"], {}, "novelty needs the test takers' mean scores on real dev items"),
        (["realistic"], {"items": [["x"], ["y"], []]}, "realistic needs a corpus of real user queries"),
        (["realistic"], {}, "realistic needs a corpus of real user queries and the generators' items"),
        (["separation"], {"takers": ["base"]}, "separation needs at least 2 test takers"),
    ],
)
def test_a_missing_input_is_a_scoring_error(components, kwargs, message):
    takers = kwargs.pop("takers", TAKERS)
    answers = [a for a in _answers() if a["test_taker"] in takers]
    with pytest.raises(ScoringError, match=message):
        compute_objectives(answers, GENS, takers, objective=components[0], components=components, **kwargs)


def test_unknown_and_missing_objectives():
    with pytest.raises(UnknownNameError, match="unknown objective 'banana'; known: difficulty, separation"):
        compute_objectives(
            _answers(), GENS, TAKERS, objective="difficulty", components=["difficulty", "banana"]
        )
    with pytest.raises(ScoringError, match="objective 'separation' is not among the components"):
        compute_objectives(_answers(), GENS, TAKERS, objective="separation", components=["difficulty"])


def test_empty_and_undefined_generators_get_the_entrys_lowest_value():
    @OBJECTIVES.register("odd", source="tests", summary="NaN for the first generator", lowest=-2.0)
    def odd(inputs: ObjectiveInputs) -> np.ndarray:
        return np.array([np.nan, *([1.0] * (len(inputs.m) - 1))])

    try:
        res = compute_objectives(_answers(), GENS, TAKERS, objective="odd", components=["odd"])
    finally:
        OBJECTIVES.unregister("odd")
    assert res.utilities == [-2.0, 1.0, -2.0]
    assert res.undefined == {"odd": ["g0"]} and res.empty_generators == ["g2"]
