"""Export stage (docs/method.md §7): the benchmark package of the newest checkpoint (its global-best adapter,
the items it writes, the dataset card: :mod:`.package`), per-iteration metrics, a report with a plot of
utilities, and ``summary.json`` at the run root.

Export layout under the run root::

    packages/iter_NNNN/             the benchmark package (see dataswarms_core.stages.package)
    export/metrics.parquet|.csv     one row per (iteration, particle)
    export/utilities.png, report.md
    export/test_taker_adapter/, test_takers.csv|.parquet, generalisation.csv|.png, pool_items.jsonl
                                    adversarial mode only (see dataswarms_core.stages.adversarial)
    summary.json
"""

from __future__ import annotations

import time

from ..config import RunConfig
from ..pso import load_swarm_state
from ..records import (
    BenchmarkItem,
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
from ..seeding import GENERATOR_SWARM, TEST_TAKER_SWARM
from ..stop import check_stop
from ..storage import Store
from .layout import EXPORT_DIR, REFERENCE_SCORES, completed_iterations, iter_key, swarm_iter_key, swarm_key
from .package import package_key, write_package


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
    manifest = write_package(config, info, run, swarm=swarm)
    package = run.child(package_key(manifest.checkpoint_iteration))
    rows = [BenchmarkItem.model_validate(r) for r in package.read_jsonl("items.jsonl")]

    synthesis = [SynthesisReport.read(run, iter_key(k, "synthesis.json")) for k in range(iterations)]
    scoring = [ScoringReport.read(run, swarm_iter_key(k, swarm, "scoring.json")) for k in range(iterations)]
    steps = [SwarmStepReport.read(run, swarm_iter_key(k, swarm, "pso.json")) for k in range(iterations)]
    frame = metrics_frame(synthesis, scoring, steps)
    metrics_parquet = run.write_parquet(f"{EXPORT_DIR}/metrics.parquet", frame)
    metrics_csv = run.write_csv(f"{EXPORT_DIR}/metrics.csv", frame)
    plot_url = run.write_bytes(f"{EXPORT_DIR}/utilities.png", plot_utilities(frame))
    first = scoring[0]
    adversarial = None
    if config.mode == "adversarial":
        from .adversarial import export_adversarial

        adversarial = export_adversarial(config, info, run, iterations)
    summary = RunSummary(
        run_name=info.run_name,
        mode=config.mode,
        swarm=swarm,
        seed=config.seed,
        base_model=config.model.base_model,
        task=info.task_name,
        objective=config.scoring.objective,
        judge=first.judge,
        generators=state.names,
        test_takers=first.test_takers,
        iterations_completed=iterations,
        stopped=state.stopped
        or (
            f"{TEST_TAKER_SWARM}: {adversarial.summary.stopped}"
            if adversarial and adversarial.summary.stopped
            else None
        ),
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
        package_version=manifest.version,
        package_counts=manifest.counts,
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
            package=package.root,
            global_best_adapter=package.url("adapter"),
            items_jsonl=package.url("items.jsonl"),
            items_parquet=package.url("items.parquet"),
            dataset_card=package.url("README.md"),
            metrics_parquet=metrics_parquet,
            metrics_csv=metrics_csv,
            utilities_plot=plot_url,
            report=run.url(f"{EXPORT_DIR}/report.md"),
            last_checkpoint=run.url(swarm_key(swarm, iterations)),
            **(adversarial.outputs if adversarial else {}),
        ),
        adversarial=adversarial.summary if adversarial else None,
    )
    report = report_markdown(summary, frame, rows)
    if adversarial is not None:
        report += "\n" + adversarial.markdown
    run.write_text(f"{EXPORT_DIR}/report.md", report)
    summary.write(run, "summary.json")
    return summary
