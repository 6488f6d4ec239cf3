"""Stage ``scoring`` called directly (no Prefect): test takers answer, the judge scores, utilities follow;
and the test takers' reference scores on real dev items (novelty)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tiny import hand_made_manifest, tiny_search_config

from dataswarms_core import stages
from dataswarms_core.records import (
    AnswerRow,
    ItemRow,
    ReferenceScores,
    ScoringReport,
)
from dataswarms_core.stages import scoring as scoring_stage

NAMES = ["g0", "g1", "g2"]
ITEMS = {  # generator → (call, item); g2 wrote nothing (an empty generator)
    "g0": [(0, "Tom has 3 apples and buys 4 more. How many apples does he have?"),
           (1, "A train travels 60 miles in 2 hours. What is its speed?")],
    "g1": [(0, "Sara reads 12 pages a day. How many pages does she read in 5 days?")],
}  # fmt: skip


@pytest.fixture(scope="module")
def scored(format_model_dir, tmp_path_factory):
    """prepare_run, a generator swarm (hand-made adapters), items written by hand at iteration 0, one LoRA test
    taker (hand-made) besides the base model; then ``score``."""
    root = tmp_path_factory.mktemp("scoring")
    cfg = tiny_search_config(format_model_dir, root, "scoring-run")
    info = stages.prepare_run(cfg)
    generators = hand_made_manifest(cfg, format_model_dir, NAMES, "seed_generators", 0.05)
    takers = hand_made_manifest(cfg, format_model_dir, ["t0"], "test_takers", 0.5)
    run = stages.run_store(cfg)
    stages.init_swarms(cfg, run, {"generators": generators})
    rows = [
        ItemRow(generator=g, iteration=0, call=c, index=k, item=item, seed=cfg.seed).model_dump()
        for g, written in ITEMS.items()
        for k, (c, item) in enumerate(written)
    ]
    run.write_jsonl("iterations/iter_0000/items.jsonl", rows)
    report = stages.score(cfg, info, run, 0, takers)
    return cfg, info, run, takers, report


def test_answers_parquet(scored):
    cfg, _, run, _, report = scored
    answers = pd.read_parquet(Path(run.url("iterations/iter_0000/answers.parquet")))
    assert list(answers.columns) == list(AnswerRow.model_fields)
    assert len(answers) == 3 * 2 == report.answers  # 3 items × (base, t0)
    rows = [AnswerRow.model_validate(r) for r in answers.to_dict("records")]
    assert [(r.generator, r.call, r.index, r.test_taker) for r in rows] == [
        ("g0", 0, 0, "base"), ("g0", 0, 0, "t0"), ("g0", 1, 1, "base"), ("g0", 1, 1, "t0"),
        ("g1", 0, 0, "base"), ("g1", 0, 0, "t0"),
    ]  # fmt: skip
    want = [item for g in ITEMS for _, item in ITEMS[g] for _ in range(2)]
    assert [r.query for r in rows] == want
    assert all(r.iteration == 0 and isinstance(r.response, str) for r in rows)
    assert all(r.score is not None and 0.0 <= r.score <= 1.0 for r in rows)
    details = [json.loads(r.judge_detail) for r in rows]
    assert all(0.0 < d["mass"] <= 1.0 for d in details)  # the expected-score judge's probability mass
    assert report.mean_judge_mass == pytest.approx(sum(d["mass"] for d in details) / len(details))


def test_scoring_report_and_difficulty_utilities(scored):
    cfg, _, run, _, report = scored
    assert ScoringReport.read(run, "iterations/iter_0000/generators/scoring.json") == report
    assert report.swarm == "generators" and report.iteration == 0
    assert report.objective == "difficulty" and report.judge == "expected-score"
    assert report.generators == NAMES and report.test_takers == ["base", "t0"]
    assert report.empty_generators == ["g2"]
    assert report.judge_failures == 0
    assert report.judge_failures_per_generator == dict.fromkeys(NAMES, 0)
    assert report.judge_failures_per_test_taker == {"base": 0, "t0": 0}

    answers = pd.read_parquet(Path(run.url("iterations/iter_0000/answers.parquet")))
    means = answers.groupby(["generator", "test_taker"])["score"].mean()
    for i, g in enumerate(NAMES):
        row = report.score_matrix[i]
        if g == "g2":
            assert row == [None, None]
            continue
        assert row == pytest.approx([means[(g, "base")], means[(g, "t0")]])
        assert report.utilities[i] == pytest.approx(1 - max(row))  # difficulty = 1 − max_t m[g, t]
        assert report.components["separation"][i] == pytest.approx(max(row) - min(row))  # T = 2
    assert report.utilities[2] == 0.0  # an empty generator gets the objective's lowest value
    assert report.components["difficulty"] == report.utilities
    assert set(report.components) == {"difficulty", "separation"}  # separation: two test takers


@pytest.fixture(scope="module")
def reference(scored, format_model_dir):
    """A novelty run next to the scored one (same test takers): ``score_reference`` once."""
    cfg, _, _, takers, _ = scored
    novelty = tiny_search_config(
        format_model_dir, cfg.storage.root, "novelty-run",
        **{"scoring.objective": "novelty", "scoring.novelty_dev_items": 4},
    )  # fmt: skip
    info = stages.prepare_run(novelty)
    run = stages.run_store(novelty)
    return novelty, info, run, takers, stages.score_reference(novelty, info, run, takers)


def test_score_reference_writes_reference_scores(reference):
    cfg, info, run, _, ref = reference
    assert ReferenceScores.read(run, "reference_scores.json") == ref
    assert ref.test_takers == ["base", "t0"] and list(ref.scores) == ["base", "t0"]
    assert ref.items == 4 and ref.judge == cfg.judge.dev_name == "reference"
    assert all(0.0 <= s <= 1.0 for s in ref.scores.values())
    assert ref.judge_failures == {"base": 0, "t0": 0}


def test_score_reference_is_computed_once(reference, monkeypatch):
    cfg, info, run, takers, ref = reference
    path = Path(run.url("reference_scores.json"))
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(scoring_stage, "build_test_takers", lambda *a, **k: pytest.fail("answered again"))
    assert stages.score_reference(cfg, info, run, takers) == ref
    assert path.stat().st_mtime_ns == mtime
