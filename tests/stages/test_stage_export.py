"""Stage ``export`` called directly (no Prefect): the global best adapter, its data set and ``summary.json``."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny import hand_made_manifest, tiny_search_config

from dataswarms_core import stages
from dataswarms_core.models import canonical_model_name
from dataswarms_core.pso import load_swarm_state
from dataswarms_core.records import (
    AdapterOrigin,
    ItemRow,
    RunSummary,
    ScoringReport,
    SynthesisReport,
)
from dataswarms_core.stages.layout import cache_store, swarm_key
from dataswarms_core.stages.sft import TEST_TAKERS

NAMES = ["g0", "g1", "g2"]


@pytest.fixture(scope="module")
def exported(format_model_dir, tmp_path_factory):
    """One iteration through the stages (synthesize → score → pso_step → pointer) on hand-made generators,
    the base model as the only test taker; then ``export_run``."""
    root = tmp_path_factory.mktemp("export")
    cfg = tiny_search_config(
        format_model_dir, root, "export-run", **{"test_takers.n_adapters": 0, "export.calls": 8}
    )
    info = stages.prepare_run(cfg)
    generators = hand_made_manifest(cfg, format_model_dir, NAMES)
    takers = stages.train_test_takers(
        cfg, info, cache_store(cfg, TEST_TAKERS, stages.adapters_cache_key(cfg, info, TEST_TAKERS))
    )
    run = stages.run_store(cfg)
    stages.init_swarms(cfg, run, {"generators": generators})
    with pytest.raises(RuntimeError, match="no completed iteration to export"):
        stages.export_run(cfg, info, run, time.time())
    synthesis = stages.synthesize(cfg, info, run, 0)
    scoring = stages.score(cfg, info, run, 0, takers)
    step = stages.pso_step(cfg, run, 0, "generators")
    stages.write_checkpoint_pointer(run, 1, ["generators"], step.stopped)
    started = time.time()
    summary = stages.export_run(cfg, info, run, started)
    return cfg, info, run, generators, synthesis, scoring, step, summary


def test_summary_json(exported):
    cfg, info, run, _, synthesis, scoring, step, summary = exported
    assert RunSummary.model_validate_json(Path(run.url("summary.json")).read_text()) == summary
    assert RunSummary.read(run, "summary.json") == summary
    assert summary.run_name == "export-run" and summary.swarm == "generators" and summary.seed == cfg.seed
    assert summary.generators == NAMES and summary.test_takers == ["base"]
    assert summary.iterations_completed == 1 and summary.stopped is None
    best = max(range(3), key=lambda i: scoring.utilities[i])
    assert summary.global_best_particle == NAMES[best] == step.global_best_particle
    assert summary.global_best_utility == max(scoring.utilities)
    assert summary.global_worst_utility == min(scoring.utilities)
    assert summary.global_best_iteration == 0
    assert summary.utility_history == [dict(zip(NAMES, scoring.utilities, strict=True))]
    assert summary.score_matrices == [scoring.score_matrix]
    assert summary.step_length_history == [1.0]
    assert summary.items_per_iteration == [synthesis.items]
    assert summary.parse_failures == synthesis.parse_failures
    assert summary.empty_generators == len(scoring.empty_generators)
    assert summary.reference_scores is None  # difficulty needs none
    assert summary.config_hash == info.config_hash and summary.resumes == 0
    for url in summary.outputs.model_dump().values():
        assert Path(url).exists(), url
    assert summary.outputs.last_checkpoint == run.url("swarms/generators/iter_0001")
    metrics = pd.read_csv(summary.outputs.metrics_csv)
    assert len(metrics) == 3 and sorted(metrics["particle"]) == NAMES
    assert [SynthesisReport.read(run, "iterations/iter_0000/synthesis.json")] == [synthesis]
    assert ScoringReport.read(run, "iterations/iter_0000/generators/scoring.json") == scoring


def test_exported_adapter_is_the_global_best_and_loads_with_peft(exported, format_model_dir):
    from peft import PeftModel, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    _, info, run, generators, _, _, _, summary = exported
    folder = Path(summary.outputs.global_best_adapter)
    assert folder == Path(run.url("export/global_best_adapter"))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(format_model_dir), str(folder))
    assert model.peft_config["default"].base_model_name_or_path == canonical_model_name(str(format_model_dir))
    origin = AdapterOrigin.read(run, "export/global_best_adapter/dataswarms.json")
    assert (origin.model_fingerprint, origin.particle, origin.iteration) == (
        info.model_fingerprint, summary.global_best_particle, summary.global_best_iteration
    )
    loaded = get_peft_model_state_dict(model)
    state = load_swarm_state(run, swarm_key("generators", 1))
    assert loaded.keys() == state.global_best.keys()
    assert all(torch.equal(loaded[k], state.global_best[k]) for k in loaded)
    # the global best is the best particle's position when it was evaluated: its seed adapter here
    from dataswarms_core.stages.components import read_adapter_url

    _, seed_tensors = read_adapter_url(generators.adapters[summary.global_best_particle].url, {})
    assert all(torch.equal(loaded[k], seed_tensors[k]) for k in loaded)


def test_synthetic_data_carry_the_global_best_iteration(exported):
    cfg, _, run, _, _, _, _, summary = exported
    rows = [ItemRow.model_validate(r) for r in run.read_jsonl("export/synthetic.jsonl")]
    assert len(rows) == summary.export_items == summary.export_counts.items
    assert summary.export_counts.requested == cfg.export.calls * cfg.generation.items_written
    c = summary.export_counts
    assert c.items + c.duplicates + c.parse_failures == c.requested
    assert rows, "the format-trained model writes parsable items"
    # sampled at iteration 1 (the completed iterations), labelled with the iteration the best was evaluated at
    assert all(r.iteration == summary.global_best_iteration == 0 for r in rows)
    assert all(r.generator == summary.global_best_particle and r.seed == cfg.seed for r in rows)
    parquet = pd.read_parquet(summary.outputs.synthetic_parquet)
    assert list(parquet.columns) == list(ItemRow.model_fields)
    assert parquet.to_dict("records") == [r.model_dump() for r in rows]
    report = Path(summary.outputs.report).read_text()
    assert summary.global_best_particle in report
