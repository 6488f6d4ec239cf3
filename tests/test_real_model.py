"""End to end with the real SmolLM2-135M-Instruct on real GSM8K items, through the CLI (one iteration, tiny
sizes), then `dataswarms evaluate` of its benchmark package with SmolLM2 and SmolLM2 + the exported adapter.
Converts the bundled GGUF on first use (~20 s, cached under $DATASWARMS_HOME)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

pytestmark = pytest.mark.real_model

CONFIG = {
    "seed": 1,
    "model": {"base_model": "smollm2-135m-instruct"},
    "task": {"source": "gsm8k-quickstart"},
    "seed_generators": {"n_generators": 2, "embedding": "minilm", "steps": 1, "batch_size": 1, "learning_rate": 1e-3,
                        "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}},
    "test_takers": {"include_base": True, "n_adapters": 1, "steps": 2, "batch_size": 2, "learning_rate": 1e-3,
                    "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}},
    "generation": {"items_shown": 3, "items_written": 3, "calls_per_generator": 2, "max_new_tokens": 120, "batch_size": 8},
    "scoring": {"answer_max_new_tokens": 16, "batch_size": 16},
    "pso": {"max_iterations": 1},
    "export": {"items": 4, "max_extra_calls": 4, "answers": "reference-model", "test_items": 4},
}  # fmt: skip


def test_cli_search_with_smollm2(prefect_harness, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dataswarms.flows.cli import app

    config = tmp_path / "real.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    result = CliRunner().invoke(
        app,
        ["run", "--config", str(config), "--output", str(tmp_path / "runs"), "--run-name", "real"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "outputs:" in result.output and "prefect server start" in result.output

    run = tmp_path / "runs" / "real"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations_completed"] == 1
    assert sorted(summary["utility_history"][0]) == ["g0", "g1"]
    assert all(0.0 <= u <= 1.0 for u in summary["utility_history"][0].values())
    assert summary["items_per_iteration"][0] > 0  # SmolLM2 wrote items that parsed
    items = [json.loads(line) for line in (run / "iterations/iter_0000/items.jsonl").read_text().splitlines()]
    assert all(len(r["item"].split()) >= 3 for r in items)  # real text, not fragments
    answers_items = json.loads((run / "iterations/iter_0000/generators/scoring.json").read_text())
    assert answers_items["judge_failures"] == 0 and answers_items["mean_judge_mass"] > 0.01

    # The exported global best loads with PEFT on the converted base model and generates.
    adapter = Path(summary["outputs"]["global_best_adapter"])
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == (
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    )  # portable: the model's name, not a path on this machine
    origin = json.loads((adapter / "dataswarms.json").read_text())
    run_info = json.loads((run / "run.json").read_text())
    assert origin["model_fingerprint"] == run_info["model_fingerprint"] and origin["particle"] in ("g0", "g1")
    base_path = run_info["model_path"]  # this machine's copy of those weights
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write one math word problem."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    # The package: items with provenance and SmolLM2's reference answers, then a leaderboard on it.
    package = Path(summary["outputs"]["package"])
    rows = [json.loads(line) for line in (package / "items.jsonl").read_text().splitlines()]
    assert 0 < len(rows) <= 4 and all(r["run_name"] == "real" and r["id"].startswith("ds-") for r in rows)
    assert all(r["reference_answer_by"] == "model-written: HuggingFaceTB/SmolLM2-135M-Instruct" for r in rows
               if r["reference_answer"] is not None)  # fmt: skip
    manifest = json.loads((package / "package.json").read_text())
    assert manifest["counts"]["written"] == len(rows) and manifest["test_items"] == 4
    result = CliRunner().invoke(
        app,
        ["evaluate", str(package), "--model", "smollm2-135m-instruct",
         "--model", f"tuned=smollm2-135m-instruct+{package}/adapter"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| `tuned` |" in result.output and "Kendall" in result.output
    board = json.loads((package / "leaderboard" / "leaderboard.json").read_text())
    assert sorted(r["model"] for r in board["rows"]) == ["HuggingFaceTB/SmolLM2-135M-Instruct", "tuned"]
    assert all(
        r["items"] == len(rows) and r["mean"] is not None and 0 <= r["mean"] <= 1 for r in board["rows"]
    )


ADVERSARIAL = {
    **CONFIG,
    "mode": "adversarial",
    "seed_generators": {**CONFIG["seed_generators"], "steps": 1},
    "test_takers": {**CONFIG["test_takers"], "include_base": False, "n_adapters": 2},
    "generation": {**CONFIG["generation"], "calls_per_generator": 1},
    "pso": {"max_iterations": 2},
    "adversarial": {"pool_size": 6, "test_items": 4, "replacement_probability": 0.5},
    "export": {"items": 2, "max_extra_calls": 2, "answers": "none", "test_items": 2},
}  # fmt: skip


def test_adversarial_swarms_with_smollm2(prefect_harness, tmp_path):
    """Adversarial Swarms with the real SmolLM2 on the bundled GSM8K, 2 iterations: both swarms move, generated
    items enter the pool, the curve has a point per iteration, the test-taker global best loads with PEFT."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from dataswarms.flows.search import data_swarms_search
    from dataswarms_core.config import RunConfig

    cfg = RunConfig.model_validate({**ADVERSARIAL, "storage": {"root": str(tmp_path)}, "run_name": "adv"})
    summary = data_swarms_search(cfg)
    run, a = tmp_path / "adv", summary.adversarial
    assert summary.mode == "adversarial" and summary.iterations_completed == 2
    assert [sorted(u) for u in a.utility_history] == [["t0", "t1"]] * 2
    assert all(0.0 < u <= 1.0 for h in a.utility_history for u in h.values())  # real judge scores on the pool
    assert [p.iteration for p in a.curve] == [0, 1] and all(p.held_out_score is not None for p in a.curve)
    assert all(p.held_out_accuracy is not None for p in a.curve)  # SmolLM2's answers against GSM8K references
    assert a.judge_failures == 0 and a.held_out_items == 4
    assert summary.step_length_history[0] == 1.0 and a.step_length_history[0] == 1.0  # both swarms moved
    pools = [json.loads((run / f"pools/iter_{k:04d}/pool.json").read_text()) for k in range(3)]
    assert [p["iteration"] for p in pools] == [0, 1, 2] and pools[0]["generated"] == 0
    for k in (1, 2):  # the pool of iteration k - 1 drew from the items the moved generators wrote
        written = (run / f"iterations/iter_{k:04d}/items.jsonl").read_text().splitlines()
        assert pools[k]["generated_available"] == len(written)
        assert a.curve[k - 1].generated_share == pools[k]["generated_share"] == pools[k]["generated"] / 6
    adapter = Path(summary.outputs.test_taker_adapter)
    run_info = json.loads((run / "run.json").read_text())
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(run_info["model_path"]), adapter)
    assert "Generalisation curve" in (run / "export/report.md").read_text()
