"""The expected-score judge on scripted next-token probabilities (docs/method.md §3)."""

import pytest
from fakes import ScriptedBackend

from dataswarms_core.errors import ModelError
from dataswarms_core.judges import ExpectedScoreJudge


class DigitTokenizer:
    def __init__(self, split: str | None = None):
        self.split = split

    def encode(self, text, add_special_tokens=False):
        return [100, 101] if text == self.split else [ord(text)]


def test_expected_score_values():
    rows = [
        [0.5, 0, 0, 0, 0, 0, 0, 0, 0.5],  # E[n] = 5 → (5-1)/8 = 0.5
        [0, 0, 0, 0, 0, 0, 0.2, 0, 0],  # only 7, mass 0.2 → (7-1)/8 = 0.75
        [0, 0, 0, 0, 0, 0, 0, 0, 0.9],  # 9 → 1.0
        [0.3, 0, 0, 0, 0, 0, 0, 0, 0],  # 1 → 0.0
        [0.0] * 9,  # no mass on the score tokens: a failed judgement
    ]
    backend = ScriptedBackend(probs=rows)
    judge = ExpectedScoreJudge(backend, DigitTokenizer(), "grade-school math word problems", batch_size=4)
    out = judge.judge(["q"] * 5, ["r"] * 5)
    (call,) = backend.calls
    assert call.method == "next_token_probs" and len(call.requests) == 5
    assert call.kwargs == {"token_ids": [ord(str(n)) for n in range(1, 10)], "batch_size": 4}
    assert [j.score for j in out[:4]] == pytest.approx([0.5, 0.75, 1.0, 0.0])
    assert out[4].score is None
    assert out[1].detail["mass"] == pytest.approx(0.2)
    req = backend.requests[0]
    assert req.reply_prefix == "Score: " and req.adapter == "__base__"
    assert "Check the final answer and the steps." in req.messages[0]["content"]


def test_multi_token_digit_is_refused():
    with pytest.raises(ModelError, match="'7' is 2 tokens"):
        ExpectedScoreJudge(ScriptedBackend(probs=[]), DigitTokenizer(split="7"), "math")


def test_parse_score_good_malformed_and_out_of_range():
    from dataswarms_core.judges import parse_score

    assert parse_score("Score: 7") == 7.0
    assert parse_score("**Score:** 10 because ...") == 10.0
    assert parse_score("score=3.5") == 3.5
    assert parse_score("Score: 11") is None and parse_score("Score: 0") is None
    assert parse_score("I would say seven") is None


def test_generative_judge_retries_then_records_missing():
    from dataswarms_core.judges import GenerativeJudge

    # The reply continues the prefix "Score: ". Replies are consumed in request order; None stands for a
    # request that failed at the endpoint. Round 1: ok, malformed, out of range, endpoint failure;
    # round 2 retries the last three, round 3 the two still without a score.
    backend = ScriptedBackend(
        {"__base__": ["8", "great answer", "12", None] + ["not sure", "3", None] + ["still no score", "nope"]}
    )
    judge = GenerativeJudge(backend, "math", retries=2, seed=1)
    out = judge.judge(["q"] * 4, ["r"] * 4)
    assert [j.score for j in out] == [0.8, None, 0.3, None]
    assert [j.detail["attempts"] for j in out] == [1, 3, 2, 3]
    assert [(len(c.requests), c.kwargs["temperature"]) for c in backend.calls] == [
        (4, 0.0),
        (3, 0.7),
        (2, 0.7),
    ]  # greedy first, then sampled retries of the failures
    assert all(c.kwargs["return_exceptions"] for c in backend.calls)
    no_retry = GenerativeJudge(ScriptedBackend(["x"]), "math", retries=0).judge(["q"], ["r"])
    assert no_retry[0].score is None


def test_reference_judge_on_gsm8k_style_numbers():
    from dataswarms_core.judges import ReferenceJudge, extract_number

    responses = ["72", "$72.00", "72 clips", "She sold 48 + 24 = 72 clips.", "71", "seventy-two", "1,234"]
    refs = ["72", "72", "72", "72", "72", "72", "1234"]
    assert [j.score for j in ReferenceJudge().judge(["q"] * 7, responses, refs)] == [1, 1, 1, 1, 0, 0, 1]
    text = ReferenceJudge().judge(["q", "q", "q"], ["The Paris.", "London", "x"], ["paris", "Paris", None])
    assert [j.score for j in text] == [1.0, 0.0, None]  # no reference: a missing judgement
    assert extract_number("no digits") is None and extract_number("-3.5 degrees") == -3.5


def prefixless_backend(replies):
    """Like an endpoint: the reply prefix is not sent, replies are complete."""
    return ScriptedBackend(replies, supports_reply_prefix=False)


def test_generative_judge_without_reply_prefix_reads_the_whole_reply():
    from dataswarms_core.judges import GenerativeJudge

    out = GenerativeJudge(
        prefixless_backend(["1. The answer is right. Score: 8", "7"]), "math", retries=0
    ).judge(["q", "q"], ["r", "r"])
    assert out[0].score == 0.8  # not the "1." of the list
    assert out[1].score is None  # a bare number is not a "Score: n" reply


def test_generative_judge_raises_transient_error_when_the_endpoint_never_answers():
    from dataswarms_core.errors import is_transient_error
    from dataswarms_core.judges import GenerativeJudge
    from dataswarms_core.openai_backend import EndpointError

    judge = GenerativeJudge(prefixless_backend([None, "Score: 6"] + [None]), "math", retries=1)
    with pytest.raises(EndpointError, match="1 judgement") as info:
        judge.judge(["q", "q"], ["r", "r"])
    assert is_transient_error(info.value)  # Prefect retries the scoring task
