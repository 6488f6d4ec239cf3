"""Benchmark refresh: versions, the leaderboard change (hand-checked), and two refreshes of a tiny benchmark
through the flow (the second continues the first's swarm and writes new items)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny import tiny_search_config

from dataswarms_core.errors import ConfigError, ModelError
from dataswarms_core.records import Leaderboard, LeaderboardRow
from dataswarms_core.refresh import change_markdown, leaderboard_change, plan_refresh


def _board(rows: list[tuple[str, int, float | None]]) -> Leaderboard:
    return Leaderboard(
        benchmark="b", benchmark_version="x", judge="expected-score", items=6, test_items=0,
        bootstrap_resamples=10, confidence=0.95, kendall_tau=None, kendall_p=None,
        rows=[
            LeaderboardRow(rank=rank, model=m, spec=m, mean=mean, ci_low=None, ci_high=None, items=6, answered=6,
                           answer_failures=0, judge_failures=0)
            for m, rank, mean in rows
        ],
    )  # fmt: skip


def test_leaderboard_change_on_hand_checked_numbers():
    before = _board([("a", 1, 0.80), ("b", 2, 0.60), ("c", 3, 0.40), ("gone", 4, 0.10)])
    after = _board([("c", 1, 0.70), ("a", 2, 0.65), ("b", 3, None), ("new", 4, 0.20)])
    change = leaderboard_change("bench", 2, after, before, 1)
    got = {r.model: (r.status, r.rank, r.previous_rank, r.rank_move, r.delta) for r in change.rows}
    assert got["c"] == ("kept", 1, 3, 2, pytest.approx(0.30))  # 3 → 1: up 2, 0.40 → 0.70
    assert got["a"] == ("kept", 2, 1, -1, pytest.approx(-0.15))  # 1 → 2: down 1, 0.80 → 0.65
    assert got["b"] == ("kept", 3, 2, -1, None)  # the new mean is missing: no delta, never 0
    assert got["new"] == ("new", 4, None, None, None)
    assert got["gone"] == ("dropped", None, 4, None, None)
    assert [r.model for r in change.rows] == ["c", "a", "b", "new", "gone"]
    text = change_markdown(change)
    assert "| 1 | ▲2 | c | 0.700 | 0.400 | +0.300 |" in text
    assert "| 2 | ▼1 | a | 0.650 | 0.800 | -0.150 |" in text
    assert "| 3 | ▼1 | b | — | 0.600 | — |" in text
    assert "| — | dropped | gone | — | 0.100 | — |" in text
    first = leaderboard_change("bench", 1, before, None, None)
    assert {r.status for r in first.rows} == {"new"} and first.previous_version is None


def test_plan_refuses_a_benchmark_without_name_or_models(tmp_path):
    cfg = tiny_search_config(tmp_path, tmp_path, "x")
    with pytest.raises(ConfigError, match="benchmark.name"):
        plan_refresh(cfg)
    named = tiny_search_config(tmp_path, tmp_path, "x", **{"benchmark.name": "b"})
    with pytest.raises(ConfigError, match="benchmark.models"):
        plan_refresh(named)
    missing = tiny_search_config(tmp_path, tmp_path, "x", **{"benchmark.name": "b", "benchmark.models": [f"m={tmp_path}/nope"]})
    with pytest.raises(ModelError, match=rf"^benchmark.models {tmp_path}/nope: model .*: not a built-in name"):
        plan_refresh(missing)  # before any work: no index, no run folder
    twice = tiny_search_config(tmp_path, tmp_path, "x", **{"benchmark.name": "b", "benchmark.models": ["a=x@http://h/v1", "a=y@http://h/v1"]})
    with pytest.raises(ConfigError, match="^benchmark.models: label a names two models"):
        plan_refresh(twice)
    assert not (tmp_path / "benchmarks").exists()


def test_stream_seed_carries_the_refresh_number(tmp_path):
    base = tiny_search_config(tmp_path, tmp_path, "x", seed=5)
    seeds = {base.model_copy(update={"refresh": r}).stream_seed for r in range(4)}
    assert base.stream_seed == 5 and len(seeds) == 4  # refresh 0 is a plain search: the seed itself


def _items(folder: Path) -> list[str]:
    return [json.loads(line)["item"] for line in (folder / "items.jsonl").read_text().splitlines()]


def test_two_refreshes_continue_the_swarm_and_write_new_items(prefect_harness, format_model_dir, tmp_path):
    from safetensors.torch import load_file

    from dataswarms.flows.refresh import data_swarms_refresh

    root = tmp_path / "runs"
    cfg = tiny_search_config(
        format_model_dir, root, None,
        **{"benchmark.name": "tiny-bench", "benchmark.models": [f"base={format_model_dir}"], "pso.max_iterations": 1},
    )  # fmt: skip
    first = data_swarms_refresh(cfg)
    second = data_swarms_refresh(cfg)
    assert (first.version, first.folder, first.run_name) == (1, "v0001", "tiny-bench-r0001")
    assert (second.version, second.folder, second.run_name) == (2, "v0002", "tiny-bench-r0002")
    bench = root / "benchmarks/tiny-bench"
    index = json.loads((bench / "benchmark.json").read_text())
    assert [v["version"] for v in index["versions"]] == [1, 2]
    v1, v2 = _items(bench / "v0001"), _items(bench / "v0002")
    assert v1 and v2 and v1 != v2  # the refresh number is in every random stream
    assert first.package_version != second.package_version

    # refresh 2 starts from refresh 1's final swarm: same positions, re-measured (no bests carried over)
    end1 = load_file(root / "tiny-bench-r0001/swarms/generators/iter_0001/tensors.safetensors")
    start2 = load_file(root / "tiny-bench-r0002/swarms/generators/iter_0000/tensors.safetensors")
    for key, t in start2.items():
        if key.startswith(("positions/", "velocities/")):
            assert torch.equal(t, end1[key]), key
    state2 = json.loads((root / "tiny-bench-r0002/swarms/generators/iter_0000/state.json").read_text())
    assert state2["metadata"]["continued_from"]["run"].endswith("tiny-bench-r0001")
    assert state2["personal_best_utility"] == [None, None, None] and state2["iteration"] == 0

    change = json.loads((bench / "v0002/leaderboard/change.json").read_text())
    board1 = json.loads((bench / "v0001/leaderboard/leaderboard.json").read_text())
    board2 = json.loads((bench / "v0002/leaderboard/leaderboard.json").read_text())
    (row,) = change["rows"]
    m1, m2 = board1["rows"][0]["mean"], board2["rows"][0]["mean"]
    assert row["model"] == "base" and row["status"] == "kept" and row["rank_move"] == 0
    assert row["previous_mean"] == m1 and row["mean"] == m2
    assert row["delta"] == pytest.approx(m2 - m1)
    assert (bench / "v0002/leaderboard/change.md").read_text().startswith("# tiny-bench v0002")

    # a third call plans refresh 3; the finished versions are untouched
    assert json.loads((bench / "benchmark.json").read_text())["versions"][0] == index["versions"][0]


def test_continuing_a_run_without_checkpoint_or_with_other_particles_is_refused(tiny_model_dir, tmp_path):
    from tiny import hand_made_manifest

    from dataswarms_core.stages.layout import run_store
    from dataswarms_core.stages.pso import continued_swarm, init_swarms

    prev_cfg = tiny_search_config(tiny_model_dir, tmp_path, "prev", **{"seed_generators.n_generators": 2})
    cfg = tiny_search_config(tiny_model_dir, tmp_path, "next", continue_from=str(tmp_path / "prev"), refresh=2)
    three = hand_made_manifest(cfg, tiny_model_dir, ["g0", "g1", "g2"])
    with pytest.raises(ConfigError, match="has no complete checkpoint of the generators swarm"):
        continued_swarm(cfg, "generators", three)
    init_swarms(prev_cfg, run_store(prev_cfg), {"generators": hand_made_manifest(prev_cfg, tiny_model_dir, ["g0", "g1"])})
    with pytest.raises(ConfigError, match="has 2 generators particles, this run has 3 seed generators"):
        continued_swarm(cfg, "generators", three)
    other = tiny_search_config(tiny_model_dir, tmp_path / "elsewhere", "other", **{"seed_generators.lora.r": 4})
    init_swarms(other, run_store(other), {"generators": hand_made_manifest(other, tiny_model_dir, ["g0", "g1", "g2"])})
    moved = cfg.model_copy(update={"continue_from": str(tmp_path / "elsewhere" / "other")})
    with pytest.raises(ConfigError, match=r"continue_from: adapter g0: LoRA r = 8 but generators of .*other has 4"):
        continued_swarm(moved, "generators", three)
    with pytest.raises(ValueError, match="continue_from.*mode 'data-swarms' only"):
        tiny_search_config(tiny_model_dir, tmp_path, "adv", continue_from="x", mode="adversarial",
                           **{"test_takers.n_adapters": 2})  # fmt: skip
