"""The search flow end to end through Prefect (test harness), on a tiny model trained in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import tiny_search_config

from dataswarms_core.records import RunSummary


def _task_states(flow_run_id) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]}))
    return {r.name: r.state.name for r in runs}


def _api_logs(flow_run_id) -> list:
    """The flow run's log rows in the API (flow and task runs), oldest first, after sending what is queued."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter
    from prefect.client.schemas.sorting import LogSort

    from dataswarms.flows._server import drain_prefect_workers

    drain_prefect_workers()
    with get_client(sync_client=True) as client:
        return client.read_logs(
            LogFilter(flow_run_id={"any_": [flow_run_id]}), limit=200, sort=LogSort.TIMESTAMP_ASC
        )


def _api_artifacts(flow_run_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id={"any_": [flow_run_id]}))


def _check_visible_in_the_ui(flow_run_id, summary) -> None:
    """What the Prefect UI shows of a finished 2-iteration search: INFO logs of every stage and iteration,
    task runs named by stage/iteration/swarm, a progress artifact at 100, the report with its plot inlined."""
    names = set(_task_states(flow_run_id))
    assert {
        "prepare", "train-seed-generators", "train-test-takers", "init-swarms", "export",
        "synthesis-iter0000", "scoring-iter0000-generators", "pso-iter0000-generators", "checkpoint-iter0001",
        "synthesis-iter0001", "scoring-iter0001-generators", "pso-iter0001-generators", "checkpoint-iter0002",
    } <= names, names  # fmt: skip

    logs = _api_logs(flow_run_id)
    info = [log.message for log in logs if log.level == 20]
    text = "\n".join(info)
    for k, utilities in enumerate(summary.utility_history):
        line = next(m for m in info if m.startswith(f"iteration {k}: utilities "))
        for g, u in utilities.items():
            assert f"{g} {u:.4f}" in line or f"{g} —" in line, line
        assert "seconds: synthesis " in line and ", scoring " in line and ", pso " in line, line
        assert "parse failures" in line and "judge failures" in line, line
        assert f"synthesis iteration {k}: " in text and f"scoring iteration {k} (generators" in text
        assert f"pso iteration {k} (generators)" in text
    assert "prepare: run " in text and "sft seed_generators: 3 adapters trained" in text
    assert "export: 2 iterations" in text and "done: 2 iterations" in text
    assert any(m.startswith("Beginning flow run") for m in info)  # Prefect's own INFO lines are there too

    artifacts = _api_artifacts(flow_run_id)
    progress = [a for a in artifacts if a.type == "progress"]
    assert len(progress) == 1 and progress[0].data == 100 and progress[0].key.endswith("-progress")
    assert progress[0].description.endswith(": done")
    report = next(a for a in artifacts if a.type == "markdown" and a.key.endswith("-report"))
    assert "](data:image/png;base64," in report.data and "](utilities.png)" not in report.data
    assert len(report.data) < 120_000  # a small data URI
    assert any(a.type == "table" and a.key.endswith("-metrics") for a in artifacts)


def test_search_flow_end_to_end_and_adapter_cache(prefect_harness, format_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from dataswarms.flows.search import data_swarms_search

    root = tmp_path / "runs"
    state = data_swarms_search(tiny_search_config(format_model_dir, root, "tiny-a"), return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    run = root / "tiny-a"
    assert RunSummary.model_validate_json((run / "summary.json").read_text()) == summary
    assert summary.iterations_completed == 2 and summary.stopped == "max_iterations"
    assert [sorted(u) for u in summary.utility_history] == [["g0", "g1", "g2"]] * 2
    assert summary.global_best_utility == max(max(u.values()) for u in summary.utility_history)
    assert summary.step_length_history == [1.0, None]  # the last iteration stops instead of moving
    assert summary.test_takers == ["base", "t0"]
    assert summary.judge_failures == 0
    assert sum(summary.items_per_iteration) > 0  # the format-trained model writes parsable items
    assert summary.swarm == "generators" and summary.format_version == 2
    for url in summary.outputs.model_dump(exclude_none=True).values():
        assert Path(url).exists(), url
    _check_visible_in_the_ui(state.state_details.flow_run_id, summary)

    # Checkpoints: the initial swarm, one after each iteration; per-iteration artifacts.
    assert sorted(p.name for p in (run / "swarms").iterdir()) == ["generators"]
    assert sorted(p.name for p in (run / "swarms/generators").iterdir()) == ["iter_0000", "iter_0001", "iter_0002"]
    pointer = json.loads((run / "checkpoint.json").read_text())
    assert pointer["swarms"] == {"generators": "swarms/generators/iter_0002"} and pointer["iteration"] == 2
    replies = [
        json.loads(line) for line in (run / "iterations/iter_0000/replies.jsonl").read_text().splitlines()
    ]
    synthesis = json.loads((run / "iterations/iter_0000/synthesis.json").read_text())
    assert sum(r["items"] + r["missing"] for r in replies) == sum(
        c["requested"] for c in synthesis["counts"].values()
    )
    assert sum(r["missing"] for r in replies) == synthesis["parse_failures"]
    answers = pd.read_parquet(run / "iterations/iter_0000/answers.parquet")
    assert set(answers["test_taker"]) <= {"base", "t0"}
    assert answers["score"].between(0, 1).all()
    scoring = json.loads((run / "iterations/iter_0000/generators/scoring.json").read_text())
    for g, u in zip(scoring["generators"], scoring["utilities"], strict=True):
        row = scoring["score_matrix"][scoring["generators"].index(g)]
        if g not in scoring["empty_generators"]:
            assert u == pytest.approx(1 - max(row))  # difficulty = 1 − max_t m[g, t]

    metrics = pd.read_csv(run / "export/metrics.csv")
    assert len(metrics) == 6 and set(metrics.columns) >= {
        "iteration",
        "particle",
        "utility",
        "step_length",
        "parse_failures",
    }
    # every requested item is accounted for: 2 iterations × 3 generators × 2 calls × 3 items
    accounted = metrics["items"] + metrics["duplicates"] + metrics["parse_failures"] + metrics["copies"]
    assert int(accounted.sum()) == 36
    assert int(metrics["parse_failures"].sum()) == summary.parse_failures
    package = run / "packages" / f"iter_{summary.iterations_completed:04d}"
    synthetic = [json.loads(line) for line in (package / "items.jsonl").read_text().splitlines()]
    assert all({"id", "generator", "iteration", "seed", "item", "run_name", "config_hash"} <= set(r) for r in synthetic)
    assert len(pd.read_parquet(package / "items.parquet")) == len(synthetic)

    # The exported global best loads with PEFT on the base model and generates.
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(format_model_dir), package / "adapter"
    )
    out = model.generate(input_ids=torch.tensor([[1, 2, 3]]), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 6)

    # A second run with the same data and settings (other PSO settings) reuses the trained adapters.
    sft_files = sorted((root / "_cache").rglob("adapter_model.safetensors"))
    stamps = [p.stat().st_mtime_ns for p in sft_files]
    state_b = data_swarms_search(
        tiny_search_config(format_model_dir, root, "tiny-b", **{"pso.max_iterations": 1}), return_state=True
    )
    assert state_b.is_completed()
    states = _task_states(state_b.state_details.flow_run_id)
    assert states["train-seed-generators"] == "Cached" and states["train-test-takers"] == "Cached"
    assert [p.stat().st_mtime_ns for p in sft_files] == stamps

    # Deleted adapters are trained again instead of a stale cache hit.
    import shutil

    seed_dir = next((root / "_cache" / "seed_generators").iterdir())
    shutil.rmtree(seed_dir)
    state_c = data_swarms_search(
        tiny_search_config(format_model_dir, root, "tiny-c", **{"pso.max_iterations": 1}), return_state=True
    )
    assert state_c.is_completed()
    assert _task_states(state_c.state_details.flow_run_id)["train-seed-generators"] == "Completed"
    assert (seed_dir / "manifest.json").exists()


def test_same_seed_same_swarm(prefect_harness, format_model_dir, tmp_path):
    """Seeded runs are reproducible: two runs with one config give identical utilities and swarm tensors."""
    from safetensors.torch import load_file

    from dataswarms.flows.search import data_swarms_search

    one = data_swarms_search(
        tiny_search_config(format_model_dir, tmp_path / "r1", "same", **{"pso.max_iterations": 1})
    )
    two = data_swarms_search(
        tiny_search_config(format_model_dir, tmp_path / "r2", "same", **{"pso.max_iterations": 1})
    )
    assert one.utility_history == two.utility_history
    a = load_file(tmp_path / "r1/same/swarms/generators/iter_0001/tensors.safetensors")
    b = load_file(tmp_path / "r2/same/swarms/generators/iter_0001/tensors.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_existing_run_name_is_refused(prefect_harness, format_model_dir, tmp_path):
    from dataswarms.flows.search import data_swarms_search

    cfg = tiny_search_config(format_model_dir, tmp_path, "dup", **{"pso.max_iterations": 1})
    (tmp_path / "dup").mkdir()
    (tmp_path / "dup" / "run.json").write_text("{}")
    state = data_swarms_search(cfg, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="a run of this name exists already"):
        state.result()


def _adapter_folder(model_dir: Path, dest: Path) -> Path:
    """A LoRA adapter folder with random non-zero factors on ``model_dir`` (an 'extra' test taker)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = LoraConfig(
        r=2, lora_alpha=4, target_modules=["q_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), cfg).save_pretrained(dest)
    return dest


def test_composite_of_every_objective_with_adapter_and_endpoint_test_takers(
    prefect_harness, format_model_dir, openai_server, tmp_path
):
    from dataswarms.flows.search import data_swarms_search
    from dataswarms_core.objectives import composite

    base_url, served = openai_server
    weights = {"difficulty": 0.3, "separation": 0.2, "novelty": 0.2, "consistency": 0.2, "realistic": 0.1}
    cfg = tiny_search_config(
        format_model_dir, tmp_path, "mix",
        **{
            "pso.max_iterations": 1,
            "scoring.objective": "composite",
            "scoring.composite_weights": weights,
            "scoring.normalise": True,
            "scoring.consistency_sets": 2,
            "scoring.novelty_dev_items": 4,
            "test_takers.extra": [
                {"name": "folder", "adapter": str(_adapter_folder(format_model_dir, tmp_path / "folder-adapter"))},
                {"name": "ep", "endpoint": {"base_url": base_url, "model": served, "concurrency": 2}},
            ],
        },
    )  # fmt: skip
    summary = data_swarms_search(cfg)
    assert summary.test_takers == ["base", "t0", "folder", "ep"]
    assert sorted(summary.reference_scores) == ["base", "ep", "folder", "t0"]
    assert all(0.0 <= v <= 1.0 for v in summary.reference_scores.values())
    parts = summary.component_history[0]
    assert set(parts) == set(weights)
    names = summary.generators
    expected = composite(
        {k: np.array([parts[k][g] for g in names]) for k in weights}, weights, normalise=True
    )
    assert [summary.utility_history[0][g] for g in names] == pytest.approx(expected.tolist())
    metrics = pd.read_csv(tmp_path / "mix/export/metrics.csv")
    assert {f"objective_{k}" for k in weights} <= set(metrics.columns)
    answers = pd.read_parquet(tmp_path / "mix/iterations/iter_0000/answers.parquet")
    assert set(answers["test_taker"]) == {"base", "t0", "folder", "ep"}


def test_storage_secrets_never_reach_prefect_or_the_run_folder(prefect_harness, format_model_dir, tmp_path):
    from prefect.client.orchestration import get_client

    from dataswarms.flows.search import data_swarms_search

    cfg = tiny_search_config(
        format_model_dir,
        tmp_path,
        "secret",
        **{"pso.max_iterations": 1, "storage.options": {"marker": "hunter2"}},
    )
    state = data_swarms_search(cfg, return_state=True)
    assert state.is_completed()
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(state.state_details.flow_run_id).parameters
    assert "hunter2" not in json.dumps(stored, default=str)
    for path in (tmp_path / "secret").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".yaml", ".md", ".csv", ".jsonl"):
            assert "hunter2" not in path.read_text(), path


def test_flow_retry_never_takes_over_an_existing_run(prefect_harness, format_model_dir, tmp_path):
    """--retries on a name that is taken: every attempt refuses; the existing run is left as it was."""
    from dataswarms.flows.search import data_swarms_search

    cfg = tiny_search_config(format_model_dir, tmp_path, "taken", **{"pso.max_iterations": 1})
    data_swarms_search(cfg)
    before = (tmp_path / "taken/run.json").read_text()
    state = data_swarms_search.with_options(retries=1, retry_delay_seconds=0)(cfg, return_state=True)
    assert state.is_failed()
    assert (tmp_path / "taken/run.json").read_text() == before


def test_default_run_names_are_valid_whatever_the_task_file_is_called():
    from dataswarms_core.config import RUN_NAME_PATTERN, RunConfig
    from dataswarms_core.stages import default_run_name

    for source in ("my data.json", ".hidden.json", "ünï.csv", "s3://b/x/[weird].jsonl", "gsm8k-quickstart"):
        cfg = RunConfig.model_validate({"task": {"source": source}})
        assert RUN_NAME_PATTERN.match(default_run_name(cfg)), source
        assert RUN_NAME_PATTERN.match(default_run_name(cfg, "7f49b00d-2552-410e")), source


def test_report_plots_are_inlined_as_small_data_uris(tmp_path):
    """The report artifact carries its plots as PNG data URIs (the Prefect UI cannot follow relative links)."""
    import base64
    import io

    from PIL import Image

    from dataswarms.tasks.export import inline_images
    from dataswarms_core.report import plot_utilities
    from dataswarms_core.storage import Store

    frame = pd.DataFrame(
        [
            {"iteration": k, "particle": f"g{i}", "utility": 0.1 * k + 0.05 * i, "global_best_utility": 0.3}
            for k in range(10)
            for i in range(8)
        ]
    )
    folder = Store(str(tmp_path))
    folder.write_bytes("utilities.png", plot_utilities(frame))
    markdown = "# r\n\n![utilities](utilities.png)\n\n![gone](missing.png) ![web](https://x/y.png)\n"
    inlined = inline_images(markdown, folder)
    uri = inlined.split("![utilities](", 1)[1].split(")", 1)[0]
    assert uri.startswith("data:image/png;base64,") and len(uri) < 40_000
    image = Image.open(io.BytesIO(base64.b64decode(uri.removeprefix("data:image/png;base64,"))))
    assert image.format == "PNG" and image.size == (720, 420)
    assert "![gone](missing.png)" in inlined and "![web](https://x/y.png)" in inlined  # left as they were
