"""The search against its baselines (docs/method.md §9): the Student-t interval by hand, re-measurement on
seeds the search never used (and reused when done), equal generator calls per strategy, and a tiny comparison
through the flow with its table."""

from __future__ import annotations

import json

import pytest
from tiny import tiny_search_config

from dataswarms_core.seeding import derive_seed
from dataswarms_core.stages.remeasure import remeasure_seed, t_interval


def test_t_interval_by_hand():
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / 3**0.5  # t_{0.975, 2} · s / √n with s = 1
    assert (mean, low, high) == (pytest.approx(2.0), pytest.approx(2.0 - half), pytest.approx(2.0 + half))
    assert t_interval([0.5]) == (0.5, None, None) and t_interval([]) == (None, None, None)


def test_remeasure_seeds_are_not_the_searchs(tmp_path):
    cfg = tiny_search_config(tmp_path, tmp_path, "x", seed=4)
    seeds = {remeasure_seed(cfg, r) for r in (1, 2, 3)}
    assert len(seeds) == 3 and cfg.seed not in seeds and cfg.stream_seed not in seeds
    assert remeasure_seed(cfg, 1) == derive_seed(4, "remeasure", 1)
    refreshed = cfg.model_copy(update={"refresh": 2})  # a refresh's re-measurement draws from its own stream
    assert remeasure_seed(refreshed, 1) != remeasure_seed(cfg, 1)


def test_tiny_comparison_of_the_search_and_random_search(prefect_harness, format_model_dir, tmp_path):
    from dataswarms.flows.baselines import data_swarms_compare

    root = tmp_path / "runs"
    cfg = tiny_search_config(
        format_model_dir, root, None, held_out_test_takers={"include_base": False, "n_adapters": 1},
        **{"pso.max_iterations": 2},
    )  # fmt: skip
    table = data_swarms_compare(cfg, seeds=2, searches=["pso", "random"], draws=2)
    assert [r.search for r in table.rows] == ["pso", "random"]
    g, calls = cfg.seed_generators.n_generators, cfg.generation.calls_per_generator
    for row in table.rows:
        assert row.seeds == [0, 1]
        assert row.generator_calls == 2 * 2 * g * calls  # seeds × iterations × G × calls: equal budget
        runs = [root / f"compare-gsm8k-quickstart-difficulty-{row.search}-s{s}" for s in (0, 1)]
        reports = [json.loads((r / "remeasure/remeasure.json").read_text()) for r in runs]
        summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
        assert [rep["in_search_utility"] for rep in reports] == [s["global_best_utility"] for s in summaries]
        assert row.remeasured_per_seed == [rep["mean"] for rep in reports]
        for rep, summary in zip(reports, summaries, strict=True):
            assert rep["generator"] == summary["global_best_particle"] and len(rep["utilities"]) == 2
            assert summary["seed"] not in rep["seeds"]
            draw = json.loads((runs[0] / "remeasure/draw_01/iterations/iter_0000/generators/scoring.json").read_text())
            assert draw["generators"] == [reports[0]["generator"]]  # one particle: the global best
        # held-out test takers: the same items of each draw, answered by adapters the search never saw
        held = json.loads((runs[0] / "remeasure/draw_01/held_out/iterations/iter_0000/generators/scoring.json").read_text())
        searched = json.loads((runs[0] / "remeasure/draw_01/iterations/iter_0000/generators/scoring.json").read_text())
        assert held["test_takers"] == ["t0"] and searched["test_takers"] == ["base", "t0"]
        assert (runs[0] / "remeasure/draw_01/held_out/iterations/iter_0000/items.jsonl").read_bytes() == (
            runs[0] / "remeasure/draw_01/iterations/iter_0000/items.jsonl"
        ).read_bytes()
        for rep in reports:
            assert rep["held_out_test_takers"] == ["t0"] and len(rep["held_out_utilities"]) == 2
        assert row.held_out_per_seed == [rep["held_out_mean"] for rep in reports]
        got = [m for m in row.remeasured_per_seed if m is not None]
        if len(got) == 2:
            assert row.remeasured == pytest.approx(sum(got) / 2)
        found = [rep["in_search_utility"] for rep in reports]
        assert row.in_search == pytest.approx(sum(found) / 2)
    out = root / "comparisons/gsm8k-quickstart-difficulty"
    text = (out / "baselines.md").read_text()
    assert "| pso |" in text and "| random |" in text and f"| {2 * 2 * g * calls} |" in text
    assert "held-out test takers" in text
    held_caches = sorted(p.name for p in (root / "_cache/test_takers").iterdir())
    assert len(held_caches) == 4  # the search's test takers and the held-out ones, for each of the 2 seeds
    assert json.loads((out / "baselines.json").read_text())["rows"][0]["search"] == "pso"
    # the per-run table: one line per run, read from its summary and re-measurement
    assert [(r.search, r.seed) for r in table.runs] == [("pso", 0), ("random", 0), ("pso", 1), ("random", 1)]
    for line in table.runs:
        run = root / line.run_name
        summary = json.loads((run / "summary.json").read_text())
        report = json.loads((run / "remeasure/remeasure.json").read_text())
        assert (line.generator, line.iteration) == (summary["global_best_particle"], summary["global_best_iteration"])
        assert line.remeasured == report["utilities"] and line.held_out == report["held_out_utilities"]
        assert line.missing_utilities == sum(len(m) for m in summary["missing_utilities"])
        assert line.utilities == g * 2 and line.items_per_iteration == summary["items_per_iteration"]
        assert line.search_seconds == summary["wall_seconds"] and line.remeasure_seconds == report["seconds"] > 0
    assert "## Per run" in text and f"| pso | 1 | {table.runs[2].generator} (iter {table.runs[2].iteration}) |" in text
    assert (out / "runs.csv").read_text().splitlines()[0].startswith("search,seed,run_name,generator,iteration")

    # a second comparison reuses the finished runs and their re-measurements
    before = (runs[0] / "remeasure/remeasure.json").stat().st_mtime_ns
    draw_before = (runs[0] / "remeasure/draw_01/iterations/iter_0000/items.jsonl").stat().st_mtime_ns
    again = data_swarms_compare(cfg, seeds=2, searches=["pso", "random"], draws=2)
    assert again == table  # the re-measurement's seconds too: they are its draws' own, not this call's
    assert (runs[0] / "remeasure/draw_01/iterations/iter_0000/items.jsonl").stat().st_mtime_ns == draw_before
    assert (runs[0] / "remeasure/remeasure.json").stat().st_mtime_ns >= before


def test_per_run_table_by_hand():
    from dataswarms_core.records import ComparisonRun, ComparisonTable
    from dataswarms_core.stages.comparison import comparison_markdown, runs_markdown

    run = ComparisonRun(
        search="pso", seed=2, run_name="r", generator="g3", iteration=1, in_search=0.5, remeasured=[0.25, None],
        held_out=[None, 0.125], missing_utilities=3, utilities=12, items_per_iteration=[4, 0, 2],
        search_seconds=90.0, remeasure_seconds=30.0,
    )  # fmt: skip
    table = ComparisonTable(task="t", objective="difficulty", rows=[], runs=[run, run])
    text = runs_markdown(table)
    assert "| pso | 2 | g3 (iter 1) | 0.500 | 0.250, — | —, 0.125 | 3 of 12 | [4, 0, 2] | 1.5 + 0.5 |" in text
    assert "The 2 runs took 3.0 minutes of search" in text and "and 1.0 minutes of re-measurement" in text
    assert text in comparison_markdown(table) and text not in comparison_markdown(table, per_run=False)
    no_held = table.model_copy(update={"runs": [run.model_copy(update={"held_out": []})]})
    assert "held-out" not in runs_markdown(no_held) and "| 0.250, — | 3 of 12 |" in runs_markdown(no_held)
    assert runs_markdown(ComparisonTable(task="t", objective="difficulty", rows=[])) == ""  # an older file


def test_comparison_run_names_are_valid_for_any_task_file_name(tmp_path):
    from dataswarms.flows.baselines import comparison_runs

    cfg = tiny_search_config(tmp_path, tmp_path, None, **{"task.source": str(tmp_path / "my data (v2).csv")})
    names = [c.run_name for c in comparison_runs(cfg, 2, ["pso", "random"])]
    assert names == [f"compare-my-data-v2-difficulty-{s}-s{k}" for k in (0, 1) for s in ("pso", "random")]
    assert [c.seed for c in comparison_runs(cfg, 2, ["pso"])] == [0, 1]


def test_compare_command_names_an_unknown_strategy_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from dataswarms.flows.cli import app

    result = CliRunner().invoke(app, ["compare", "--search", "pso", "--search", "annealing"])
    assert result.exit_code == 2
    assert "--search: unknown search strategy 'annealing'; known: pso, seed-best, base-model, prompted" in result.output
