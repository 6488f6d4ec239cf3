"""One INFO line per stage for the run's Prefect logs (the UI's Logs tab): what a task did, from its report.

The ``*_line`` functions only format a stage's report (pure, no Prefect); :func:`log_info` sends a line to the
current task or flow run's logger, which the command line sends to the API but not to the terminal
(``flows/_environment.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from dataswarms_core.records import (
    AdapterManifest,
    CheckpointPointer,
    HeldOutReport,
    PoolReport,
    PoolScoringReport,
    ReferenceScores,
    RunInfo,
    RunSummary,
    ScoringReport,
    SwarmStepReport,
    SynthesisReport,
)

MISSING = "—"


def log_info(message: str) -> None:
    """Log ``message`` at INFO on the current Prefect run's logger (a plain logger outside a run)."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        logger = get_run_logger()
    except MissingContextError:  # called outside a flow or task run (a stage used directly)
        import logging

        logger = logging.getLogger("dataswarms")
    logger.info(message)


def _value(value: float | None) -> str:
    return MISSING if value is None or value != value else f"{value:.4f}"


def _named(names: Sequence[str], values: Sequence[float | None], missing: Sequence[str] = ()) -> str:
    return ", ".join(
        f"{n} {MISSING if n in missing else _value(v)}" for n, v in zip(names, values, strict=True)
    )


def prepare_line(info: RunInfo) -> str:
    """The run, its base model and task data."""
    resumed = f"; resumed {info.resumes}x" if info.resumes else ""
    return (
        f"prepare: run {info.run_name}, base model {info.model_path} (fingerprint {info.model_fingerprint[:12]}), "
        f"task {info.task_name}: {info.n_dev} dev and {info.n_test} test items{resumed}"
    )


def adapters_line(manifest: AdapterManifest) -> str:
    """The adapters an SFT stage trained: loss first → last, steps and seconds of each."""
    parts = [
        f"{name} loss {a.loss_first:.3f} → {a.loss_last:.3f} ({a.steps} steps, {a.seconds:.1f} s)"
        for name, a in manifest.adapters.items()
    ]
    return f"sft {manifest.kind}: {len(parts)} adapters trained: " + ("; ".join(parts) or "none")


def synthesis_line(report: SynthesisReport) -> str:
    """Items kept and lost (parse failures, duplicates, copies) per generator, and the stage's time."""
    counts = report.counts.values()
    per = ", ".join(
        f"{g} {c.items}/{c.requested}" + (f" ({c.parse_failures} unparsable)" if c.parse_failures else "")
        for g, c in report.counts.items()
    )
    return (
        f"synthesis iteration {report.iteration}: {report.items} items kept of {sum(c.requested for c in counts)} "
        f"asked; parse failures {report.parse_failures}, duplicates {sum(c.duplicates for c in counts)}, "
        f"copies {sum(c.copies for c in counts)}; per generator (kept/asked): {per}; {report.seconds:.1f} s"
    )


def scoring_line(report: ScoringReport) -> str:
    """The utilities of the swarm's particles, judge and answer failures, empty generators, the stage's time."""
    empty = f"; empty generators {', '.join(report.empty_generators)}" if report.empty_generators else ""
    return (
        f"scoring iteration {report.iteration} ({report.swarm}, {report.objective}): utilities "
        f"{_named(report.generators, report.utilities, report.missing_utilities)}; {report.answers} answers, "
        f"judge failures {report.judge_failures}, answer failures {report.answer_failures}{empty}; "
        f"{report.seconds:.1f} s"
    )


def reference_line(scores: ReferenceScores) -> str:
    """The test takers' mean scores on real dev items (novelty's reference)."""
    failures = sum(scores.judge_failures.values())
    return (
        f"reference: {scores.items} real dev items, mean scores "
        f"{_named(scores.test_takers, [scores.scores.get(t) for t in scores.test_takers])}; "
        f"judge failures {failures}; {scores.seconds:.1f} s"
    )


def pso_line(step: SwarmStepReport) -> str:
    """The swarm update: global best, step length, restarts, a stop, the stage's time."""
    moved = "no move" if step.step_length is None else f"step length {step.step_length:.4f}"
    restarted = f", restarted {step.restarted}" if step.restarted else ""
    stopped = f", stopped ({step.stopped})" if step.stopped else ""
    return (
        f"pso iteration {step.iteration} ({step.swarm}): global best {step.global_best_utility:.4f} "
        f"({step.global_best_particle}{', improved' if step.global_best_improved else ''}), {moved}"
        f"{restarted}{stopped}; {step.seconds:.1f} s"
    )


def checkpoint_line(pointer: CheckpointPointer) -> str:
    """The checkpoint pointer written last in an iteration."""
    swarms = ", ".join(f"{s} {key}" for s, key in pointer.swarms.items())
    pool = f", pool {pointer.pool}" if pointer.pool else ""
    stopped = f"; stopped ({pointer.stopped})" if pointer.stopped else ""
    return f"checkpoint: iteration {pointer.iteration} is next: {swarms}{pool}{stopped}"


def pool_line(report: PoolReport) -> str:
    """Adversarial Swarms: the pool update."""
    return (
        f"pool iteration {report.iteration - 1}: {len(report.replaced)} entries replaced by generated items "
        f"({report.generated_available} available); {report.generated}/{report.size} generated "
        f"({report.generated_share:.0%})"
    )


def pool_scoring_line(report: PoolScoringReport) -> str:
    """Adversarial Swarms: the test takers' utilities on the pool."""
    return (
        f"scoring iteration {report.iteration} ({report.swarm}, pool of {report.pool_size}): utilities "
        f"{_named(report.test_takers, report.utilities)}; judge failures {sum(report.judge_failures.values())}, "
        f"answer failures {sum(report.answer_failures.values())}; {report.seconds:.1f} s"
    )


def held_out_line(report: HeldOutReport) -> str:
    """Adversarial Swarms: the best test taker on held-out real test items."""
    return (
        f"held-out iteration {report.iteration}: {report.test_taker} pool {report.pool_score:.4f}, held-out "
        f"{_value(report.held_out_score)} (accuracy {_value(report.held_out_accuracy)}) on {report.items} items; "
        f"judge failures {report.judge_failures}; {report.seconds:.1f} s"
    )


def export_line(summary: RunSummary) -> str:
    """The finished search: global best, failures, the package and where the outputs are."""
    c = summary.package_counts
    return (
        f"export: {summary.iterations_completed} iterations ({summary.stopped}); global best "
        f"{summary.global_best_utility:.4f} from {summary.global_best_particle} at iteration "
        f"{summary.global_best_iteration}; parse failures {summary.parse_failures}, judge failures "
        f"{summary.judge_failures}; package {summary.package_version}: {c.written} of {c.asked} items; "
        f"outputs in {summary.outputs.run}"
    )
