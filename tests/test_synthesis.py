"""Sampling items from generators with a scripted backend: prompts, parsing and counts."""

import random
import re

from fakes import ScriptedBackend

from dataswarms_core.copies import CopyDetector
from dataswarms_core.prompts import generation_messages
from dataswarms_core.seeding import derive_seed
from dataswarms_core.synthesis import sample_items

DEV = [f"Question number {i}?" for i in range(20)]


def _sample(backend, **kw):
    args = dict(
        items_shown=3, items_written=3, calls=2, max_new_tokens=50, temperature=0.7, top_p=0.9,
        batch_size=8, run_seed=1, iteration=4,
    )  # fmt: skip
    args.update(kw)
    return sample_items(backend, DEV, "math", ["g0", "g1", "g2"], **args)


def test_counts_rows_and_prompts():
    backend = ScriptedBackend(
        {"g0": "1. A?\n2. B?\n3. C?", "g1": "Sure!\n1. Only one?", "g2": "No numbered list here."}
    )
    sample = _sample(backend)
    rows, counts, replies = sample.items, sample.counts, sample.replies
    (call,) = backend.calls
    requests, kwargs = call.requests, call.kwargs
    assert len(requests) == 6 and [r.adapter for r in requests] == ["g0", "g1", "g2", "g0", "g1", "g2"]
    assert kwargs["batch_size"] == 8 and kwargs["max_new_tokens"] == 50
    prompt = requests[0].messages[0]["content"]
    assert prompt.count("Question number") == 3 and "write 3 new items" in prompt and "about math" in prompt
    # g0 wrote the same 3 items in both calls: 3 kept, 3 duplicates dropped
    assert (
        counts["g0"].requested,
        counts["g0"].items,
        counts["g0"].duplicates,
        counts["g0"].parse_failures,
    ) == (6, 3, 3, 0)
    assert (counts["g1"].items, counts["g1"].parse_failures, counts["g1"].duplicates) == (1, 4, 1)
    assert (counts["g2"].items, counts["g2"].parse_failures, counts["g2"].empty_replies) == (0, 6, 2)
    assert [r.item for r in rows if r.generator == "g0"] == ["A?", "B?", "C?"]
    assert rows[0].model_dump() == {
        "generator": "g0", "iteration": 4, "call": 0, "index": 0, "item": "A?", "seed": 1
    }  # fmt: skip
    assert [(r.generator, r.call, r.items, r.missing) for r in replies] == [
        ("g0", 0, 3, 0), ("g1", 0, 1, 2), ("g2", 0, 0, 3), ("g0", 1, 3, 0), ("g1", 1, 1, 2), ("g2", 1, 0, 3),
    ]  # fmt: skip
    assert replies[2].reply == "No numbered list here." and replies[2].truncated is False


def test_shown_examples_are_seeded():
    replies = {"g0": "1. x", "g1": "1. y", "g2": "1. z"}
    a, b, c = ScriptedBackend(replies), ScriptedBackend(replies), ScriptedBackend(replies)
    _sample(a)
    _sample(b)
    _sample(c, run_seed=2)
    prompts = [[r.messages[0]["content"] for r in x.calls[0].requests] for x in (a, b, c)]
    assert prompts[0] == prompts[1] and prompts[0] != prompts[2]
    assert len(set(prompts[0])) > 1  # calls and generators see different examples


def test_shown_examples_are_the_same_draws_as_sampling_the_list():
    """Shown items are drawn as positions (``rng.sample(range(len(dev)), k)``), which picks what sampling the
    list itself picks: runs seeded before copy detection see the same examples."""
    backend = ScriptedBackend("1. x")
    _sample(backend)
    owners = [(c, g) for c in range(2) for g in ["g0", "g1", "g2"]]  # call-major
    for request, (c, g) in zip(backend.calls[0].requests, owners, strict=True):
        expected = random.Random(derive_seed(1, "synthesis", 4, g, c)).sample(list(DEV), 3)
        assert request.messages == generation_messages(expected, "math", 3)


def _copying_script(request):
    """g0 copies the first item it was shown and writes two new ones; g1 writes an item and a near-copy of it;
    g2 writes a new item and one of g0's (another generator's item is not a reference: kept)."""
    shown = re.findall(r"Question number (\d+)\?", request.messages[0]["content"])
    return {
        "g0": f"1. Question number {shown[0]}?\n2. A brand new question about trains?\n3. Another fresh one about boats?",
        "g1": "1. Something else entirely different here?\n2. Something else entirely different here, right?",
        "g2": "1. What is the weight of a large elephant?\n2. A brand new question about trains?",
    }[request.adapter]


def test_copies_are_dropped_counted_and_listed():
    detector = CopyDetector(DEV, ["What is the colour of the sky?"], embedding_threshold=None)
    backend = ScriptedBackend(_copying_script)
    sample = _sample(backend, copies=detector)
    counts = sample.counts
    first_shown = [
        int(re.findall(r"Question number (\d+)\?", r.messages[0]["content"])[0])
        for r in backend.calls[0].requests
        if r.adapter == "g0"
    ]
    assert first_shown[0] != first_shown[1]  # the two calls of g0 copy different shown items
    assert (counts["g0"].items, counts["g0"].copies, counts["g0"].duplicates, counts["g0"].parse_failures) == (
        2, 2, 2, 0
    )  # fmt: skip
    assert (counts["g1"].items, counts["g1"].copies, counts["g1"].duplicates, counts["g1"].parse_failures) == (
        1, 1, 2, 2
    )  # fmt: skip
    assert (counts["g2"].items, counts["g2"].copies) == (2, 0)
    for c in counts.values():
        assert c.items + c.copies + c.duplicates + c.parse_failures == c.requested
    assert [(r.generator, r.call, r.index, r.item) for r in sample.items] == [
        ("g0", 0, 0, "A brand new question about trains?"),
        ("g0", 0, 1, "Another fresh one about boats?"),
        ("g1", 0, 0, "Something else entirely different here?"),
        ("g2", 0, 0, "What is the weight of a large elephant?"),
        ("g2", 0, 1, "A brand new question about trains?"),
    ]
    assert [(r.generator, r.call, r.kind, r.closest_index, r.overlap, r.cosine) for r in sample.copies] == [
        ("g0", 0, "shown", first_shown[0], 1.0, None),
        ("g0", 1, "shown", first_shown[1], 1.0, None),
        ("g1", 0, "items", 2, 0.75, None),  # position 2 among the kept rows: g1's first item; 3 of 4 trigrams
    ]
    assert sample.copies[0].item == sample.copies[0].closest == f"Question number {first_shown[0]}?"
    assert sample.copies[2].closest == "Something else entirely different here?"
    assert all(r.iteration == 4 for r in sample.copies)


def test_without_copies_nothing_changes():
    """No detector, or one that finds nothing: the same rows and counts as sampling without detection."""
    replies = {"g0": "1. A?\n2. B?\n3. C?", "g1": "Sure!\n1. Only one?", "g2": "No numbered list here."}
    plain = _sample(ScriptedBackend(replies))
    checked = _sample(ScriptedBackend(replies), copies=CopyDetector(DEV, embedding_threshold=None))
    assert plain.copies == [] and checked.copies == []
    assert plain.items == checked.items and plain.counts == checked.counts
    assert plain.replies == checked.replies
    assert all(c.copies == 0 for c in plain.counts.values())
