"""Export stage (docs/method.md §7): the global-best adapter, the data set it samples, per-iteration metrics,
a report with a plot of utilities, and ``summary.json`` at the run root.

Export layout under the run root::

    export/global_best_adapter/     PEFT folder (PeftModel.from_pretrained / vLLM LoRA)
    export/synthetic.jsonl|.parquet items sampled from the global best (generator, iteration, seed per item)
    export/metrics.parquet|.csv     one row per (iteration, particle)
    export/utilities.png, report.md
    summary.json
"""

from __future__ import annotations

import time

import pandas as pd

from ..adapters import write_adapter
from ..config import RunConfig
from ..models import canonical_model_name
from ..pso import load_swarm_state
from ..records import (
    AdapterOrigin,
    ItemRow,
    ReferenceScores,
    RunInfo,
    RunOutputs,
    RunSummary,
    ScoringReport,
    StageSeconds,
    SwarmStepReport,
    SynthesisReport,
)
from ..report import metrics_frame, plot_utilities, report_markdown
from ..seeding import GENERATOR_SWARM
from ..stop import check_stop
from ..storage import Store
from .layout import EXPORT_DIR, REFERENCE_SCORES, completed_iterations, iter_key, swarm_iter_key, swarm_key
from .setup import load_run_task
from .synthesis import sample_generators

ADAPTER_ORIGIN = "dataswarms.json"


def export_run(
    config: RunConfig, info: RunInfo, run: Store, started_at: float, swarm: str = GENERATOR_SWARM
) -> RunSummary:
    """Write every export of the generator swarm ``swarm`` and ``summary.json``; return the summary.

    Args:
        started_at: ``time.time()`` when this attempt started (``wall_seconds``; a resumed run counts from
            its resume).

    Raises:
        RuntimeError: the run has no completed iteration.
    """
    check_stop()  # a stop requested while a library swallowed the interrupt ends the run here
    iterations = completed_iterations(run)
    if iterations == 0:
        raise RuntimeError(f"{run.root}: no completed iteration to export")
    state = load_swarm_state(run, swarm_key(swarm, iterations))
    best_name = state.names[state.global_best_particle]
    lora = dict(state.metadata["lora_config"])
    lora["base_model_name_or_path"] = canonical_model_name(config.model.base_model)  # portable, not this path
    adapter_url = write_adapter(run, f"{EXPORT_DIR}/global_best_adapter", lora, state.global_best)
    AdapterOrigin(
        base_model=config.model.base_model, base_model_name_or_path=lora["base_model_name_or_path"],
        model_fingerprint=info.model_fingerprint, run_name=info.run_name, config_hash=info.config_hash,
        swarm=swarm, particle=best_name, iteration=state.global_best_iteration, utility=state.global_best_utility,
    ).write(run, f"{EXPORT_DIR}/global_best_adapter/{ADAPTER_ORIGIN}")  # fmt: skip

    # The synthetic data set sampled from the global best, labelled with the iteration it was evaluated at.
    task = load_run_task(config, info)
    sample = sample_generators(
        config, info, task, {best_name: (lora, state.global_best)}, calls=config.export.calls,
        iteration=iterations, stage="export",
    )  # fmt: skip
    rows = [r.model_copy(update={"iteration": state.global_best_iteration}) for r in sample.items]
    jsonl_url = run.write_jsonl(f"{EXPORT_DIR}/synthetic.jsonl", [r.model_dump() for r in rows])
    parquet_url = run.write_parquet(
        f"{EXPORT_DIR}/synthetic.parquet",
        pd.DataFrame([r.model_dump() for r in rows], columns=list(ItemRow.model_fields)),
    )

    synthesis = [SynthesisReport.read(run, iter_key(k, "synthesis.json")) for k in range(iterations)]
    scoring = [ScoringReport.read(run, swarm_iter_key(k, swarm, "scoring.json")) for k in range(iterations)]
    steps = [SwarmStepReport.read(run, swarm_iter_key(k, swarm, "pso.json")) for k in range(iterations)]
    frame = metrics_frame(synthesis, scoring, steps)
    metrics_parquet = run.write_parquet(f"{EXPORT_DIR}/metrics.parquet", frame)
    metrics_csv = run.write_csv(f"{EXPORT_DIR}/metrics.csv", frame)
    plot_url = run.write_bytes(f"{EXPORT_DIR}/utilities.png", plot_utilities(frame))
    first = scoring[0]
    summary = RunSummary(
        run_name=info.run_name,
        swarm=swarm,
        seed=config.seed,
        base_model=config.model.base_model,
        task=info.task_name,
        objective=config.scoring.objective,
        judge=first.judge,
        generators=state.names,
        test_takers=first.test_takers,
        iterations_completed=iterations,
        stopped=state.stopped,
        global_best_utility=state.global_best_utility,
        global_best_particle=best_name,
        global_best_iteration=state.global_best_iteration,
        global_worst_utility=state.global_worst_utility,
        utility_history=[dict(zip(s.generators, s.utilities, strict=True)) for s in scoring],
        missing_utilities=[s.missing_utilities for s in scoring],
        component_history=[
            {name: dict(zip(s.generators, vals, strict=True)) for name, vals in s.components.items()}
            for s in scoring
        ],
        objective_undefined=[s.undefined for s in scoring],
        reference_scores=ReferenceScores.read(run, REFERENCE_SCORES).scores
        if run.exists(REFERENCE_SCORES)
        else None,
        score_matrices=[s.score_matrix for s in scoring],
        step_length_history=[p.step_length for p in steps],
        restarts=[[state.names[i] for i in p.restarted] for p in steps],
        parse_failures=sum(s.parse_failures for s in synthesis),
        judge_failures=sum(s.judge_failures for s in scoring),
        judge_failures_per_generator={
            g: sum(s.judge_failures_per_generator[g] for s in scoring) for g in first.generators
        },
        judge_failures_per_test_taker={
            t: sum(s.judge_failures_per_test_taker[t] for s in scoring) for t in first.test_takers
        },
        empty_generators=sum(len(s.empty_generators) for s in scoring),
        items_per_iteration=[s.items for s in synthesis],
        export_items=len(rows),
        export_counts=sample.counts[best_name],
        seconds=StageSeconds(
            synthesis=round(sum(s.seconds for s in synthesis), 1),
            scoring=round(sum(s.seconds for s in scoring), 1),
            pso=round(sum(p.seconds for p in steps), 2),
        ),
        wall_seconds=round(time.time() - started_at, 1),
        resumes=info.resumes,
        config_hash=info.config_hash,
        outputs=RunOutputs(
            run=run.root,
            summary=run.url("summary.json"),
            config=run.url("config.yaml"),
            global_best_adapter=adapter_url,
            synthetic_jsonl=jsonl_url,
            synthetic_parquet=parquet_url,
            metrics_parquet=metrics_parquet,
            metrics_csv=metrics_csv,
            utilities_plot=plot_url,
            report=run.url(f"{EXPORT_DIR}/report.md"),
            last_checkpoint=run.url(swarm_key(swarm, iterations)),
        ),
    )
    run.write_text(f"{EXPORT_DIR}/report.md", report_markdown(summary, frame, rows))
    summary.write(run, "summary.json")
    return summary
