"""Parsing numbered items out of a generator's reply (docs/method.md §2)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A line that may start an item: optional bullet or quote marker ("- ", "• ", "> "), markdown header ("### "),
# emphasis ("**"), a label ("Q", "Question", "Item", "Problem", ... with an optional "#"; or "#" alone) or an
# opening bracket ("(1)", "[1]"), the number (at most 3 digits, so "2024 was ..." never is one), then list
# punctuation: "." ")" ":" followed by a space, emphasis or the line's end (so "3.5 litres" and "10:30" are
# not), a hyphen between spaces not followed by a digit ("4 - Why", not "12 - 3 = 9"), or an en/em dash.
# Without punctuation the line is only a candidate: see ``_starts_item``.
_ITEM_START = re.compile(
    r"""^[ \t]*(?:[-*+•·>]+[ \t]*)?
    (?P<header>\#{1,6}[ \t]*)?
    (?P<open>[*_]{0,3})
    (?:(?P<label>(?i:question|item|problem|exercise|task|prompt|instruction|query|q))[ \t]*(?:\#[ \t]*)?
      |(?P<paren>[(\[])[ \t]*)?
    (?P<num>\d{1,3})(?!\d)
    (?(paren)[ \t]*[)\]])
    (?P<close>[*_]{0,3})
    (?P<punct>[ \t]*[.):](?=[*_]|[ \t]|$)
      |[ \t]*-(?=[*_]*[ \t]+[^\d\s])
      |[ \t]*[–—](?![*_ \t]*\d))?
    (?(punct)|(?=[ \t]|$))
    [*_]{0,3}[ \t]*(?P<text>.*)$""",
    re.VERBOSE,
)
_LEADING_NUMBER = re.compile(r"^\s*\d{1,3}\s*[.)]\s+")
# An entry of nothing but numbers and numbering punctuation ("2.", "2. 1.", "(3)") has no item text.
_NO_TEXT = re.compile(r"[\d\s.,:;()\-]*")
# A line that gives away the answer: it ends the item and is dropped (counted), never folded into it.
_ANSWER_LINE = re.compile(
    r"^\s*(?:\*\*)?\s*(?:answer|solution|final answer|a\d{1,3})\s*(?:\*\*)?\s*[:：]", re.IGNORECASE
)
# Text that ends a sentence, so the next line may begin a new item ("... cat?" / "4 Why is ...").
_SENTENCE_END = re.compile(r"""[?.!)"'”*]\s*$""")


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


def _capitalised(text: str) -> bool:
    first = text.lstrip("*_\"'“‘(")[:1]
    return first.isupper() or first.isdigit()


def _starts_item(match: re.Match[str], last_number: int, after_sentence: bool) -> bool:
    """Whether a candidate line (``_ITEM_START``) starts a new item.

    List punctuation ("1.", "1)", "1:", "1 -", "(1)"), a header ("### 1") or "#1" always does. Without
    punctuation, the number must be the next one in sequence and what follows must begin a sentence
    (capitalised), or nothing must follow: "Question 2" / "**2**" on a line of their own, "4 Why is ...?"
    after a finished sentence; but not "12 apples are in a basket" or "2 of them are red" continuing an item.
    """
    if match.group("punct") or match.group("paren") or match.group("header"):
        return True
    text = match.group("text")
    in_sequence = int(match.group("num")) == last_number + 1
    if match.group("label") or match.group("close"):  # "Question 2", "Q2", "**2**"
        return not text.strip() or (in_sequence and _capitalised(text))
    return in_sequence and after_sentence and (not text.strip() or _capitalised(text))


def _clean(text: str) -> str:
    text = text.replace("**", "").replace("__", "")
    text = _LEADING_NUMBER.sub("", text)  # "1. 1. What ..." → "What ..."
    return " ".join(text.split()).strip()


def parse_numbered_items(reply: str, expected: int, truncated: bool | None = None) -> ParseResult:
    """Take the numbered items of ``reply``.

    Tolerates the list styles models write: ``1.``, ``1)``, ``(1)``, ``[1]``, ``1:``, ``1 -``, ``1 –``,
    ``1 —``, emphasis (``**1.** text``, ``**1)**``, ``1.** text**``), ``#1``, ``Q1:``, ``Question 1:``,
    ``Item 1.``, headers (``### 1.``, ``### Question 1`` with the item on the next lines), leading spaces
    and bullets; a bare ``4 Why ...?`` only as the next number in sequence, after a finished sentence and
    before a capitalised one (so "12 apples are in a basket" or "2 of them are red" continue an item). Also
    a preamble before item 1, and items continued over several lines (joined with spaces). Text before
    the first numbered line is ignored. An item ends at a blank line (later unnumbered lines, such as a
    sign-off, are dropped; a heading with no text yet is not ended) and at an "Answer:" / "Solution:" /
    "A1:" line (dropped, so answers never leak into questions); both are counted.

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
    heading_only = False  # the last item opened with a bare heading ("**Question 2**"): its text follows
    last_number = 0
    for line in reply.splitlines():
        match = _ITEM_START.match(line)
        if match and _starts_item(
            match, last_number, not open_item or _SENTENCE_END.search(raw_items[-1][-1])
        ):
            raw_items.append([match.group("text")])
            open_item, last_number = True, int(match.group("num"))
            heading_only = not match.group("text").strip() and bool(
                match.group("label") or match.group("header") or match.group("close")
            )
        elif not raw_items:
            continue  # preamble
        elif not line.strip():
            open_item = open_item and heading_only  # a blank line ends an item, not a heading
        elif _ANSWER_LINE.match(line):
            result.answers_dropped += 1
            open_item = False
        elif open_item:
            raw_items[-1].append(line.strip())
            heading_only = False
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
