"""The generative LLM judge: the judge model writes "Score: n" (docs/method.md §3)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..generation import GenerationBackend, GenerationRequest
from ..prompts import JUDGE_REPLY_PREFIX, judge_messages
from ..seeding import derive_seed
from .base import Judgement

GENERATIVE_LOW, GENERATIVE_HIGH = 1, 10
_SCORE_PATTERN = re.compile(r"score\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def parse_score(reply: str, low: int = GENERATIVE_LOW, high: int = GENERATIVE_HIGH) -> float | None:
    """The n of the first "Score: n" in ``reply`` (case-insensitive, bold markers tolerated), or None when
    there is none or it lies outside [low, high]."""
    match = _SCORE_PATTERN.search(reply)
    if not match:
        return None
    value = float(match.group(1))
    return value if low <= value <= high else None


class GenerativeJudge:
    """The generative LLM judge (docs/method.md §3): the judge model writes "Score: n", n in 1..10, score n / 10.

    A reply with no score (or one out of range) is asked again, up to ``retries`` more times, sampled at
    ``retry_temperature`` with a fresh seed; then the judgement is recorded as missing (score None) — never
    a silent default. A request that fails at an endpoint (after the client's own retries) counts as an
    unparsable reply; a judgement for which the model never answered at all raises
    :class:`~dataswarms_core.openai_backend.EndpointError` (transient: the scoring task is retried) instead of
    being recorded as missing. ``detail["attempts"]`` records how many calls a judgement took.

    Args:
        backend: any :class:`GenerationBackend` (local model or OpenAI-compatible endpoint).
        domain: the task's domain phrase (selects the task hint).
        retries: extra attempts for unparsable replies (≥ 0).
        max_new_tokens: length limit of a judge reply.
        adapter: which model of the backend judges (``"__base__"``: the base model / the endpoint's model).
        seed: seeds the first (greedy) pass and the retries.
        batch_size: requests per backend call.
    """

    name = "generative"

    def __init__(
        self,
        backend: GenerationBackend,
        domain: str,
        retries: int = 2,
        max_new_tokens: int = 16,
        adapter: str = "__base__",
        seed: int = 0,
        batch_size: int = 16,
        retry_temperature: float = 0.7,
    ) -> None:
        if retries < 0:
            raise ValueError(f"judge retries must be >= 0, got {retries}")
        self.backend, self.domain, self.retries = backend, domain, retries
        self.max_new_tokens, self.adapter, self.seed = max_new_tokens, adapter, seed
        self.batch_size, self.retry_temperature = batch_size, retry_temperature

    def judge(
        self, queries: Sequence[str], responses: Sequence[str], references: Sequence[str | None] | None = None
    ) -> list[Judgement]:
        requests = [
            GenerationRequest(
                judge_messages(q, r, self.domain, GENERATIVE_LOW, GENERATIVE_HIGH),
                adapter=self.adapter,
                reply_prefix=JUDGE_REPLY_PREFIX,
            )
            for q, r in zip(queries, responses, strict=True)
        ]
        scores: list[float | None] = [None] * len(requests)
        attempts = [0] * len(requests)
        transport_failures = [0] * len(requests)
        prefix = JUDGE_REPLY_PREFIX if getattr(self.backend, "supports_reply_prefix", True) else ""
        pending = list(range(len(requests)))
        for attempt in range(self.retries + 1):
            if not pending:
                break
            replies = self.backend.generate(
                [requests[i] for i in pending],
                max_new_tokens=self.max_new_tokens,
                temperature=0.0 if attempt == 0 else self.retry_temperature,
                top_p=1.0,
                seed=derive_seed(self.seed, "judge", attempt),
                batch_size=self.batch_size,
                return_exceptions=True,  # an endpoint failure is a failed attempt, not a crash
            )
            still = []
            for i, reply in zip(pending, replies, strict=True):
                attempts[i] += 1
                transport_failures[i] += reply is None
                value = None if reply is None else parse_score(prefix + reply)
                if value is None:
                    still.append(i)
                else:
                    scores[i] = value / GENERATIVE_HIGH
            pending = still
        unreachable = [i for i in pending if transport_failures[i] == attempts[i]]
        if unreachable:
            from ..openai_backend import EndpointError

            raise EndpointError(
                f"generative judge: the judge model never answered for {len(unreachable)} judgement(s) after "
                f"{self.retries + 1} attempts each (endpoint down?); nothing was scored",
                transient=True,
            )
        return [Judgement(s, {"attempts": float(a)}) for s, a in zip(scores, attempts, strict=True)]
