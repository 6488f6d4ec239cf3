"""What the command prints: the final summary and the progress lines."""

import pytest
from rich.console import Console

from dataswarms.flows._progress import describe, percent, total_steps
from dataswarms.flows._report import print_summary
from dataswarms_core.records import Progress as ProgressRecord
from dataswarms_core.records import RunSummary

OUTPUTS = {
    "run": "runs/x",
    "summary": "runs/x/summary.json",
    "config": "runs/x/config.yaml",
    "package": "runs/x/packages/iter_0003",
    "global_best_adapter": "runs/x/packages/iter_0003/adapter",
    "items_jsonl": "runs/x/packages/iter_0003/items.jsonl",
    "items_parquet": "runs/x/packages/iter_0003/items.parquet",
    "dataset_card": "runs/x/packages/iter_0003/README.md",
    "metrics_parquet": "runs/x/export/metrics.parquet",
    "metrics_csv": "runs/x/export/metrics.csv",
    "utilities_plot": "runs/x/export/utilities.png",
    "report": "runs/x/export/report.md",
    "last_checkpoint": "runs/x/swarms/generators/iter_0003",
}


def _summary(**changes) -> RunSummary:
    """A complete summary of a 3-iteration run of 3 generators, as ``summary.json`` holds it."""
    utilities = [{"g0": 0.1, "g1": 0.2, "g2": 0.51234}] * 3
    data = {
        "run_name": "x", "swarm": "generators", "seed": 0, "base_model": "smollm2-135m-instruct",
        "task": "gsm8k", "objective": "difficulty", "judge": "expected-score", "generators": ["g0", "g1", "g2"],
        "test_takers": ["base", "t0"], "iterations_completed": 3, "stopped": "max_iterations",
        "global_best_utility": 0.51234, "global_best_particle": "g2", "global_best_iteration": 1,
        "global_worst_utility": 0.1, "utility_history": utilities,
        "component_history": [{"difficulty": u} for u in utilities], "objective_undefined": [{}] * 3,
        "reference_scores": None, "score_matrices": [[[0.5, None]] * 3] * 3,
        "step_length_history": [1.0, 0.95, None], "restarts": [[]] * 3, "parse_failures": 0,
        "judge_failures": 4, "judge_failures_per_generator": {"g0": 4, "g1": 0, "g2": 0},
        "judge_failures_per_test_taker": {"base": 4, "t0": 0}, "empty_generators": 0,
        "items_per_iteration": [9, 9, 9], "export_items": 5, "package_version": "0123456789ab",
        "package_counts": {"asked": 6, "written": 5, "calls": 2, "extra_calls": 0, "max_extra_calls": 6, "requested": 6,
                           "parse_failures": 1, "duplicates": 0, "copies": 0, "surplus": 0, "shortfall": "5 of 6 items"},
        "seconds": {"synthesis": 1.0, "scoring": 2.0, "pso": 0.1}, "wall_seconds": 12.4, "resumes": 1,
        "config_hash": "0123456789abcdef", "outputs": OUTPUTS,
    }  # fmt: skip
    return RunSummary.model_validate({**data, **changes})


def _printed(summary) -> str:
    console = Console(soft_wrap=True, markup=False, highlight=False, record=True, width=200)
    print_summary(console, summary, 12.4, "abc-123")
    return console.export_text()


def test_summary_lines():
    text = _printed(_summary())
    assert "done in 12 s (wall time); 3 iterations completed, resumed 1x" in text
    assert (
        "benchmark package 0123456789ab: 5 of 6 items asked (1 unparsable, 0 duplicates, 0 copies dropped, "
        "0 extra calls); target not met: raise export.max_extra_calls for more" in text
    )
    assert (
        "global best utility (difficulty): 0.5123 from g2 at iteration 1; parse failures 0, judge failures 4"
        in text
    )
    assert "outputs: runs/x\n" in text and "  metrics              runs/x/export/metrics.csv" in text
    assert text.rstrip().endswith("http://127.0.0.1:4200/runs/flow-run/abc-123")
    assert "resumed" not in _printed(_summary(resumes=0))


def test_progress_lines_and_bar_position():
    total = total_steps(3)
    assert describe(ProgressRecord(**{"stage": "seed-generators", "iteration": None}), total) == (
        0,
        "training seed generators (LoRA SFT)",
    )
    done, text = describe(ProgressRecord(**{"stage": "pso", "iteration": 1, "utilities": [0.1, 0.25]}), total)
    assert (done, text) == (2 + 3 + 2, "iteration 1: swarm update (utilities 0.100, 0.250)")
    assert describe(ProgressRecord(**{"stage": "export", "iteration": 2, "detail": "gguf"}), total)[0] == total - 1


class _FailedState:
    """A flow run's final state whose result raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.state_details = type("Details", (), {"flow_run_id": "abc-123"})()

    def result(self):
        raise self.error


class _RunStore:
    root = "runs/x"

    def exists(self, key: str) -> bool:
        return key == "run.json"


def test_no_resume_command_for_a_failure_a_resume_would_hit_again():
    from dataswarms_core.errors import DataError, StorageError

    def printed(error: Exception) -> str:
        from dataswarms.flows._report import print_failure

        console = Console(soft_wrap=True, markup=False, highlight=False, record=True, width=200)
        print_failure(console, _FailedState(error), _RunStore())
        return console.export_text()

    bad_input = printed(DataError("task.jsonl: dev item 3 has 57000 tokens"))
    assert "error: task.jsonl: dev item 3 has 57000 tokens" in bad_input and "continue with" not in bad_input
    try:
        raise StorageError("s3://b/runs/x/checkpoint.json: write failed") from TimeoutError("slow")
    except StorageError as exc:
        transient = printed(exc)
    assert transient.rstrip().endswith("resume runs/x")  # a transient fault: resuming can work
    crash = printed(RuntimeError("CUDA error: an illegal memory access"))
    assert "error: RuntimeError: CUDA error" in crash and "continue with:" in crash


def test_the_progress_artifact_follows_the_bar():
    """The UI's progress artifact shows the bar's position in percent: 0 before SFT, 100 when done."""
    total = total_steps(2)  # 2 SFT stages, 3 per iteration, export
    assert percent("seed-generators", None, 2) == (0.0, "training seed generators (LoRA SFT)")
    assert percent("pso", 1, 2)[0] == pytest.approx(100 * (2 + 3 + 2) / total)
    assert percent("test-taker-pso", 1, 2)[0] == percent("pso", 1, 2)[0]  # adversarial stages: within "pso"
    assert percent("export", 1, 2)[0] == pytest.approx(100 * (total - 1) / total)
    assert percent("done", 1, 2) == (100.0, "done")
