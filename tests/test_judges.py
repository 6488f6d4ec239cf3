"""The expected-score judge on scripted next-token probabilities (DESIGN §3)."""

import pytest
import torch

from dataswarms_core.errors import ModelError
from dataswarms_core.judges import ExpectedScoreJudge


class ScriptedBackend:
    """Returns fixed probabilities for the digits 1..9 and records the requests."""

    def __init__(self, rows):
        self.rows = rows
        self.requests = []

    def next_token_probs(self, requests, token_ids, *, batch_size):
        self.requests.extend(requests)
        assert len(token_ids) == 9
        return torch.tensor(self.rows[: len(requests)], dtype=torch.float32)


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
    backend = ScriptedBackend(rows)
    judge = ExpectedScoreJudge(backend, DigitTokenizer(), "grade-school math word problems", batch_size=4)
    out = judge.judge(["q"] * 5, ["r"] * 5)
    assert [j.score for j in out[:4]] == pytest.approx([0.5, 0.75, 1.0, 0.0])
    assert out[4].score is None
    assert out[1].detail["mass"] == pytest.approx(0.2)
    req = backend.requests[0]
    assert req.reply_prefix == "Score: " and req.adapter == "__base__"
    assert "Check the final answer and the steps." in req.messages[0]["content"]


def test_multi_token_digit_is_refused():
    with pytest.raises(ModelError, match="'7' is 2 tokens"):
        ExpectedScoreJudge(ScriptedBackend([]), DigitTokenizer(split="7"), "math")
