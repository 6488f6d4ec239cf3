"""The report of a search: missing utilities are shown as missing in the metrics, the markdown and the plot,
never as 0 (the swarm update's value stays available as ``pso_utility``)."""

from __future__ import annotations

import math

from dataswarms_core.records import (
    GeneratorCounts,
    ItemRow,
    RunSummary,
    ScoringReport,
    SwarmStepReport,
    SynthesisReport,
)
from dataswarms_core.report import metrics_frame, plot_utilities, report_markdown

NAMES = ["g0", "g1", "g2"]


def _reports():
    counts = {"g0": GeneratorCounts(requested=6, items=5, parse_failures=1), "g1": GeneratorCounts(requested=6, items=2),
              "g2": GeneratorCounts(requested=6, parse_failures=6, empty_replies=2)}  # fmt: skip
    counts["g0"] = counts["g0"].model_copy(update={"items": 3, "copies": 2})
    synthesis = SynthesisReport(iteration=0, counts=counts, items=7, parse_failures=7, seconds=1.0)
    scoring = ScoringReport(
        swarm="generators", iteration=0, objective="composite", judge="expected-score", generators=NAMES,
        test_takers=["base", "t0"], score_matrix=[[0.5, 0.7], [0.2, 0.4], [None, None]],
        utilities=[0.18, 0.0, 0.0], components={"difficulty": [0.3, 0.6, 0.0], "consistency": [0.9, 0.0, 0.0]},
        undefined={"consistency": ["g1", "g2"]}, empty_generators=["g2"], missing_utilities=["g1", "g2"],
        judge_failures=0, judge_failures_per_generator=dict.fromkeys(NAMES, 0),
        judge_failures_per_test_taker={"base": 0, "t0": 0}, answers=14, mean_judge_mass=0.9, seconds=2.0,
    )  # fmt: skip
    step = SwarmStepReport(
        swarm="generators", iteration=0, utilities=[0.18, 0.0, 0.0], personal_best_improved=[True] * 3,
        global_best_improved=True, global_worst_changed=True, step_length=None, weights=[], restarted=[],
        stopped="max_iterations", global_best_utility=0.18, global_best_particle="g0", global_worst_utility=0.0,
        personal_best_utility=[0.18, 0.0, 0.0], next_step_length=1.0, checkpoint="runs/x/swarms/generators/iter_0001",
        seconds=0.1,
    )  # fmt: skip
    return synthesis, scoring, step


def test_metrics_show_missing_utilities_and_components_as_missing():
    synthesis, scoring, step = _reports()
    frame = metrics_frame([synthesis], [scoring], [step]).set_index("particle")
    assert frame.at["g0", "utility"] == 0.18 and frame.at["g0", "pso_utility"] == 0.18
    assert math.isnan(frame.at["g1", "utility"]) and frame.at["g1", "pso_utility"] == 0.0
    assert math.isnan(frame.at["g2", "utility"]) and bool(frame.at["g2", "empty"])
    assert frame.at["g1", "objective_difficulty"] == 0.6
    assert math.isnan(frame.at["g1", "objective_consistency"])
    assert math.isnan(frame.at["g2", "objective_difficulty"])  # an empty generator has no value at all
    assert frame.reset_index().to_csv(index=False).splitlines()[3].split(",")[2] == ""  # g2: an empty cell


def test_metrics_copies_and_copy_rate():
    """copy_rate = copies / (items + copies); NaN where a generator kept and copied nothing, never 0."""
    synthesis, scoring, step = _reports()
    frame = metrics_frame([synthesis], [scoring], [step]).set_index("particle")
    assert (frame.at["g0", "items"], frame.at["g0", "copies"], frame.at["g0", "copy_rate"]) == (3, 2, 0.4)
    assert (frame.at["g1", "copies"], frame.at["g1", "copy_rate"]) == (0, 0.0)
    assert frame.at["g2", "copies"] == 0 and math.isnan(frame.at["g2", "copy_rate"])
    columns = list(frame.reset_index().columns)
    assert columns.index("copies") == columns.index("duplicates") + 1 and "copy_rate" in columns


def test_markdown_and_plot_never_draw_missing_as_zero():
    synthesis, scoring, step = _reports()
    frame = metrics_frame([synthesis], [scoring], [step])
    summary = RunSummary.model_validate(
        {
            "run_name": "x", "swarm": "generators", "seed": 0, "base_model": "m", "task": "t",
            "objective": "composite", "judge": "expected-score", "generators": NAMES, "test_takers": ["base", "t0"],
            "iterations_completed": 1, "stopped": "max_iterations", "global_best_utility": 0.18,
            "global_best_particle": "g0", "global_best_iteration": 0, "global_worst_utility": 0.0,
            "utility_history": [dict(zip(NAMES, scoring.utilities, strict=True))],
            "missing_utilities": [["g1", "g2"]], "component_history": [], "objective_undefined": [scoring.undefined],
            "reference_scores": None, "score_matrices": [scoring.score_matrix], "step_length_history": [None],
            "restarts": [[]], "parse_failures": 7, "judge_failures": 0,
            "judge_failures_per_generator": dict.fromkeys(NAMES, 0), "judge_failures_per_test_taker": {"base": 0, "t0": 0},
            "empty_generators": 1, "items_per_iteration": [7], "export_items": 1, "package_version": "0" * 12,
            "package_counts": {"asked": 3, "written": 1, "calls": 1, "extra_calls": 0, "max_extra_calls": 0,
                               "requested": 3, "parse_failures": 1, "duplicates": 0, "copies": 1, "surplus": 0},
            "seconds": {"synthesis": 1, "scoring": 2, "pso": 0.1}, "wall_seconds": 5, "resumes": 0,
            "config_hash": "0" * 16,
            "outputs": {k: f"runs/x/{k}" for k in ("run", "summary", "config", "package", "global_best_adapter",
                        "items_jsonl", "items_parquet", "dataset_card", "metrics_parquet", "metrics_csv",
                        "utilities_plot", "report", "last_checkpoint")},
        }
    )  # fmt: skip
    rows = [ItemRow(generator="g0", iteration=0, call=0, index=0, item="Q?", seed=0)]
    text = report_markdown(summary, frame, rows)
    assert "| 0 | 0.1800 | — | — |" in text
    assert "| consistency | 0.9000 | — | — |" in text and "| difficulty | 0.3000 | 0.6000 | — |" in text
    assert "0.0000" not in text.split("## Objective components")[0]  # no missing utility printed as a number
    png = plot_utilities(frame)
    assert png.startswith(b"\x89PNG")
