"""Sampling evaluation items from generators (docs/method.md §2)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .generation import GenerationBackend, GenerationRequest
from .parsing import dedupe, parse_numbered_items
from .prompts import generation_messages
from .records import GeneratorCounts, ItemRow, ReplyRow
from .seeding import derive_seed


@dataclass(frozen=True)
class Sample:
    """What :func:`sample_items` returns.

    Attributes:
        items: one row per kept item, generator by generator.
        counts: per generator, what was asked for and what came back.
        replies: one row per call, call-major: the raw reply, whether it hit the token limit, how many items
            were parsed from it and how many are missing (for inspecting parse failures).
    """

    items: list[ItemRow]
    counts: dict[str, GeneratorCounts]
    replies: list[ReplyRow] = field(default_factory=list)


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
) -> Sample:
    """Let every generator write ``calls × items_written`` items, all generators batched together.

    Call c of generator g shows ``items_shown`` dev inputs drawn with
    ``random.Random(derive_seed(run_seed, stage, iteration, g, c))`` and asks for ``items_written`` new ones;
    sampling is seeded from ``derive_seed(run_seed, stage, iteration)``.

    Args:
        backend: holds each generator as an adapter named as in ``generators``.
        dev_inputs: the task's real dev inputs (at least ``items_shown``).
        stage: labels the random streams (``synthesis`` in the search, ``export`` for the exported set).

    Returns:
        A :class:`Sample`: the kept items (``seed`` is the run seed), counts per generator and every reply.

    Raises:
        ValueError: fewer dev inputs than ``items_shown``.
    """
    if len(dev_inputs) < items_shown:
        raise ValueError(
            f"generation.items_shown is {items_shown} but the task has {len(dev_inputs)} dev items"
        )
    requests, owners = [], []
    for c in range(calls):  # call-major, so each batch mixes generators
        for g in generators:
            rng = random.Random(derive_seed(run_seed, stage, iteration, g, c))
            shown = rng.sample(list(dev_inputs), items_shown)
            requests.append(GenerationRequest(generation_messages(shown, domain, items_written), adapter=g))
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
    rows = []
    for g in generators:
        unique, dropped = dedupe([item for _, item in per_gen[g]])
        counts[g]["duplicates"] = dropped
        counts[g]["items"] = len(unique)
        keep = set()
        for c, item in per_gen[g]:
            if item in keep:
                continue
            keep.add(item)
            rows.append(
                ItemRow(
                    generator=g, iteration=iteration, call=c, index=len(keep) - 1, item=item, seed=run_seed
                )
            )
    return Sample(rows, {g: GeneratorCounts(**c) for g, c in counts.items()}, replies)
