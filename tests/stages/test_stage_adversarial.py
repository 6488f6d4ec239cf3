"""Stage ``adversarial`` called directly (no Prefect): the pool update, the test takers' utilities on the pool
(hand-checked with a fake judge) and the held-out point of the generalisation curve (docs/method.md §6)."""

from __future__ import annotations

import pandas as pd
import pytest
from tiny import hand_made_manifest, tiny_search_config

from dataswarms_core import stages
from dataswarms_core.errors import ScoringError
from dataswarms_core.judges import Judgement
from dataswarms_core.pool import replace_entries
from dataswarms_core.records import HeldOutReport, ItemRow, PoolReport, PoolScoringReport
from dataswarms_core.stages import adversarial

GENERATED = [("g0", 0, "A farmer has 7 cows and buys 5 more. How many cows now?"),
             ("g1", 0, "Each box holds 6 pens. How many pens are in 4 boxes?"),
             ("g1", 1, "Ann saves 3 dollars a week. How much after 9 weeks?")]  # fmt: skip


@pytest.fixture(scope="module")
def adversarial_run(format_model_dir, tmp_path_factory):
    """An adversarial run folder: hand-made generators and test takers (t0, t1) as the initial swarms, the
    initial pool (6 dev items), and 3 items written by hand as the moved generators' items of iteration 1."""
    root = tmp_path_factory.mktemp("adversarial")
    cfg = tiny_search_config(
        format_model_dir, root, "adv", **{
            "mode": "adversarial", "test_takers.n_adapters": 2, "adversarial.pool_size": 6,
            "adversarial.test_items": 5, "adversarial.replacement_probability": 0.5,
        },
    )  # fmt: skip
    info = stages.prepare_run(cfg)
    run = stages.run_store(cfg)
    generators = hand_made_manifest(cfg, format_model_dir, ["g0", "g1", "g2"], "seed_generators", 0.05)
    takers = hand_made_manifest(cfg, format_model_dir, ["t0", "t1"], "test_takers", 0.5)
    pointer = stages.init_swarms(
        cfg, run, {"generators": generators, "test_takers": takers},
        before_pointer=lambda: adversarial.write_initial_pool(cfg, info, run),
    )  # fmt: skip
    rows = [
        ItemRow(generator=g, iteration=1, call=c, index=i, item=text, seed=cfg.seed).model_dump()
        for i, (g, c, text) in enumerate(GENERATED)
    ]
    run.write_jsonl("iterations/iter_0001/items.jsonl", rows)
    report = adversarial.update_pool(cfg, info, run, 0)
    return cfg, info, run, pointer, report


def test_initial_pool_and_pointer(adversarial_run):
    cfg, info, run, pointer, _ = adversarial_run
    assert pointer.pool == "pools/iter_0000" and sorted(pointer.swarms) == ["generators", "test_takers"]
    pool = adversarial.read_pool(run, 0)
    task = stages.load_run_task(cfg, info)
    assert [e.item for e in pool] == task.dev["input"].tolist()[:6]
    assert [e.output for e in pool] == task.dev["output"].tolist()[:6]
    first = PoolReport.read(run, "pools/iter_0000/pool.json")
    assert first.seed is None and first.generated == 0 and first.size == 6


def test_pool_update_replaces_with_the_iteration_seed_and_keeps_provenance(adversarial_run):
    cfg, _, run, _, report = adversarial_run
    before, after = adversarial.read_pool(run, 0), adversarial.read_pool(run, 1)
    generated = [e for e in after if e.source == "generated"]
    expected = replace_entries(before, generated_entries(), 0.5, adversarial.pool_seed(cfg, 0))
    assert report.replaced == expected.replaced and [e.item for e in after] == [e.item for e in expected.pool]
    assert report.replaced, "p = 0.5 over 6 entries replaced nothing: pick another seed for this test"
    assert report.seed == adversarial.pool_seed(cfg, 0) and report.iteration == 1
    assert report.generated == len(generated) == len(report.replaced)
    assert report.generated_share == pytest.approx(len(generated) / 6)
    for e in generated:  # provenance: who wrote it, when, and when it entered
        g, c, text = next(x for x in GENERATED if x[2] == e.item)
        assert (e.generator, e.call, e.iteration, e.entered) == (g, c, 1, 0)
        assert e.item_id.startswith("ds-") and e.output is None
    assert all(e.source == "dev" for i, e in enumerate(after) if i not in report.replaced)
    # The pool seed is labelled by swarm and iteration: it differs per iteration and from the PSO streams.
    assert adversarial.pool_seed(cfg, 0) != adversarial.pool_seed(cfg, 1)


def generated_entries():
    from dataswarms_core.records import PoolEntry
    from dataswarms_core.stages.package import item_id

    return [
        PoolEntry(item=t, source="generated", item_id=item_id(t), generator=g, iteration=1, call=c, entered=0)
        for g, c, t in GENERATED
    ]


class FakeJudge:
    """Scores by the answer: "right" 1.0, "half" 0.5, "wrong" 0.0, and fails (None) on "???"."""

    name = "fake"

    def judge(self, queries, responses, references=None):
        table = {"right": 1.0, "half": 0.5, "wrong": 0.0, "???": None}
        return [Judgement(table[r], {}) for r in responses]


def _scripted_answers(script):
    """An ``answer`` replacement: test taker t answers pool entry i with script[t][i] (None: the answer failed)."""

    def fake_answer(items, test_takers, **_):
        rows = []
        for row in items:
            for t in test_takers:
                reply = script[t.name][row["pool_index"]]
                rows.append({**row, "test_taker": t.name, "query": row["item"], "response": reply,
                             "answer_failure": None if reply is not None else "error: scripted"})  # fmt: skip
        return rows

    return fake_answer


def test_test_taker_utilities_are_the_mean_judge_scores(adversarial_run, monkeypatch):
    cfg, info, run, _, _ = adversarial_run
    script = {
        "t0": ["right", "right", "wrong", "half", "right", "???"],  # judged: 1, 1, 0, .5, 1 → 3.5 / 5 = 0.7
        "t1": ["wrong", "half", None, "half", "wrong", "wrong"],  # judged: 0, .5, .5, 0, 0 → 1 / 5 = 0.2
    }
    monkeypatch.setattr(adversarial, "answer", _scripted_answers(script))
    monkeypatch.setattr(adversarial, "build_run_judge", lambda *a, **k: FakeJudge())
    report = adversarial.score_test_takers(cfg, info, run, 0)
    assert report.test_takers == ["t0", "t1"] and report.judge == "fake"
    assert report.utilities == [pytest.approx(0.7), pytest.approx(0.2)]
    assert report.judged == {"t0": 5, "t1": 5}
    assert report.judge_failures == {"t0": 1, "t1": 0} and report.answer_failures == {"t0": 0, "t1": 1}
    assert (
        report.pool_size == 6
        and report.generated_share == PoolReport.read(run, "pools/iter_0001/pool.json").generated_share
    )
    assert PoolScoringReport.read(run, "iterations/iter_0000/test_takers/scoring.json") == report
    answers = pd.read_parquet(run.url("iterations/iter_0000/test_takers/answers.parquet"))
    assert len(answers) == 12 and list(answers["pool_index"][:2]) == [0, 0]
    assert answers["score"].isna().sum() == 2  # the failed judgement and the failed answer: missing, not 0

    # A test taker none of whose answers can be judged stops the iteration with the counts named.
    monkeypatch.setattr(adversarial, "answer", _scripted_answers({**script, "t1": ["???"] * 5 + [None]}))
    with pytest.raises(
        ScoringError, match=r"test taker t1: none of its 6 answers .* 5 judge failures, 1 answer failures"
    ):
        adversarial.score_test_takers(cfg, info, run, 0)


def test_held_out_scores_the_best_test_taker_on_real_test_items(adversarial_run, monkeypatch):
    cfg, info, run, _, _ = adversarial_run
    script = {"t0": ["wrong"] * 6, "t1": ["right"] * 6}  # t1 is the best on the pool
    monkeypatch.setattr(adversarial, "answer", _scripted_answers(script))
    monkeypatch.setattr(adversarial, "build_run_judge", lambda *a, **k: FakeJudge())
    adversarial.score_test_takers(cfg, info, run, 0)
    monkeypatch.undo()
    report = adversarial.track_held_out(
        cfg, info, run, 0
    )  # the tiny model answers, the reference judge scores
    assert report.test_taker == "t1" and report.pool_score == 1.0
    assert report.items == 5 and report.judge == "expected-score" and report.dev_judge == "reference"
    assert report.judged + report.judge_failures + report.answer_failures == 5
    assert report.dev_judged + report.dev_judge_failures + report.answer_failures == 5
    assert report.judged > 0 and 0.0 <= report.held_out_score <= 1.0
    assert report.held_out_accuracy is None or 0.0 <= report.held_out_accuracy <= 1.0
    assert HeldOutReport.read(run, "iterations/iter_0000/test_takers/held_out.json") == report
    task = stages.load_run_task(cfg, info)
    answers = pd.read_parquet(run.url("iterations/iter_0000/test_takers/held_out.parquet"))
    assert answers["item"].tolist() == task.test["input"].tolist()[:5]
    assert answers["output"].tolist() == task.test["output"].tolist()[:5]
    assert set(answers["test_taker"]) == {"t1"}
    judged = answers["score"].dropna()
    assert judged.mean() == pytest.approx(report.held_out_score) and len(judged) == report.judged
    if report.held_out_accuracy is not None:
        assert answers["accuracy"].dropna().mean() == pytest.approx(report.held_out_accuracy)
