"""Judges score a (query, response) pair in [0, 1] (docs/method.md §3).

:data:`JUDGES` registers a factory per judge name (``expected-score``, ``generative``, ``reference``);
:func:`build_judge` builds one from the run's :class:`JudgeContext`. Each judge lives in its own module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ScoringError
from ..generation import GenerationBackend
from ..registry import Registry
from .base import Judge, Judgement
from .expected_score import ExpectedScoreJudge
from .generative import GENERATIVE_HIGH, GENERATIVE_LOW, GenerativeJudge, parse_score
from .reference import ReferenceJudge, extract_number, normalise_answer

if TYPE_CHECKING:
    from ..config import JudgeConfig

__all__ = [
    "GENERATIVE_HIGH",
    "GENERATIVE_LOW",
    "JUDGES",
    "ExpectedScoreJudge",
    "GenerativeJudge",
    "Judge",
    "JudgeContext",
    "Judgement",
    "ReferenceJudge",
    "build_judge",
    "extract_number",
    "normalise_answer",
    "parse_score",
]


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
        from ..backends import endpoint_backend

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
