"""Sampling evaluation items from generators (docs/method.md §2)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .generation import GenerationBackend, GenerationRequest
from .parsing import dedupe, parse_numbered_items
from .prompts import generation_messages
from .records import CopyRow, GeneratorCounts, ItemRow, ReplyRow
from .seeding import derive_seed

if TYPE_CHECKING:
    from .copies import CopyDetector, CopyMatch


@dataclass(frozen=True)
class Sample:
    """What :func:`sample_items` returns.

    Attributes:
        items: one row per kept item, generator by generator.
        counts: per generator, what was asked for and what came back.
        replies: one row per call, call-major: the raw reply, whether it hit the token limit, how many items
            were parsed from it and how many are missing (for inspecting parse failures).
        copies: one row per item left out as a copy (docs/method.md §2, "Copies"), in the order the items were
            written; empty when no detector was given.
    """

    items: list[ItemRow]
    counts: dict[str, GeneratorCounts]
    replies: list[ReplyRow] = field(default_factory=list)
    copies: list[CopyRow] = field(default_factory=list)


def sample_items(
    backend: GenerationBackend,
    dev_inputs: Sequence[str],
    domain: str,
    generators: Sequence[str],
    *,
    items_shown: int,
    items_written: int,
    calls: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    batch_size: int,
    run_seed: int,
    iteration: int,
    stage: str = "synthesis",
    copies: CopyDetector | None = None,
    goal: str | None = None,
) -> Sample:
    """Let every generator write ``calls × items_written`` items, all generators batched together.

    Call c of generator g shows ``items_shown`` dev inputs drawn with
    ``random.Random(derive_seed(run_seed, stage, iteration, g, c))`` and asks for ``items_written`` new ones;
    sampling is seeded from ``derive_seed(run_seed, stage, iteration)``.

    Args:
        backend: holds each generator as an adapter named as in ``generators``.
        dev_inputs: the task's real dev inputs (at least ``items_shown``).
        stage: labels the random streams (``synthesis`` in the search, ``export`` for the exported set).
        copies: a copy detector (docs/method.md §2, "Copies"), or None to keep every parsed unique item.
            After parsing and the exact dedupe, it sees each generator's items in call order with the dev rows
            shown in each item's call (kind ``items``: the generator's own earlier items); a copy is left out of
            ``items`` (the kept items' ``index`` stays contiguous per generator), counted in
            ``GeneratorCounts.copies`` and listed in ``Sample.copies``.
        goal: the objective stated in every call's prompt (:func:`~dataswarms_core.prompts.generation_messages`;
            the ``prompted`` baseline), or None.

    Returns:
        A :class:`Sample`: the kept items (``seed`` is the run seed), counts per generator, every reply and the
        copies left out.

    Raises:
        ValueError: fewer dev inputs than ``items_shown``.
    """
    if len(dev_inputs) < items_shown:
        raise ValueError(
            f"generation.items_shown is {items_shown} but the task has {len(dev_inputs)} dev items"
        )
    requests, owners, shown_rows = [], [], {}
    for c in range(calls):  # call-major, so each batch mixes generators
        for g in generators:
            rng = random.Random(derive_seed(run_seed, stage, iteration, g, c))
            # positions, not texts: random.sample draws depend only on the population's length, so this picks
            # the same items as rng.sample(list(dev_inputs), items_shown)
            rows_shown = rng.sample(range(len(dev_inputs)), items_shown)
            shown_rows[g, c] = rows_shown
            shown = [dev_inputs[i] for i in rows_shown]
            requests.append(GenerationRequest(generation_messages(shown, domain, items_written, goal), adapter=g))
            owners.append((g, c))
    texts = backend.generate(
        requests, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
        seed=derive_seed(run_seed, stage, iteration), batch_size=batch_size,
    )  # fmt: skip
    replies: list[ReplyRow] = []
    counts: dict[str, Counter[str]] = {g: Counter() for g in generators}
    per_gen: dict[str, list[tuple[int, str]]] = {g: [] for g in generators}
    for (g, c), reply in zip(owners, texts, strict=True):
        parsed = parse_numbered_items(reply, items_written)
        counts[g].update(
            requested=items_written, parse_failures=parsed.missing, extra=parsed.extra,
            empty_replies=int(not parsed.items), answers_dropped=parsed.answers_dropped,
            trailing_dropped=parsed.trailing_dropped, truncated_dropped=parsed.truncated_dropped,
        )  # fmt: skip
        per_gen[g].extend((c, item) for item in parsed.items)
        replies.append(
            ReplyRow(
                generator=g,
                call=c,
                reply=str(reply),
                truncated=bool(getattr(reply, "truncated", False)),
                items=len(parsed.items),
                missing=parsed.missing,
            )  # fmt: skip
        )
    candidates: list[tuple[str, int, str]] = []  # (generator, call, item): unique per generator, in row order
    for g in generators:
        _, counts[g]["duplicates"] = dedupe([item for _, item in per_gen[g]])
        seen = set()
        for c, item in per_gen[g]:  # the first occurrences, as dedupe keeps them, with their calls
            if item not in seen:
                seen.add(item)
                candidates.append((g, c, item))
    # Kind "items" compares a generator's items with its own earlier ones only: comparing across generators
    # would make a particle's utility depend on its place in the swarm's order.
    matches: list[CopyMatch | None] = []
    offsets: dict[str, int] = {}
    for g in generators:
        offsets[g] = len(matches)
        mine = [(item, shown_rows[g, c]) for g_, c, item in candidates if g_ == g]
        matches += copies.find(mine) if copies is not None else [None] * len(mine)
    rows: list[ItemRow] = []
    copy_rows: list[CopyRow] = []
    kept_at: dict[int, int] = {}  # candidate position -> position among the kept rows
    for pos, ((g, c, item), match) in enumerate(zip(candidates, matches, strict=True)):
        if match is None:
            kept_at[pos] = len(rows)
            index = counts[g]["items"]  # contiguous per generator: copies take no index
            counts[g]["items"] += 1
            row = ItemRow(generator=g, iteration=iteration, call=c, index=index, item=item, seed=run_seed)
            rows.append(row)
            continue
        counts[g]["copies"] += 1
        closest_index = (
            kept_at[offsets[g] + match.closest_index] if match.kind == "items" else match.closest_index
        )
        copy = CopyRow(
            generator=g, iteration=iteration, call=c, item=item, kind=match.kind, closest=match.closest,
            closest_index=closest_index, overlap=match.overlap, cosine=match.cosine,
        )  # fmt: skip
        copy_rows.append(copy)
    return Sample(rows, {g: GeneratorCounts(**c) for g, c in counts.items()}, replies, copy_rows)
