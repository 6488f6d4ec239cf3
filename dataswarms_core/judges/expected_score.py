"""The expected-score judge: one forward pass, probability-weighted score (docs/method.md §3)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ModelError
from ..generation import GenerationBackend, GenerationRequest
from ..prompts import JUDGE_REPLY_PREFIX, SCORE_MAX, SCORE_MIN, judge_messages
from .base import Judgement


class ExpectedScoreJudge:
    """The expected-score judge: one forward pass, probability-weighted score (docs/method.md §3).

    The judge model is asked for "Score: n" with n from 1 to 9 and the reply is opened with ``"Score: "``;
    with p_n the next-token probability of the digit n, the score is
    ``(Σ_n p_n·n / Σ_n p_n − 1) / 8`` ∈ [0, 1]. The scale is 1–9 because each of its numbers is a single
    token (10 would start with the token of 1). Deterministic; a judgement is missing only when
    ``Σ_n p_n`` underflows to 0. ``detail["mass"] = Σ_n p_n`` shows how well the judge keeps to the format.

    Args:
        backend: a backend whose ``"__base__"`` (or ``adapter``) rows are the judge model.
        domain: the task's domain phrase (selects the task hint).
        batch_size: rows per forward pass.
        adapter: which model of the backend judges (default the base model).

    Raises:
        ModelError: a digit 1..9 is not a single token of the tokenizer.
    """

    name = "expected-score"

    def __init__(
        self,
        backend: GenerationBackend,
        tokenizer,
        domain: str,
        batch_size: int = 16,
        adapter: str = "__base__",
    ) -> None:
        self.backend = backend
        self.domain = domain
        self.batch_size = batch_size
        self.adapter = adapter
        self.token_ids = []
        for n in range(SCORE_MIN, SCORE_MAX + 1):
            ids = tokenizer.encode(str(n), add_special_tokens=False)
            if len(ids) != 1:
                raise ModelError(
                    f"expected-score judge: '{n}' is {len(ids)} tokens in this tokenizer, expected 1"
                )
            self.token_ids.append(ids[0])

    def judge(
        self, queries: Sequence[str], responses: Sequence[str], references: Sequence[str | None] | None = None
    ) -> list[Judgement]:
        requests = [
            GenerationRequest(
                judge_messages(q, r, self.domain), adapter=self.adapter, reply_prefix=JUDGE_REPLY_PREFIX
            )
            for q, r in zip(queries, responses, strict=True)
        ]
        probs = self.backend.next_token_probs(requests, self.token_ids, batch_size=self.batch_size)  # (N, 9)
        values = range(SCORE_MIN, SCORE_MAX + 1)
        out = []
        for row in probs.tolist():
            mass = sum(row)
            if mass <= 0.0:
                out.append(Judgement(None, {"mass": 0.0}))
                continue
            expected = sum(p * n for p, n in zip(row, values, strict=True)) / mass  # in [1, 9]
            out.append(Judgement((expected - SCORE_MIN) / (SCORE_MAX - SCORE_MIN), {"mass": mass}))
        return out
