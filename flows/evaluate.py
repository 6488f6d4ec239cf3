"""``dataswarms evaluate``: models answer a benchmark package, the run's judge scores them, a leaderboard
ranks them — one Prefect flow, one task per model (retried on transient faults; a finished model's result
is stored, so a rerun or retry resumes with the models still to do)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from dataswarms.tasks import evaluate_one, leaderboard
from dataswarms_core.records import Leaderboard


@flow(
    name="data-swarms-evaluate", flow_run_name="evaluate", log_prints=False
)  # prints: progress lines on the terminal
def data_swarms_evaluate(
    package_url: str,
    models: list[str],
    output_url: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Leaderboard:
    """Evaluate every model spec in ``models`` on the package at ``package_url``; write the leaderboard to
    ``<output_url or package_url>/leaderboard`` and return it.

    Args:
        models: model specs (``[LABEL=]MODEL``, ``MODEL+ADAPTER``, ``NAME@URL``; see
            :mod:`dataswarms_core.model_spec`).
        output_url: where ``evaluations/`` and ``leaderboard/`` go (default: the package folder).
        storage_options: fsspec options (e.g. an S3 endpoint; never credentials, which come from the
            environment).
    """
    options = storage_options or {}
    out = output_url or package_url
    results, cached = [], []
    for n, spec in enumerate(models, start=1):
        print(f"model {n}/{len(models)}: {spec} — answering and judging", flush=True)
        evaluation, was_cached = evaluate_one(package_url, spec, out, options)
        results.append(evaluation)
        if was_cached:
            cached.append(evaluation.model)
        mean = "—" if all(s is None for s in evaluation.scores) else f"{_mean(evaluation.scores):.3f}"
        done = " (reused)" if was_cached else f" in {evaluation.seconds:.0f} s"
        print(
            f"model {n}/{len(models)}: {evaluation.model}: mean {mean} on {evaluation.items} items{done}",
            flush=True,
        )
    return leaderboard(package_url, results, cached, out, options)


def _mean(scores: list[float | None]) -> float:
    got = [s for s in scores if s is not None]
    return sum(got) / len(got)
