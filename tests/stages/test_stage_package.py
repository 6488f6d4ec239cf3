"""Stage ``package``: the benchmark package a search writes (items with provenance, counts, dataset card,
reference answers, real test items, harness files), and ``write_package`` on an earlier checkpoint."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from dataswarms_core.records import BenchmarkItem, BenchmarkManifest, CopyRow
from dataswarms_core.stages import package as package_stage
from dataswarms_core.stages.package import collect_items, item_id, local_run_info, package_key, write_package


def _manifest(run) -> BenchmarkManifest:
    return BenchmarkManifest.read(run.child(package_key(1)), "package.json")


def test_item_ids_are_stable_hashes():
    assert item_id("What is 2 + 2?") == item_id("What is 2 + 2?")
    assert item_id("a") != item_id("b") and item_id("a").startswith("ds-") and len(item_id("a")) == 19


def test_manifest_counts_and_provenance(exported):
    cfg, info, run, _, _, _, _, summary = exported
    manifest = _manifest(run)
    assert manifest.version == summary.package_version and len(manifest.version) == 12
    assert (manifest.run_name, manifest.config_hash, manifest.task_hash) == (
        info.run_name, info.config_hash, info.task_hash
    )  # fmt: skip
    assert manifest.base_model_fingerprint == info.model_fingerprint
    assert manifest.generator == summary.global_best_particle and manifest.checkpoint_iteration == 1
    assert "MIT" in manifest.task_licence  # the built-in GSM8K sample's source line
    c = manifest.counts
    first_round = math.ceil(cfg.export.items / cfg.generation.items_written)
    assert c.extra_calls == c.calls - first_round and 0 <= c.extra_calls <= cfg.export.max_extra_calls
    assert (c.shortfall is None) == (c.written == c.asked)
    assert c.written <= c.asked and (c.surplus == 0 or c.written == c.asked)
    items = [BenchmarkItem.model_validate(r) for r in run.read_jsonl("packages/iter_0001/items.jsonl")]
    assert [it.index for it in items] == list(range(len(items)))
    assert len({it.id for it in items}) == len(items) and all(it.id == item_id(it.item) for it in items)
    copies = [CopyRow.model_validate(r) for r in run.read_jsonl("packages/iter_0001/copies.jsonl")]
    assert len(copies) == c.copies == manifest.copies_excluded


def test_reference_answers_are_marked_model_written(exported):
    _, _, run, _, _, _, _, _ = exported
    manifest = _manifest(run)
    assert manifest.answers == "reference-model" and manifest.reference_model == manifest.base_model
    items = [BenchmarkItem.model_validate(r) for r in run.read_jsonl("packages/iter_0001/items.jsonl")]
    answered = [it for it in items if it.reference_answer is not None]
    assert answered and len(answered) + manifest.reference_answer_failures == len(items)
    assert all(it.reference_answer_by == f"model-written: {manifest.reference_model}" for it in answered)


def test_real_test_items_for_rank_comparison(exported):
    cfg, _, run, _, _, _, _, _ = exported
    tests = run.read_jsonl("packages/iter_0001/test.jsonl")
    assert len(tests) == cfg.export.test_items == _manifest(run).test_items
    assert all(set(t) == {"input", "output"} and t["output"] for t in tests)


def test_dataset_card_front_matter(exported):
    _, _, run, _, _, _, _, _ = exported
    manifest = _manifest(run)
    card = run.read_text("packages/iter_0001/README.md")
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    ds = meta["dataswarms"]
    assert ds["version"] == manifest.version and ds["objective"] == manifest.objective
    assert ds["items_asked"] == manifest.counts.asked and ds["items_written"] == manifest.counts.written
    assert (
        ds["parse_failures"] == manifest.counts.parse_failures
        and ds["source_task_licence"] == manifest.task_licence
    )
    assert meta["configs"][0]["data_files"][0]["path"] == "items.jsonl"
    assert "model-written" in card and "## Copies left out" in card


def test_harness_files_listed_and_present(exported):
    _, _, run, _, _, _, _, _ = exported
    manifest = _manifest(run)
    folder = run.child(package_key(1))
    for role, path in manifest.files.items():
        assert folder.exists(path) or folder.exists(f"{path}/adapter_config.json"), (role, path)
    assert any(k.startswith("lm_eval") for k in manifest.files) and any(
        k.startswith("inspect") for k in manifest.files
    )


def test_earlier_checkpoint_and_bad_iteration(exported):
    cfg, info, run, _, _, _, _, _ = exported
    with pytest.raises(ValueError, match="--iteration must be between 1 and 1"):
        write_package(cfg, info, run, iteration=2)
    assert local_run_info(cfg, run).model_fingerprint == info.model_fingerprint


def test_item_target_bounded_by_extra_calls(exported, monkeypatch):
    """A target that cannot be met stops after export.max_extra_calls extra calls and says why."""
    cfg, info, run, _, _, _, _, _ = exported
    from dataswarms_core.pso import load_swarm_state
    from dataswarms_core.stages.layout import swarm_key
    from dataswarms_core.stages.setup import load_run_task

    state = load_swarm_state(run, swarm_key("generators", 1))
    best = state.names[state.global_best_particle]
    calls_made = []
    real = package_stage.sample_generators

    def counting(*args, **kwargs):
        calls_made.append(kwargs["calls"])
        return real(*args, **kwargs)

    monkeypatch.setattr(package_stage, "sample_generators", counting)
    big = cfg.model_copy(
        update={"export": cfg.export.model_copy(update={"items": 500, "max_extra_calls": 3})}
    )
    got, shortfall = collect_items(
        big, info, load_run_task(cfg, info), best, (state.metadata["lora_config"], state.global_best), 1
    )
    first = math.ceil(500 / cfg.generation.items_written)
    assert calls_made[0] == first and sum(calls_made) == first + 3 == got.calls
    assert shortfall is not None and "export.max_extra_calls 3" in shortfall and "of 500 items" in shortfall
    assert [r.call for r in got.rows] == sorted(r.call for r in got.rows)
    assert max(r.call for r in got.rows) < got.calls
    assert json.dumps(got.counts.model_dump())
