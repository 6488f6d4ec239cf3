"""Adversarial Swarms end to end through Prefect on the tiny model (docs/method.md §6): both swarms move, the
pool fills with generated items (or stays real in the static control), every output is written and published,
and the two runs' curves compare in one plot and table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from tiny import tiny_search_config

from dataswarms_core.records import RunSummary

ADVERSARIAL = {
    "mode": "adversarial", "test_takers.n_adapters": 2, "adversarial.pool_size": 10, "adversarial.test_items": 6,
    "adversarial.replacement_probability": 0.5, "pso.max_iterations": 3,
}  # fmt: skip


def adversarial_config(model_dir: Path, root: Path, name: str, **overrides):
    """The tiny search in adversarial mode: 3 generators, test-taker swarm t0/t1, a pool of 10, 3 iterations."""
    return tiny_search_config(model_dir, root, name, **{**ADVERSARIAL, **overrides})


@pytest.fixture(scope="module")
def both_runs(prefect_harness, format_model_dir, tmp_path_factory):
    """An adversarial run and its static control (same seed and settings but the pool)."""
    from dataswarms.flows.search import data_swarms_search

    root = tmp_path_factory.mktemp("adversarial-flow")
    runs = {}
    for pool in ("adversarial", "static"):
        cfg = adversarial_config(format_model_dir, root, f"adv-{pool}", **{"adversarial.pool": pool})
        runs[pool] = (root / f"adv-{pool}", data_swarms_search(cfg))
    return root, runs


def _tensors(run: Path, swarm: str, k: int) -> dict[str, torch.Tensor]:
    return load_file(run / f"swarms/{swarm}/iter_{k:04d}/tensors.safetensors")


def test_both_swarms_move_and_the_generators_face_the_test_taker_swarm(both_runs):
    _, runs = both_runs
    run, summary = runs["adversarial"]
    assert summary.mode == "adversarial" and summary.iterations_completed == 3
    pointer = json.loads((run / "checkpoint.json").read_text())
    assert pointer["swarms"] == {
        "generators": "swarms/generators/iter_0003",
        "test_takers": "swarms/test_takers/iter_0003",
    }
    assert pointer["pool"] == "pools/iter_0003"
    for swarm in ("generators", "test_takers"):
        before, after = _tensors(run, swarm, 0), _tensors(run, swarm, 1)
        positions = [k for k in before if k.startswith("positions/")]
        assert positions and any(not torch.equal(before[k], after[k]) for k in positions), swarm
    # The generators were scored against the current test-taker swarm, not the fixed test takers.
    for k in range(3):
        scoring = json.loads((run / f"iterations/iter_{k:04d}/generators/scoring.json").read_text())
        assert scoring["test_takers"] == ["t0", "t1"] and scoring["objective"] == "difficulty"
    # The moved generators wrote the items of the next iteration: iterations 0..3 have items.
    assert all((run / f"iterations/iter_{k:04d}/items.jsonl").exists() for k in range(4))


def test_the_two_swarms_draw_from_distinct_random_streams(both_runs):
    """A regression test for unlabeled seeds: with one run seed, the swarms' PSO factors and initial
    velocities differ, and the pool draw has its own stream."""
    from dataswarms_core.seeding import derive_seed, swarm_stream

    _, runs = both_runs
    run, _ = runs["adversarial"]
    gen = json.loads((run / "iterations/iter_0000/generators/pso.json").read_text())
    tt = json.loads((run / "iterations/iter_0000/test_takers/pso.json").read_text())
    assert gen["weights"][:2] != tt["weights"][:2]
    streams = {derive_seed(0, *swarm_stream(s, "pso"), 0) for s in ("generators", "test_takers")}
    pool = json.loads((run / "pools/iter_0001/pool.json").read_text())
    assert len(streams) == 2 and pool["seed"] not in streams
    assert pool["seed"] == derive_seed(0, "pool", "test_takers", 0)
    assert pool["seed"] != json.loads((run / "pools/iter_0002/pool.json").read_text())["seed"]


def test_summary_outputs_and_the_pool(both_runs):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, runs = both_runs
    run, summary = runs["adversarial"]
    a = summary.adversarial
    assert RunSummary.model_validate_json((run / "summary.json").read_text()) == summary
    assert a.pool == "adversarial" and a.test_takers == ["t0", "t1"] and a.held_out_items == 6
    assert [p.iteration for p in a.curve] == [0, 1, 2]
    for k, point in enumerate(a.curve):
        scoring = json.loads((run / f"iterations/iter_{k:04d}/test_takers/scoring.json").read_text())
        assert a.utility_history[k] == dict(zip(scoring["test_takers"], scoring["utilities"], strict=True))
        assert point.pool_score == max(scoring["utilities"])  # the iteration's best test taker
        held = json.loads((run / f"iterations/iter_{k:04d}/test_takers/held_out.json").read_text())
        assert point.held_out_score == held["held_out_score"] and point.test_taker == held["test_taker"]
        pool = json.loads((run / f"pools/iter_{k + 1:04d}/pool.json").read_text())
        assert point.generated_share == pool["generated_share"] == scoring["generated_share"]
    shares = [p.generated_share for p in a.curve]
    assert shares[-1] > 0 and a.generated_items > 0  # generated items entered the pool
    assert a.global_best_utility == max(max(u.values()) for u in a.utility_history)
    for url in summary.outputs.model_dump(exclude_none=True).values():
        assert Path(url).exists(), url
    # The test-taker global best loads with PEFT.
    adapter = Path(summary.outputs.test_taker_adapter)
    origin = json.loads((adapter / "dataswarms.json").read_text())
    assert origin["swarm"] == "test_takers" and origin["particle"] == a.global_best_particle
    assert origin["utility"] == a.global_best_utility
    run_info = json.loads((run / "run.json").read_text())
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(run_info["model_path"]), adapter)
    # Generated pool items carry their provenance and are items the generators wrote.
    written = {
        json.loads(line)["item"]
        for k in range(4)
        for line in (run / f"iterations/iter_{k:04d}/items.jsonl").read_text().splitlines()
    }
    pool_items = [json.loads(line) for line in Path(summary.outputs.pool_items).read_text().splitlines()]
    assert pool_items and all(
        r["item"] in written and r["generator"] and r["entered"] is not None for r in pool_items
    )
    metrics = pd.read_csv(summary.outputs.test_taker_metrics_csv)
    assert len(metrics) == 3 * 2 and metrics["best"].sum() == 3
    report = (run / "export/report.md").read_text()
    assert report.startswith("# Adversarial Swarms search") and "Generalisation curve" in report
    curve = pd.read_csv(summary.outputs.generalisation_csv)
    assert curve["held_out_score"].tolist() == pytest.approx([p.held_out_score for p in a.curve], nan_ok=True)


def test_static_control_never_replaces_the_pool(both_runs):
    _, runs = both_runs
    run, summary = runs["static"]
    a = summary.adversarial
    assert a.pool == "static" and a.generated_items == 0
    assert [p.generated_share for p in a.curve] == [0.0, 0.0, 0.0] and [p.replaced for p in a.curve] == [
        0,
        0,
        0,
    ]
    first = (run / "pools/iter_0000/pool.jsonl").read_text()
    assert all((run / f"pools/iter_{k:04d}/pool.jsonl").read_text() == first for k in range(1, 4))
    # The same seed and settings but the pool: the first test-taker scoring differs only through the pool.
    adversarial_run, _ = runs["adversarial"]
    for k in (0,):
        assert (run / f"swarms/test_takers/iter_{k:04d}/tensors.safetensors").read_bytes() == (
            adversarial_run / f"swarms/test_takers/iter_{k:04d}/tensors.safetensors"
        ).read_bytes()


def test_prefect_artifacts_of_an_adversarial_run(both_runs):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    keys = [f"adv-adversarial-{what}" for what in ("generalisation", "test-takers", "pool-items", "report")]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    assert {a.key for a in found} == set(keys)
    report = next(a for a in found if a.key.endswith("-report"))
    assert "Generalisation curve" in str(report.data)


@pytest.mark.parametrize("point", ["pool-scoring:1", "taker-pso:1"])
def test_killed_adversarial_run_resumes_to_the_uninterrupted_result(
    both_runs, format_model_dir, tmp_path, point
):
    """SIGKILL while the test takers are scored on the pool, and while the test-taker swarm moves (iteration
    1); the resumed run ends with the histories, pools and bit-identical tensors of both swarms of the
    uninterrupted run."""
    from crash_run import run_and_kill

    from dataswarms.flows.search import data_swarms_search

    _, runs = both_runs
    reference_dir, reference = runs["adversarial"]
    cfg = adversarial_config(
        format_model_dir, tmp_path, "adv-adversarial", **{"adversarial.pool": "adversarial"}
    )
    run_and_kill(cfg, tmp_path, point)
    run = tmp_path / "adv-adversarial"
    assert json.loads((run / "checkpoint.json").read_text())["iteration"] == 1  # iteration 1 never completed
    assert not (run / "summary.json").exists()

    summary = data_swarms_search(cfg, resume=True)
    assert summary.resumes == 1
    for key in ("utility_history", "score_matrices", "global_best_utility", "global_best_particle",
                "step_length_history", "items_per_iteration", "parse_failures"):  # fmt: skip
        assert getattr(summary, key) == getattr(reference, key), key
    assert summary.adversarial.model_dump(exclude={"seconds"}) == reference.adversarial.model_dump(
        exclude={"seconds"}
    )
    for swarm in ("generators", "test_takers"):
        a, b = _tensors(reference_dir, swarm, 3), _tensors(run, swarm, 3)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), swarm
        state = f"swarms/{swarm}/iter_0003/state.json"
        assert json.loads((reference_dir / state).read_text()) == json.loads((run / state).read_text())
    for k in range(4):
        pool = f"pools/iter_{k:04d}/pool.jsonl"
        assert (reference_dir / pool).read_text() == (run / pool).read_text(), pool


def test_resume_checks_the_pool_and_never_changes_the_mode(both_runs, format_model_dir, tmp_path):
    from dataswarms_core import stages
    from dataswarms_core.errors import ConfigMismatchError, StorageError

    _, runs = both_runs
    shutil.copytree(runs["adversarial"][0], tmp_path / "adv-adversarial")
    cfg = adversarial_config(
        format_model_dir, tmp_path, "adv-adversarial", **{"adversarial.pool": "adversarial"}
    )
    stages.preflight(cfg, resume=True)  # the copy is a complete run folder
    one_swarm = tiny_search_config(format_model_dir, tmp_path, "adv-adversarial", **{"pso.max_iterations": 3})
    with pytest.raises(
        ConfigMismatchError, match="this adversarial run cannot be resumed in data-swarms mode"
    ):
        stages.preflight(one_swarm, resume=True, force=True)
    (tmp_path / "adv-adversarial/pools/iter_0003/pool.json").unlink()
    with pytest.raises(StorageError, match=r"checkpoint.json: names pool pools/iter_0003, which is missing"):
        stages.preflight(cfg, resume=True)


def test_compare_puts_both_curves_in_one_table_and_plot(both_runs, exported, tmp_path):
    from typer.testing import CliRunner

    from dataswarms.flows.cli import app

    root, runs = both_runs
    adversarial, static = (str(runs[p][0]) for p in ("adversarial", "static"))
    result = CliRunner().invoke(
        app, ["compare", adversarial, static, "--output", str(tmp_path / "cmp")], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0, result.output
    table = (tmp_path / "cmp/comparison.md").read_text()
    assert "| iteration | adversarial: held-out | adversarial: accuracy |" in table
    assert "static: held-out" in table and "(never replaced)" in table
    curve = pd.read_csv(tmp_path / "cmp/generalisation.csv")
    assert sorted(set(curve["run"])) == ["adversarial", "static"] and len(curve) == 6
    for pool in ("adversarial", "static"):
        mine = curve[curve["run"] == pool]
        want = [p.held_out_score for p in runs[pool][1].adversarial.curve]
        assert mine["held_out_score"].tolist() == pytest.approx(want, nan_ok=True)
    assert (tmp_path / "cmp/generalisation.png").read_bytes().startswith(b"\x89PNG")
    # The same run twice, an unfinished run and a search of the other mode are refused in one line.
    result = CliRunner().invoke(app, ["compare", adversarial, adversarial + "/"], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "given twice; compare needs different runs" in result.output
    unfinished = tmp_path / "unfinished"
    shutil.copytree(runs["static"][0], unfinished)
    (unfinished / "summary.json").unlink()
    result = CliRunner().invoke(app, ["compare", adversarial, str(unfinished)], env={"COLUMNS": "300"})
    assert (
        result.exit_code == 2
        and "not a finished run (no summary.json); finish it with dataswarms resume" in (result.output)
    )
    _, _, search_run, *_ = exported
    result = CliRunner().invoke(app, ["compare", adversarial, search_run.root], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "is a data-swarms run; compare needs adversarial runs" in result.output


def test_the_smaller_iteration_limit_of_the_two_swarms_ends_the_run(
    prefect_harness, format_model_dir, tmp_path
):
    from dataswarms.flows.search import data_swarms_search

    cfg = adversarial_config(format_model_dir, tmp_path, "short", **{"adversarial.pso.max_iterations": 1})
    assert cfg.pso.max_iterations == 3 and cfg.max_iterations == 1
    summary = data_swarms_search(cfg)
    assert summary.iterations_completed == 1 and len(summary.adversarial.curve) == 1
    assert summary.adversarial.stopped == "max_iterations"
    assert (
        summary.stopped == "test_takers: max_iterations"
    )  # the generators could go on; the run says why not
