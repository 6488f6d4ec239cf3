"""Stage ``synthesis`` called directly (no Prefect): generators of a swarm checkpoint write items."""

from __future__ import annotations

from collections import Counter

import pytest
from tiny import hand_made_manifest, tiny_search_config

from dataswarms_core import stages
from dataswarms_core.pso import load_swarm_state
from dataswarms_core.records import CopyRow, ItemRow, ReplyRow, SynthesisReport
from dataswarms_core.stages.layout import swarm_key
from dataswarms_core.stages.setup import load_run_task

NAMES = ["g0", "g1", "g2"]


@pytest.fixture(scope="module")
def synthesized(format_model_dir, tmp_path_factory):
    """prepare_run + seed generators (hand-made adapters on the format-trained model) + init_swarms, then
    ``synthesize`` at iteration 0."""
    root = tmp_path_factory.mktemp("synthesis")
    cfg = tiny_search_config(format_model_dir, root, "synthesis-run")
    info = stages.prepare_run(cfg)
    manifest = hand_made_manifest(cfg, format_model_dir, NAMES)
    run = stages.run_store(cfg)
    stages.init_swarms(cfg, run, {"generators": manifest})
    report = stages.synthesize(cfg, info, run, 0)
    return cfg, info, run, report


def test_synthesis_report_counts_add_up(synthesized):
    cfg, _, run, report = synthesized
    assert SynthesisReport.read(run, "iterations/iter_0000/synthesis.json") == report
    assert report.iteration == 0 and list(report.counts) == NAMES
    requested = cfg.generation.calls_per_generator * cfg.generation.items_written
    for name, c in report.counts.items():
        assert c.requested == requested == 6, name
        assert c.items + c.copies + c.duplicates + c.parse_failures == c.requested, name
        assert 0 <= c.empty_replies <= cfg.generation.calls_per_generator
    assert report.items == sum(c.items for c in report.counts.values())
    assert report.parse_failures == sum(c.parse_failures for c in report.counts.values())
    assert report.items > 0  # the format-trained model writes parsable items
    assert report.seconds > 0


def test_replies_and_items_files(synthesized):
    cfg, _, run, report = synthesized
    replies = [ReplyRow.model_validate(r) for r in run.read_jsonl("iterations/iter_0000/replies.jsonl")]
    assert len(replies) == len(NAMES) * cfg.generation.calls_per_generator
    assert Counter(r.generator for r in replies) == dict.fromkeys(NAMES, 2)
    assert sorted({r.call for r in replies}) == [0, 1]
    for name in NAMES:
        mine = [r for r in replies if r.generator == name]
        assert sum(r.missing for r in mine) == report.counts[name].parse_failures
        assert sum(r.items + r.missing for r in mine) == report.counts[name].requested
        c = report.counts[name]
        assert sum(r.items for r in mine) == c.items + c.copies + c.duplicates
    items = [ItemRow.model_validate(r) for r in run.read_jsonl("iterations/iter_0000/items.jsonl")]
    assert len(items) == report.items
    for name in NAMES:
        mine = [r for r in items if r.generator == name]
        assert len(mine) == report.counts[name].items
        assert [r.index for r in mine] == list(range(len(mine)))
        assert len({r.item for r in mine}) == len(mine)  # no exact duplicates kept
    assert all(r.iteration == 0 and r.seed == cfg.seed and r.item.strip() == r.item and r.item for r in items)
    assert all(0 <= r.call < cfg.generation.calls_per_generator for r in items)


def test_copies_file(synthesized):
    """Copy detection is on by default: ``copies.jsonl`` (written even when empty) lists every item left out as
    a copy, as many per generator as ``GeneratorCounts.copies``, none of them among the kept items."""
    cfg, info, run, report = synthesized
    assert cfg.copies.enabled
    copies = [CopyRow.model_validate(r) for r in run.read_jsonl("iterations/iter_0000/copies.jsonl")]
    assert Counter(r.generator for r in copies) == {n: c.copies for n, c in report.counts.items() if c.copies}
    items = run.read_jsonl("iterations/iter_0000/items.jsonl")
    kept = {(r["generator"], r["item"]) for r in items}
    dev = load_run_task(cfg, info).dev["input"].tolist()
    for r in copies:
        assert (r.generator, r.item) not in kept and r.iteration == 0
        assert r.kind in ("shown", "dev", "test", "items") and r.cosine is not None  # embeddings are on
        assert r.overlap >= cfg.copies.overlap_threshold or r.cosine >= cfg.copies.embedding_threshold
        if r.kind in ("shown", "dev"):
            assert dev[r.closest_index] == r.closest
        if r.kind == "items":
            assert items[r.closest_index]["item"] == r.closest


def test_sample_generators_is_seeded(synthesized):
    cfg, info, run, _ = synthesized
    task = load_run_task(cfg, info)
    state = load_swarm_state(run, swarm_key("generators", 0))
    lora = state.metadata["lora_config"]
    generators = {n: (lora, x) for n, x in zip(state.names, state.positions, strict=True)}
    kwargs = {"calls": cfg.generation.calls_per_generator, "iteration": 0, "stage": "synthesis"}
    first = stages.sample_generators(cfg, info, task, generators, **kwargs)
    second = stages.sample_generators(cfg, info, task, generators, **kwargs)
    assert first.items == second.items and first.replies == second.replies
    assert first.counts == second.counts and first.copies == second.copies
    # synthesize is sample_generators with the run's settings and the "synthesis" stream, written to files
    assert [r.model_dump() for r in first.items] == run.read_jsonl("iterations/iter_0000/items.jsonl")
    assert [r.model_dump() for r in first.replies] == run.read_jsonl("iterations/iter_0000/replies.jsonl")
    assert [r.model_dump() for r in first.copies] == run.read_jsonl("iterations/iter_0000/copies.jsonl")
