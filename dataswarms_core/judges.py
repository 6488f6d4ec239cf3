"""Judges score a (query, response) pair in [0, 1] (docs/method.md §3).

:data:`JUDGES` registers a factory per judge name (``expected-score``, ``generative``, ``reference``);
:func:`build_judge` builds one from the run's :class:`JudgeContext`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ModelError, ScoringError
from .generation import GenerationBackend, GenerationRequest
from .prompts import JUDGE_REPLY_PREFIX, SCORE_MAX, SCORE_MIN, judge_messages
from .registry import Registry
from .seeding import derive_seed

if TYPE_CHECKING:
    from .config import JudgeConfig


@dataclass(frozen=True)
class Judgement:
    """One judgement.

    Attributes:
        score: in [0, 1]; None when the judge failed (counted, left out of means, never replaced).
        detail: judge-specific diagnostics (e.g. ``mass``: probability on the score tokens).
    """

    score: float | None
    detail: dict[str, float] = field(default_factory=dict)


class Judge(Protocol):
    """Scores answers; ``name`` identifies it in metrics."""

    name: str

    def judge(
        self, queries: Sequence[str], responses: Sequence[str], references: Sequence[str | None] | None = None
    ) -> list[Judgement]:
        """One :class:`Judgement` per (query, response) pair, in order; ``references`` are reference
        answers where known (used by the reference judge, ignored by the others)."""
        ...


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
            from .openai_backend import EndpointError

            raise EndpointError(
                f"generative judge: the judge model never answered for {len(unreachable)} judgement(s) after "
                f"{self.retries + 1} attempts each (endpoint down?); nothing was scored",
                transient=True,
            )
        return [Judgement(s, {"attempts": float(a)}) for s, a in zip(scores, attempts, strict=True)]


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def extract_number(text: str) -> float | None:
    """The last number in ``text`` ("$1,234.50" → 1234.5; "72 clips" → 72.0), or None."""
    found = _NUMBER.findall(text.replace("$", ""))
    for token in reversed(found):
        try:
            return float(token.replace(",", ""))
        except ValueError:
            continue
    return None


def normalise_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (for exact-match comparison)."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


class ReferenceJudge:
    """The reference judge (docs/method.md §3) for items with a reference answer (real data): 1.0 or 0.0.

    When the reference is a number (GSM8K: "72"), the last number of the response is compared with it
    (``"72"``, ``"$72.00"``, ``"72 clips"`` and ``"so the answer is 72."`` all match; tolerance 1e-6
    relative); otherwise the normalised response must equal the normalised reference. An item without a
    reference cannot be judged: its judgement is missing (score None).
    """

    name = "reference"

    def judge(
        self, queries: Sequence[str], responses: Sequence[str], references: Sequence[str | None] | None = None
    ) -> list[Judgement]:
        if references is None:
            references = [None] * len(responses)
        out = []
        for response, reference in zip(responses, references, strict=True):
            if reference is None or not str(reference).strip():
                out.append(Judgement(None))
                continue
            expected = (
                extract_number(str(reference))
                if _NUMBER.fullmatch(str(reference).strip().replace("$", ""))
                else None
            )
            if expected is not None:
                got = extract_number(response)
                ok = got is not None and math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9)
            else:
                ok = normalise_answer(response) == normalise_answer(str(reference))
            out.append(Judgement(1.0 if ok else 0.0))
        return out


# -- the registry --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JudgeContext:
    """What a judge factory may use.

    Attributes:
        settings: the run's ``judge`` section (:class:`~dataswarms_core.config.JudgeConfig`).
        domain: the task's domain phrase (selects the prompt's task hint).
        seed: the judge's seed, already derived by the caller (e.g. ``derive_seed(run seed, stage)``).
        local: the run's local backend (base model + adapters), or None where there is none.
        tokenizer: the local backend's tokenizer, or None.
        batch_size: rows per backend call (``scoring.batch_size``).
    """

    settings: JudgeConfig
    domain: str
    seed: int
    local: GenerationBackend | None
    tokenizer: Any | None
    batch_size: int


JudgeFactory = Callable[[JudgeContext], Judge]
JUDGE_NEEDS = {
    "local_model": "the run's local base model",
    "token_probs": "next-token probabilities (a local model; an endpoint gives none)",
    "reference_answers": "each item's reference answer (only real dev items have one)",
}
JUDGES: Registry[JudgeFactory] = Registry("judge", known_needs=JUDGE_NEEDS)


def build_judge(name: str, ctx: JudgeContext) -> Judge:
    """Build the judge registered as ``name`` (docs/method.md §3).

    Raises:
        UnknownNameError: no judge of that name (the message lists the known ones).
        ScoringError: the judge needs the local model and ``ctx.local`` is None.
        ModelError: from the judge (e.g. a score digit that is not one token).
    """
    return JUDGES.get(name).impl(ctx)


def _local(ctx: JudgeContext, name: str) -> GenerationBackend:
    if ctx.local is None:
        raise ScoringError(f"the {name} judge needs the run's local model, and none was given")
    return ctx.local


@JUDGES.register(
    "expected-score", source="docs/method.md §3", needs=("local_model", "token_probs"),
    options=("scoring.batch_size",),
    summary=(
        'the base model is asked for "Score: n", n in 1..9; the score is the probability-weighted mean over '
        "the digit tokens, (E[n] − 1)/8, from one forward pass. Nothing to parse; a judgement is missing "
        "(counted) only when the probability on the digits underflows to 0; that probability is recorded "
        "per answer (`judge_detail.mass` in `answers.parquet`) and averaged in `scoring.json` "
        "(`mean_judge_mass`)"
    ),
)  # fmt: skip
def _expected_score_judge(ctx: JudgeContext) -> Judge:
    return ExpectedScoreJudge(
        _local(ctx, "expected-score"), ctx.tokenizer, ctx.domain, batch_size=ctx.batch_size
    )


@JUDGES.register(
    "generative", source="docs/method.md §3", needs=("local_model",),
    options=("judge.endpoint", "judge.retries", "judge.max_new_tokens", "scoring.batch_size"),
    summary=(
        'the judge model writes "Score: n", n in 1..10, score n/10; the local base model, or the model at '
        "`judge.endpoint` (then no local model is needed). No score or out of range: asked again up to "
        "`judge.retries` times, then recorded as missing and left out of means"
    ),
)  # fmt: skip
def _generative_judge(ctx: JudgeContext) -> Judge:
    s = ctx.settings
    if s.endpoint is not None:
        from .backends import endpoint_backend

        backend = endpoint_backend(s.endpoint)
    else:
        backend = _local(ctx, "generative")
    return GenerativeJudge(
        backend, ctx.domain, retries=s.retries, max_new_tokens=s.max_new_tokens, seed=ctx.seed,
        batch_size=ctx.batch_size,
    )  # fmt: skip


@JUDGES.register(
    "reference", source="docs/method.md §3", needs=("reference_answers",),
    summary=(
        'for items with a reference answer: the last number of the answer against a numeric reference ("72", '
        '"$72.00", "72 clips" match 72), else normalised exact match; an item without a reference is a '
        "missing judgement"
    ),
)  # fmt: skip
def _reference_judge(ctx: JudgeContext) -> Judge:
    return ReferenceJudge()
