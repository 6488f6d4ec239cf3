"""The reference judge for items with a reference answer: numeric or exact match (docs/method.md §3)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .base import Judgement

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
