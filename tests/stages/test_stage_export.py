"""Stage ``export`` called directly (no Prefect): the global best adapter, its data set and ``summary.json``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from dataswarms_core.models import canonical_model_name
from dataswarms_core.pso import load_swarm_state
from dataswarms_core.records import (
    AdapterOrigin,
    BenchmarkItem,
    RunSummary,
    ScoringReport,
    SynthesisReport,
)
from dataswarms_core.stages.layout import swarm_key

NAMES = ["g0", "g1", "g2"]


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
    for url in summary.outputs.model_dump(exclude_none=True).values():
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
    assert folder == Path(run.url("packages/iter_0001/adapter"))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(format_model_dir), str(folder))
    assert model.peft_config["default"].base_model_name_or_path == canonical_model_name(str(format_model_dir))
    origin = AdapterOrigin.read(run, "packages/iter_0001/adapter/dataswarms.json")
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


def test_package_items_carry_the_global_best_iteration(exported):
    cfg, info, run, _, _, _, _, summary = exported
    rows = [BenchmarkItem.model_validate(r) for r in run.read_jsonl("packages/iter_0001/items.jsonl")]
    c = summary.package_counts
    assert len(rows) == summary.export_items == c.written and c.asked == cfg.export.items
    assert c.requested == c.calls * cfg.generation.items_written
    assert c.written + c.surplus + c.duplicates + c.parse_failures + c.copies == c.requested
    assert rows, "the format-trained model writes parsable items"
    # labelled with the iteration the best was evaluated at
    assert all(r.iteration == summary.global_best_iteration == 0 for r in rows)
    assert all(r.generator == summary.global_best_particle and r.seed == cfg.seed for r in rows)
    assert all(r.run_name == info.run_name and r.config_hash == info.config_hash for r in rows)
    parquet = pd.read_parquet(summary.outputs.items_parquet)
    assert list(parquet.columns) == list(BenchmarkItem.model_fields)
    assert parquet.to_dict("records") == [r.model_dump() for r in rows]
    assert summary.outputs.package == run.url("packages/iter_0001")
    report = Path(summary.outputs.report).read_text()
    assert summary.global_best_particle in report
