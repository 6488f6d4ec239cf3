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


# Kind: judge replies whose verdict the parser missed or misread ("Inputs from outside that break it").


def test_generative_judge_issue_examples():
    from dataswarms_core.generation import Reply
    from dataswarms_core.judges import GenerativeJudge, parse_score

    # As the judge reads them: the backend's reply continues the prefix "Score: ".
    assert parse_score("Score: **Score**: 3") == 3.0
    assert parse_score("Score: Rubric: score 1 = wrong, score 10 = perfect. Score: 7") == 7.0
    assert parse_score(Reply("Score: 1", truncated=True)) is None  # the model may have been writing 10

    bold = GenerativeJudge(ScriptedBackend(["**Score**: 3"]), "math", retries=2).judge(["q"], ["r"])
    assert bold[0].score == pytest.approx(0.3) and bold[0].detail["attempts"] == 1
    rubric = GenerativeJudge(
        prefixless_backend(["Rubric: score 1 = wrong, score 10 = perfect. Score: 7"]), "math", retries=0
    ).judge(["q"], ["r"])
    assert rubric[0].score == pytest.approx(0.7)
    # A reply cut mid-number ("Score: 1|0") is no verdict: asked again, and the complete reply counts.
    backend = ScriptedBackend([Reply("1", truncated=True), "10"])
    cut = GenerativeJudge(backend, "math", retries=2).judge(["q"], ["r"])
    assert cut[0].score == 1.0 and cut[0].detail["attempts"] == 2
    never = GenerativeJudge(
        prefixless_backend([Reply("Score: 1", truncated=True)] * 3), "math", retries=2
    ).judge(["q"], ["r"])
    assert never[0].score is None and never[0].detail["attempts"] == 3  # recorded missing, not 0.1


@pytest.mark.parametrize(
    ("reply", "want"),
    [
        ("Score: 7", 7.0),
        ("Score = 6", 6.0),
        ("Score:7", 7.0),
        ("SCORE: 7", 7.0),
        ("**Score:** 8", 8.0),
        ("**Score**: 3", 3.0),
        ("*Score*: 2", 2.0),
        ("__Score__: 2", 2.0),
        ("Score: **7**", 7.0),
        ("Score: [7]", 7.0),
        ("Score - 5", 5.0),
        ("Score: 7 — solid work", 7.0),
        ("Rating: 7/10", 7.0),
        ("Score: 8 / 10", 8.0),
        ("Score: 7 out of 10", 7.0),
        ("Verdict: 6/10", 6.0),
        ("Final score: 9", 9.0),
        ("Overall rating: 4", 4.0),
        ("## Score: 4", 4.0),
        ("### Final Score\n8", 8.0),
        ("Score (1-10): 6", 6.0),
        ("Score out of 10: 6", 6.0),
        ("The score is 5.", 5.0),
        ("The score is: 5", 5.0),
        ("I give it a score of 8.", 8.0),
        ("Final score 7", 7.0),
        ("Score: 3.5", 3.5),
        ("Score: 7 for correctness, minus units", 7.0),
        ("1. The answer is right.\n2. Units are given.\nScore: 8", 8.0),
        # the LAST verdict, not the first number after the word "score"
        ("Score: Rubric: score 1 = wrong, score 10 = perfect. Score: 7", 7.0),
        ("Score: 7\n\nOn reflection, final score: 8", 8.0),
        ("Score: 9\nA score of 1 means the answer is wrong.", 9.0),
        ("Score: 8\nIt would score 10 if it gave units.", 8.0),
        ("Score: 6\nConfidence: score 90%", 6.0),
    ],
)
def test_parse_score_reads_the_verdict(reply, want):
    from dataswarms_core.judges import parse_score

    assert parse_score(reply) == want


@pytest.mark.parametrize(
    "reply",
    [
        "Score: 12",
        "Score: 0",
        "Score: -3",
        "Score: 4/5",  # another scale
        "Score: 7/100",
        "Score: 70%",
        "Score: 1-10",  # the scale, not a verdict
        "Score: 7\n\nOverall rating: 11",  # the last verdict is out of range: no fallback to the first
        "score 1 = wrong, score 10 = perfect",
        "A score of 10 means fully correct.",
        "It would score 7 if it showed its steps.",
        "score 7 because the steps are right",  # no separator and not at the line's end
        "Score: \n1. The answer is right.\n2. Units are given.",  # a list after the label
        "Scores: 7",
        "Subscore: 7",
        "7/10",  # no label
        "I would say seven",
    ],
)
def test_parse_score_refuses_what_is_no_verdict(reply):
    from dataswarms_core.judges import parse_score

    assert parse_score(reply) is None


@pytest.mark.parametrize(
    ("reply", "want"),
    [
        ("Score: 1", None),  # could be 10
        ("Score: 7.", None),  # could be 7.5
        ("Score: 7 ", None),
        ("Score: 7/1", None),  # could be 7/100
        ("Score: 7 out of", None),
        ("Score: 8. Final score:", None),  # a later verdict cut before its number
        ("Score: ", None),
        ("Score: 10\n", 10.0),
        ("Score: 7.\n", 7.0),
        ("Score: **7**", 7.0),
        ("Rating: 8/10\n\n", 8.0),
        ("Score: 8\nThe explanation is cl", 8.0),
    ],
)
def test_parse_score_on_a_reply_cut_at_the_token_limit(reply, want):
    from dataswarms_core.generation import Reply
    from dataswarms_core.judges import parse_score

    assert parse_score(Reply(reply, truncated=True)) == want
    assert parse_score(reply, truncated=True) == want  # told explicitly (the judge adds the prefix)
