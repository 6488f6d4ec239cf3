"""The Adversarial Swarms pool (docs/method.md §6): the initial pool and the seeded replacement draw."""

from __future__ import annotations

import pytest

from dataswarms_core.pool import generated_share, initial_pool, replace_entries
from dataswarms_core.records import PoolEntry


def _generated(n: int) -> list[PoolEntry]:
    return [
        PoolEntry(item=f"generated {j}", source="generated", generator="g0", iteration=1) for j in range(n)
    ]


def test_initial_pool_is_the_first_dev_items_with_their_answers():
    pool = initial_pool(["a", "b", "c", "d"], ["1", None, "3", "4"], 3)
    assert [(e.item, e.output, e.dev_index, e.source) for e in pool] == [
        ("a", "1", 0, "dev"), ("b", None, 1, "dev"), ("c", "3", 2, "dev"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="pool size 5: the dev split has 4 items"):
        initial_pool(["a", "b", "c", "d"], [None] * 4, 5)


def test_replacement_with_a_fixed_seed_matches_the_hand_computed_draw():
    # random.Random(11).random() gives, for the 8 entries in order:
    #   0.452, 0.560, 0.924, 0.466, 0.508, 0.587, 0.185, 0.512
    # so with p = 0.5 entries 0, 3 and 6 are drawn (their uniforms are < 0.5). The next call of that stream,
    # sample(range(5), 3), gives [4, 1, 0]: entry 0 gets generated item 4, entry 3 item 1, entry 6 item 0.
    pool = initial_pool([f"dev {i}" for i in range(8)], [str(i) for i in range(8)], 8)
    draw = replace_entries(pool, _generated(5), 0.5, seed=11)
    assert draw.replaced == [0, 3, 6] and draw.unfilled == []
    assert [e.item for e in draw.pool] == [
        "generated 4", "dev 1", "dev 2", "generated 1", "dev 4", "dev 5", "generated 0", "dev 7",
    ]  # fmt: skip
    assert generated_share(draw.pool) == 3 / 8
    assert [e.item for e in pool][0] == "dev 0"  # the old pool is left as it was
    # Same seed, same draw; another seed, another draw.
    assert replace_entries(pool, _generated(5), 0.5, seed=11) == draw
    assert replace_entries(pool, _generated(5), 0.5, seed=12).replaced != draw.replaced


def test_replacement_edge_probabilities_and_too_few_generated_items():
    pool = initial_pool([f"dev {i}" for i in range(4)], [None] * 4, 4)
    none = replace_entries(pool, _generated(3), 0.0, seed=1)
    assert none.pool == pool and none.replaced == [] and none.unfilled == []
    # p = 1 draws every entry; only 3 generated items exist, so the 4th drawn entry keeps its real item.
    every = replace_entries(pool, _generated(3), 1.0, seed=1)
    assert every.replaced == [0, 1, 2] and every.unfilled == [3]
    assert sorted(e.item for e in every.pool[:3]) == ["generated 0", "generated 1", "generated 2"]  # no reuse
    assert every.pool[3].item == "dev 3"
    assert replace_entries(pool, [], 1.0, seed=1).unfilled == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"replacement probability 1.5: expected a number in \[0, 1\]"):
        replace_entries(pool, _generated(3), 1.5, seed=1)
    assert generated_share([]) == 0.0
