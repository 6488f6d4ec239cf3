"""What the command prints about a run: its header, the final summary, a failure, or how to resume it.

Every line goes through a rich ``Console`` created with ``markup=False`` and ``soft_wrap=True``, so paths and
URLs are printed verbatim on one line.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

from dataswarms_core.errors import DataSwarmsError, is_transient_error
from dataswarms_core.records import RunSummary

# (label, field of the summary's ``outputs``) for the paths listed under "outputs:".
_OUTPUT_LINES = [
    ("summary", "summary"),
    ("benchmark package", "package"),
    ("global-best adapter", "global_best_adapter"),
    ("items", "items_jsonl"),
    ("metrics", "metrics_csv"),
    ("report", "report"),
]


def resume_command(store_root: str) -> str:
    """The command line that continues the run at ``store_root``.

    Args:
        store_root: The run's folder or URL.

    Returns:
        ``dataswarms resume <root>``, with the executable as it was invoked when that was ``dataswarms``.
    """
    exe = sys.argv[0] if sys.argv and sys.argv[0].endswith("dataswarms") else "dataswarms"
    return f"{exe} resume {store_root}"


def print_run_header(console: Console, cfg: Any, store_root: str, *, resume: bool) -> None:
    """Print the two lines that open a run: what is run where, and its main settings.

    Args:
        console: Where to print.
        cfg: The run's ``RunConfig``.
        store_root: The run's folder or URL.
        resume: Whether the run is being resumed.
    """
    console.print(f"dataswarms {'resume' if resume else 'run'} {cfg.run_name} → {store_root}")
    console.print(
        f"task {cfg.task.source}, base model {cfg.model.base_model}, {cfg.seed_generators.n_generators} generators, "
        f"objective {cfg.scoring.objective}, up to {cfg.max_iterations} iterations, seed {cfg.seed}"
    )


def print_interrupted(console: Console, store_root: str) -> None:
    """Print where the interrupted run is checkpointed and, as the last line, how to resume it.

    Args:
        console: Where to print.
        store_root: The run's folder or URL.
    """
    console.print(f"\ninterrupted; every finished iteration is checkpointed in {store_root}")
    console.print(f"continue with: {resume_command(store_root)}", style="bold")


def print_failure(console: Console, state: Any, store: Any) -> None:
    """Print why the flow run did not complete (one line) and how to resume it, if it can be.

    Args:
        console: Where to print.
        state: The flow run's final Prefect state (not completed).
        store: The run's ``dataswarms_core.storage.Store``.
    """
    resumable = True
    try:
        state.result()
    except DataSwarmsError as exc:
        console.print(f"error: {exc}", style="red")
        resumable = is_transient_error(exc)  # bad input would fail the same way again
    except Exception as exc:  # noqa: BLE001 - report any failure in one line, details are in Prefect
        console.print(f"error: {type(exc).__name__}: {exc}", style="red")
    console.print(
        f"Flow run {state.state_details.flow_run_id} did not complete; finished iterations are checkpointed "
        f"in {store.root}"
    )
    if resumable and store.exists("run.json"):  # never a command that would hit the same error again
        console.print(f"continue with: {resume_command(store.root)}", style="bold")


def print_summary(console: Console, summary: RunSummary, wall_seconds: float, flow_run_id: Any) -> None:
    """Print the finished run's summary: time, global best, outputs, and where to see it in Prefect's UI.

    This is the only place that reads the summary's fields.

    Args:
        console: Where to print.
        summary: What the flow returned (also in ``summary.json``).
        wall_seconds: The command's wall time.
        flow_run_id: The Prefect flow run's id.
    """
    out = summary.outputs
    resumes = summary.resumes
    resumed = f", resumed {resumes}x" if resumes else ""
    console.print(
        f"\ndone in {wall_seconds:.0f} s (wall time); {summary.iterations_completed} iterations "
        f"completed{resumed}"
    )
    console.print(
        f"global best utility ({summary.objective}): {summary.global_best_utility:.4f} "
        f"from {summary.global_best_particle} at iteration {summary.global_best_iteration}; "
        f"parse failures {summary.parse_failures}, judge failures {summary.judge_failures}"
    )
    c = summary.package_counts
    console.print(
        f"benchmark package {summary.package_version}: {c.written} of {c.asked} items asked "
        f"({c.parse_failures} unparsable, {c.duplicates} duplicates, {c.copies} copies dropped, "
        f"{c.extra_calls} extra calls)"
        + ("; target not met: raise export.max_extra_calls for more" if c.shortfall else "")
    )
    console.print(f"outputs: {out.run}")
    for label, key in _OUTPUT_LINES:
        console.print(f"  {label:<20} {getattr(out, key)}")
    if summary.adversarial is not None:
        _print_adversarial(console, summary)
    console.print(
        "See the run in the Prefect UI: start a server with prefect server start "
        "(in this virtual environment, e.g. .venv/bin/prefect server start), then open "
        f"http://127.0.0.1:4200/runs/flow-run/{flow_run_id}"
    )


def _print_adversarial(console: Console, summary: RunSummary) -> None:
    """The test-taker swarm's result and the generalisation curve of an adversarial run."""
    a, out = summary.adversarial, summary.outputs
    console.print(
        f"test takers (pool: {a.pool}): global best {a.global_best_utility:.4f} from {a.global_best_particle} at "
        f"iteration {a.global_best_iteration}; {a.generated_items} generated items entered the pool"
    )
    console.print("generalisation curve (the best test taker of each iteration):")

    def show(value: float | None) -> str:
        return "missing" if value is None else f"{value:.4f}"

    for p in a.curve:
        console.print(
            f"  iteration {p.iteration}: {p.test_taker} held-out {show(p.held_out_score)} (accuracy "
            f"{show(p.held_out_accuracy)}), pool {p.pool_score:.4f}; {p.generated_share:.0%} of the pool generated"
        )
    for label, url in (
        ("test-taker adapter", out.test_taker_adapter),
        ("generalisation", out.generalisation_csv),
        ("pool items", out.pool_items),
    ):
        console.print(f"  {label:<20} {url}")


def print_package(console: Console, manifest: Any, package_url: str) -> None:
    """Print what ``dataswarms export`` wrote: the package, its counts and how to evaluate models on it."""
    c = manifest.counts
    console.print(
        f"benchmark package {manifest.name} version {manifest.version} (checkpoint after iteration "
        f"{manifest.checkpoint_iteration}, generator {manifest.generator}, utility {manifest.utility:.4f})"
    )
    console.print(
        f"{c.written} of {c.asked} items asked; dropped {c.parse_failures} unparsable, {c.duplicates} duplicates, "
        f"{c.copies} copies, {c.surplus} beyond the target; {c.calls} calls ({c.extra_calls} extra)"
    )
    if c.shortfall:
        console.print(f"target not met: {c.shortfall}", style="yellow")
    console.print(f"package: {package_url}")
    if "lm_eval_yaml" in manifest.files:
        from dataswarms_core.harness import harness_task_name

        console.print(
            f"lm-eval task {harness_task_name(manifest.name)} (--include_path {package_url}/lm_eval); "
            f"inspect_ai task {package_url}/inspect_task.py"
        )
    console.print(
        f"evaluate models on it: dataswarms evaluate {package_url} --model MODEL [--model MODEL ...]"
    )


def print_leaderboard(console: Console, board: Any) -> None:
    """Print the leaderboard (its markdown report) and where its files are."""
    from dataswarms_core.leaderboard import leaderboard_markdown

    console.print(leaderboard_markdown(board))
    console.print(f"leaderboard files: {board.files.get('json', '')} (also .csv, .parquet, .md, .png)")
