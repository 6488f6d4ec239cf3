"""Sampling items from generators with a scripted backend: prompts, parsing and counts."""

from fakes import ScriptedBackend

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
