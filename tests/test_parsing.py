"""Parsing numbered items out of generator replies (docs/method.md §2)."""

import pytest

from dataswarms_core.parsing import dedupe, parse_numbered_items


def test_plain_numbered_items():
    r = parse_numbered_items("1. What is 2+2?\n2. How many legs has a cat?\n3. Name a prime.", 3)
    assert r.items == ["What is 2+2?", "How many legs has a cat?", "Name a prime."]
    assert (r.missing, r.extra, r.empty) == (0, 0, 0)


def test_preamble_parentheses_bold_and_multiline_items():
    reply = (
        "Here are three new items:\n\n"
        "**1.** Tom has 3 apples.\nHe buys 2 more. How many now?\n"
        "2) **Sara reads 10 pages a day.** How many in a week?\n"
        "- 3: A train leaves at 10:30 and travels 3.5 hours.\n"
    )
    r = parse_numbered_items(reply, 3)
    assert r.items == [
        "Tom has 3 apples. He buys 2 more. How many now?",
        "Sara reads 10 pages a day. How many in a week?",
        "A train leaves at 10:30 and travels 3.5 hours.",
    ]


def test_continuation_lines_with_numbers_do_not_start_items():
    r = parse_numbered_items("1. A tank holds\n3.5 litres and\n10:30 is the time.", 2)
    assert r.items == ["A tank holds 3.5 litres and 10:30 is the time."]
    assert r.missing == 1


def test_missing_extra_empty_and_repeated_numbers():
    r = parse_numbered_items("1. 1. First item\n2.\n3. Third\n4. Fourth\n5. Fifth", 3)
    assert r.items == ["First item", "Third", "Fourth"]
    assert (r.missing, r.extra, r.empty) == (0, 1, 1)
    numbers_only = parse_numbered_items("1. 2. 1.\n2. 3.\n3. (4)\n4. What is 12 × 7?\n5. 12 × 7 = ?", 5)
    assert numbers_only.items == ["What is 12 × 7?", "12 × 7 = ?"]
    assert (numbers_only.missing, numbers_only.empty) == (3, 3)
    none = parse_numbered_items("I cannot do that.", 5)
    assert none.items == [] and none.missing == 5


def test_dedupe_keeps_first_occurrences():
    assert dedupe(["a", "b", "a", "c", "b"]) == (["a", "b", "c"], 2)


def test_trailing_text_and_answer_lines_are_not_folded_into_items():
    reply = (
        "1. Tom has 3 apples and buys 2 more.\nHow many does he have?\nAnswer: 5\n"
        "2. A bus has 20 seats.\nSolution: count them\n\n"
        "3. Sara reads 10 pages a day for a week.\n\nHope this helps!"
    )
    r = parse_numbered_items(reply, 3)
    assert r.items == [
        "Tom has 3 apples and buys 2 more. How many does he have?",
        "A bus has 20 seats.",
        "Sara reads 10 pages a day for a week.",
    ]
    assert r.answers_dropped == 2 and r.trailing_dropped == 1


def test_an_item_cut_at_the_token_limit_is_dropped_and_counted():
    from dataswarms_core.generation import Reply

    cut = Reply("1. Tom has 3 apples.\n2. A bus has 20 seats and", truncated=True)
    r = parse_numbered_items(cut, 3)
    assert r.items == ["Tom has 3 apples."] and r.truncated_dropped == 1 and r.missing == 2
    finished = parse_numbered_items(
        "1. Tom has 3 apples.\n2. A bus has 20 seats and", 3
    )  # a plain str: not cut
    assert len(finished.items) == 2 and finished.truncated_dropped == 0
    signed_off = parse_numbered_items(Reply("1. A?\n2. B?\n\nThanks for", truncated=True), 2)
    assert (
        signed_off.items == ["A?", "B?"] and signed_off.truncated_dropped == 0
    )  # the cut was after the items


# Kind: numbered-list styles of generator replies ("Inputs from outside that break it").


def test_issue_example_mixed_list_styles_give_five_items():
    reply = (
        "Here are five new questions:\n1) What is 3 + 4?\n2: How many days are in a week?\n"
        "**3.** What colour is grass?\n4 - Why is the sky blue?\n5. Who wrote Hamlet?"
    )
    r = parse_numbered_items(reply, 5)
    assert r.items == [
        "What is 3 + 4?",
        "How many days are in a week?",
        "What colour is grass?",
        "Why is the sky blue?",
        "Who wrote Hamlet?",
    ]
    assert (r.missing, r.extra, r.empty, r.trailing_dropped) == (0, 0, 0, 0)


QUESTIONS = ["What is 2+2?", "How many legs has a cat?", "Name a prime."]


@pytest.mark.parametrize(
    "style",
    [
        "{n}. {q}",
        "{n}) {q}",
        "({n}) {q}",
        "[{n}] {q}",
        "{n}: {q}",
        "{n} . {q}",
        "{n} - {q}",
        "{n}- {q}",
        "{n} – {q}",
        "{n} — {q}",
        "{n}—{q}",
        "**{n}.** {q}",
        "**{n})** {q}",
        "**{n}**. {q}",
        "{n}.** {q}**",
        "__{n}.__ {q}",
        "*{n}.* {q}",
        "#{n} {q}",
        "#{n}: {q}",
        "### {n}. {q}",
        "## {n}\n{q}",
        "Q{n}: {q}",
        "Q{n}. {q}",
        "**Q{n}:** {q}",
        "Question {n}: {q}",
        "**Question {n}:** {q}",
        "Question #{n}: {q}",
        "Item {n}. {q}",
        "Problem {n} - {q}",
        "### Question {n}\n{q}",
        "**Question {n}**\n\n{q}",  # a heading, a blank line, then the item
        "   {n}. {q}",
        "- {n}. {q}",
        "• {n}) {q}",
        "* {n}: {q}",
        "> {n}. {q}",
        "{n} {q}",  # bare numbers, in sequence
    ],
)
def test_list_styles(style):
    reply = "Here are three new questions:\n"
    reply += "\n".join(style.format(n=n, q=q) for n, q in enumerate(QUESTIONS, 1)) + "\n\nHope this helps!"
    r = parse_numbered_items(reply, 3)
    assert r.items == QUESTIONS
    assert (r.missing, r.extra, r.empty, r.trailing_dropped) == (0, 0, 0, 1)


@pytest.mark.parametrize(
    ("reply", "first"),
    [
        (
            "1. Count the fruit:\n12 apples are in a basket and 3 are eaten. How many are left?\n2. B?",
            "Count the fruit: 12 apples are in a basket and 3 are eaten. How many are left?",
        ),
        ("1. A.\n12 apples fall. How many?\n2. B?", "A. 12 apples fall. How many?"),  # not the next number
        ("11. A.\n12 apples fall. How many?\n12. B?", "A. 12 apples fall. How many?"),  # not capitalised
        (
            "1. Tom has apples.\n2 of them are red. How many are green?\n2. B?",
            "Tom has apples. 2 of them are red. How many are green?",
        ),  # fmt: skip
        (
            "1. Sam walks\n2 Miles a day. How far in a week?\n2. B?",
            "Sam walks 2 Miles a day. How far in a week?",
        ),
        (
            "1. Which came first?\n2024 was a leap year. Was 2023?\n2. B?",
            "Which came first? 2024 was a leap year. Was 2023?",
        ),  # fmt: skip
        ("1. Subtract:\n12 - 3 = ?\n2. B?", "Subtract: 12 - 3 = ?"),
        ("1. What is the value of\n3 – 1?\n2. B?", "What is the value of 3 – 1?"),
        (
            "1. A train leaves at\n10:30 and takes 3.5 hours.\n2. B?",
            "A train leaves at 10:30 and takes 3.5 hours.",
        ),
        ("1. Read this:\nQ3 revenue grew. By how much?\n2. B?", "Read this: Q3 revenue grew. By how much?"),
    ],
)
def test_a_line_that_merely_starts_with_a_number_continues_the_item(reply, first):
    r = parse_numbered_items(reply, 2)
    assert r.items == [first, "B?"]
    assert (r.missing, r.extra) == (0, 0)


def test_q_and_a_pairs_drop_the_answers():
    r = parse_numbered_items("Q1: What is 2+2?\nA1: 4\nQ2: Name a prime.\nA2: 7", 2)
    assert r.items == ["What is 2+2?", "Name a prime."] and r.answers_dropped == 2


def test_an_empty_entry_before_a_blank_line_still_ends():
    r = parse_numbered_items("1. A?\n2.\n\nHope this helps!", 2)
    assert r.items == ["A?"] and (r.empty, r.missing, r.trailing_dropped) == (1, 1, 1)
