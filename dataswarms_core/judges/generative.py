"""The generative LLM judge: the judge model writes "Score: n" (docs/method.md §3)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..generation import GenerationBackend, GenerationRequest
from ..prompts import JUDGE_REPLY_PREFIX, judge_messages
from ..seeding import derive_seed
from .base import Judgement

GENERATIVE_LOW, GENERATIVE_HIGH = 1, 10

# A verdict label: "Score", "Rating", "Verdict", optionally "Final" / "Overall" / "Total" before it. Not
# inside a word ("Subscore", "scores").
_LABEL = re.compile(
    r"(?<![A-Za-z0-9-])(?:(?:final|overall|total)[ \t]+)?(?:score|rating|verdict)(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# What may follow a label up to its number: closing emphasis ("**Score**: 3"), a scale qualifier ("Score
# (1-10): 7", "Score out of 10: 7"), a separator (":", "=", a dash, "is", "of"; none at all is a weak
# verdict, see below), emphasis, brackets or a line break before the number ("Score: **7**", "## Score\n7").
_VERDICT_REST = re.compile(
    r"""[*_]*
    (?:[ \t]*\([^()\n]{0,20}\)|[ \t]+out[ \t]+of[ \t]+\d+)?
    [*_]*
    (?P<sep>[ \t]*(?:\b(?:is|of)\b[ \t]*:?|:|=|-|–|—))?
    [\s*_\[(]*
    (?P<num>\d+(?:\.\d+)?)(?![\d.]?\d)
    (?:[ \t]*/[ \t]*(?P<den>\d+)|[ \t]+out[ \t]+of[ \t]+(?P<den2>\d+))?""",
    re.IGNORECASE | re.VERBOSE,
)
# After a number, what makes it a rubric entry ("score 1 = wrong", "a score of 1 means ..."), a range
# ("Score: 1-10") or a hypothetical ("would score 9 if ...") rather than a verdict.
_NOT_A_VERDICT = re.compile(
    r"""[ \t]*(?:
        =|%|(?:-|–|—|to)[ \t]*\d
        |(?:means|indicates|if|when|unless|would|could|is[ \t]+(?:for|given|reserved))\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# A weak verdict (no separator, or the number on a later line) must end its line.
_ENDS_LINE = re.compile(r"[ \t*_)\]]*\.?[ \t*_]*(?:\n|\Z)")
# At the end of a reply cut at the token limit, what may still be part of an unfinished number or scale
# ("Score: 1" could be 10, "7." could be 7.5, "7/1" or "7 out of 1" could be 7/100).
_CUT_AFTER_NUMBER = re.compile(r"[ \t]*(?:[.,/]|o|ou|out|out[ \t]+o|out[ \t]+of)?[ \t]*")
# A label left without its number at the end of a cut reply ("... Final score:").
_DANGLING_LABEL = re.compile(r"[*_]*(?:[ \t]*\([^()\n]*\)?)?[*_]*[ \t]*(?::|=|-|–|—|is|of)?[\s*_\[(]*")


def parse_score(
    reply: str, low: int = GENERATIVE_LOW, high: int = GENERATIVE_HIGH, truncated: bool | None = None
) -> float | None:
    """The judge's verdict n in ``reply``, or None when there is none.

    A verdict is a label ("Score", "Rating", "Verdict", "Final score", ...; case-insensitive, markdown
    emphasis or a header around it tolerated) followed by a separator and a number: "Score: 7", "Score = 7",
    "**Score:** 7", "**Score**: 7", "Score - 7", "Rating: 7/10", "Score: 7 out of 10", "Score (1-10): 7",
    "The score is 7", "a score of 7"; without a separator ("Final score 7") only when the number ends its
    line. The LAST verdict of the reply counts (rubric text and reasoning come before it); numbers of rubric
    phrases ("score 1 = wrong", "a score of 10 means ..."), ranges ("Score: 1-10") and hypotheticals ("would
    score 9 if ...") are not verdicts.

    None when there is no verdict, when the last one lies outside [low, high] or is on another scale
    ("Score: 4/5", "Score: 70%"), and when the reply was cut at the token limit (``truncated``; default:
    the reply's own ``truncated`` attribute) before its verdict was complete: the number runs to the end of
    the text ("Score: 1" may have been going to be 10) or a label is left without its number.
    """
    if truncated is None:
        truncated = bool(getattr(reply, "truncated", False))
    text = str(reply)
    verdict: re.Match[str] | None = None
    last_label_end = -1
    for label in _LABEL.finditer(text):
        last_label_end = label.end()
        match = _VERDICT_REST.match(text, label.end())
        if not match:
            continue
        after = text[match.end() :]
        if _NOT_A_VERDICT.match(after):
            continue
        scaled = match.group("den") is not None or match.group("den2") is not None
        # Without a separator ("Final score 7"), or with the number on a later line ("Score:\n7"), the
        # number must end its line: "Score:\n1. The answer ..." is a list, not a verdict.
        weak = not match.group("sep") or "\n" in text[label.end() : match.start("num")]
        if weak and not scaled and not _ENDS_LINE.match(after):
            continue
        verdict = match
    if truncated:
        if verdict is None:
            return None
        if _CUT_AFTER_NUMBER.fullmatch(text, verdict.end()):
            return None  # the number (or its scale) may have been cut
        if last_label_end > verdict.end() and _DANGLING_LABEL.fullmatch(text, last_label_end):
            return None  # a later verdict was cut before its number
    if verdict is None:
        return None
    den = verdict.group("den") or verdict.group("den2")
    if den is not None and int(den) != high:
        return None
    value = float(verdict.group("num"))
    return value if low <= value <= high else None


class GenerativeJudge:
    """The generative LLM judge (docs/method.md §3): the judge model writes "Score: n", n in 1..10, score n / 10.

    A reply with no score (or one out of range) is asked again, up to ``retries`` more times, sampled at
    ``retry_temperature`` with a fresh seed; then the judgement is recorded as missing (score None) — never
    a silent default. A reply cut at the token limit before its verdict was complete (see
    :func:`parse_score`) counts as one with no score. A request that fails at an endpoint (after the client's own retries) counts as an
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
                value = (
                    None
                    if reply is None
                    else parse_score(prefix + reply, truncated=bool(getattr(reply, "truncated", False)))
                )
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
