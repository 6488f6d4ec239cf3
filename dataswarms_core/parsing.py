"""Parsing numbered items out of a generator's reply (docs/method.md §2)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A line that starts an item: optional markdown ("**", "#", "-", "*"), a number, then "." ")" or ":"
# followed by whitespace (so "3.5 litres" or "10:30" on a continuation line do not start an item).
_ITEM_START = re.compile(r"^\s*(?:[#>*-]+\s*)?(?:\*\*)?\s*(\d{1,3})\s*[.):](?:\*\*)?(?=\s|$)\s*(.*)$")
_LEADING_NUMBER = re.compile(r"^\s*\d{1,3}\s*[.)]\s+")
# An entry of nothing but numbers and numbering punctuation ("2.", "2. 1.", "(3)") has no item text.
_NO_TEXT = re.compile(r"[\d\s.,:;()\-]*")
# A line that gives away the answer: it ends the item and is dropped (counted), never folded into it.
_ANSWER_LINE = re.compile(
    r"^\s*(?:\*\*)?\s*(?:answer|solution|final answer)\s*(?:\*\*)?\s*[:：]", re.IGNORECASE
)


@dataclass
class ParseResult:
    """Items parsed from one reply.

    Attributes:
        items: parsed items, stripped, bold markers removed, at most ``expected``.
        missing: ``expected − len(items)`` when fewer were found (0 otherwise): counted as parse failures.
        extra: items beyond ``expected`` that were dropped.
        empty: numbered entries with no text (or only numbers and numbering punctuation, e.g. "2. 1."),
            dropped.
        answers_dropped: "Answer:" / "Solution:" lines after an item, dropped.
        trailing_dropped: non-numbered lines after a blank line that ended an item (sign-offs), dropped.
        truncated_dropped: 1 when the reply was cut at the token limit inside its last item, which was
            dropped (and counts as missing).
    """

    items: list[str] = field(default_factory=list)
    missing: int = 0
    extra: int = 0
    empty: int = 0
    answers_dropped: int = 0
    trailing_dropped: int = 0
    truncated_dropped: int = 0


def _clean(text: str) -> str:
    text = text.replace("**", "").replace("__", "")
    text = _LEADING_NUMBER.sub("", text)  # "1. 1. What ..." → "What ..."
    return " ".join(text.split()).strip()


def parse_numbered_items(reply: str, expected: int, truncated: bool | None = None) -> ParseResult:
    """Take the numbered items of ``reply``.

    Tolerates ``1.``, ``1)``, ``1:``, bold markers (``**1.** text``), a preamble before item 1, and items
    continued over several lines (joined with spaces). Text before the first numbered line is ignored. An
    item ends at a blank line (later unnumbered lines, such as a sign-off, are dropped) and at an
    "Answer:" / "Solution:" line (dropped, so answers never leak into questions); both are counted.

    Args:
        reply: the generated text.
        expected: items asked for (≥ 1); later items are dropped and counted in ``extra``.
        truncated: the reply was cut at the token limit (default: the reply's own ``truncated``
            attribute, see :class:`~dataswarms_core.generation.Reply`); then an unfinished last item is
            dropped and counted.

    Returns:
        A :class:`ParseResult`.
    """
    if expected < 1:
        raise ValueError(f"expected must be >= 1, got {expected}")
    raw_items: list[list[str]] = []
    result = ParseResult()
    open_item = False  # whether unnumbered lines still continue the last item
    for line in reply.splitlines():
        match = _ITEM_START.match(line)
        if match:
            raw_items.append([match.group(2)])
            open_item = True
        elif not raw_items:
            continue  # preamble
        elif not line.strip():
            open_item = False
        elif _ANSWER_LINE.match(line):
            result.answers_dropped += 1
            open_item = False
        elif open_item:
            raw_items[-1].append(line.strip())
        else:
            result.trailing_dropped += 1
    if truncated is None:
        truncated = bool(getattr(reply, "truncated", False))
    if truncated and open_item and raw_items:
        raw_items.pop()  # the text stopped inside this item: it is cut off
        result.truncated_dropped = 1
    cleaned = [_clean(" ".join(parts)) for parts in raw_items]
    nonempty = [c for c in cleaned if not _NO_TEXT.fullmatch(c)]
    result.empty = len(cleaned) - len(nonempty)
    result.items = nonempty[:expected]
    result.extra = max(0, len(nonempty) - expected)
    result.missing = max(0, expected - len(result.items))
    return result


def dedupe(items: list[str]) -> tuple[list[str], int]:
    """Drop exact duplicates, keeping first occurrences. Returns ``(unique_items, n_dropped)``."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out, len(items) - len(out)
