"""Adversarial Swarms stages (docs/method.md §6): the pool of real dev items that the moved generators' items
replace, the test takers' utilities on it, and the generalisation curve's point of each iteration.

One iteration k of an adversarial run (the flow, ``dataswarms.flows.search``) is: score the generators of
``swarms/generators/iter_k`` by difficulty against the test-taker swarm ``swarms/test_takers/iter_k`` and move
them; the moved generators write items (``iterations/iter_{k+1}/items.jsonl``, also the next iteration's
items); :func:`update_pool` replaces pool entries by them; :func:`score_test_takers` gives every test taker
its mean judge score on the pool; :func:`track_held_out` scores the best one on held-out test items; the
test-taker swarm moves; the checkpoint pointer names both swarms and the pool of iteration k + 1.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pandas as pd

from ..config import RunConfig
from ..data import Task
from ..errors import ScoringError
from ..pool import generated_share, initial_pool, replace_entries
from ..pso import load_swarm_state
from ..records import (
    AdversarialSummary,
    CurvePoint,
    HeldOutReport,
    ItemRow,
    PoolEntry,
    PoolReport,
    PoolScoringReport,
    RunInfo,
    SwarmStepReport,
)
from ..scoring import TestTaker, answer, judge_answers, scores_per_test_taker
from ..seeding import TEST_TAKER_SWARM, derive_seed, swarm_stream
from ..stop import check_stop
from ..storage import Store
from .components import build_run_judge, load_local, swarm_test_takers
from .layout import iter_key, pool_key, swarm_iter_key, swarm_key
from .package import item_id
from .scoring import answer_settings
from .setup import load_run_task

POOL_FILE = "pool.jsonl"
POOL_REPORT = "pool.json"


def pool_seed(config: RunConfig, iteration: int) -> int:
    """Seed of iteration k's replacement draw: ``derive_seed(seed, "pool", "test_takers", k)`` (run, iteration,
    swarm; docs/method.md §6)."""
    return derive_seed(config.stream_seed, *swarm_stream(TEST_TAKER_SWARM, "pool"), iteration)


def read_pool(run: Store, iteration: int) -> list[PoolEntry]:
    """The pool ready at ``iteration`` (``pools/iter_NNNN/pool.jsonl``)."""
    return [PoolEntry.model_validate(r) for r in run.read_jsonl(f"{pool_key(iteration)}/{POOL_FILE}")]


def _write_pool(run: Store, iteration: int, pool: list[PoolEntry], report: PoolReport) -> PoolReport:
    run.write_jsonl(f"{pool_key(iteration)}/{POOL_FILE}", [e.model_dump() for e in pool])
    report.write(run, f"{pool_key(iteration)}/{POOL_REPORT}")  # last: a folder with it is complete
    return report


def write_initial_pool(config: RunConfig, info: RunInfo, run: Store) -> PoolReport:
    """Write ``pools/iter_0000``: the first ``adversarial.pool_size`` real dev items of the run's dev split.

    Raises:
        ValueError: the pool is larger than the dev split (preflight refuses this first, naming the file).
    """
    task = load_run_task(config, info)
    a = config.adversarial
    pool = initial_pool(task.dev["input"].tolist(), task.dev["output"].tolist(), a.pool_size)
    report = PoolReport(
        iteration=0, mode=a.pool, size=len(pool), replacement_probability=a.replacement_probability, seed=None,
        generated_available=0, replaced=[], generated=0, generated_share=0.0,
    )  # fmt: skip
    return _write_pool(run, 0, pool, report)


def update_pool(config: RunConfig, info: RunInfo, run: Store, iteration: int) -> PoolReport:
    """Step 2 of iteration k: replace each entry of the pool ready at k with probability p by an item of the
    moved generators (``iterations/iter_{k+1}/items.jsonl``), seeded by :func:`pool_seed`; write the result as
    ``pools/iter_{k+1}`` (the pool the test takers of iteration k are scored on). With ``adversarial.pool:
    static`` (the control) the pool is written unchanged.

    Returns:
        The :class:`~dataswarms_core.records.PoolReport` (replaced positions, generated share).
    """
    check_stop()
    a = config.adversarial
    pool = read_pool(run, iteration)
    generated = [
        PoolEntry(
            item=r.item,
            source="generated",
            item_id=item_id(r.item),
            generator=r.generator,
            iteration=r.iteration,
            call=r.call,
            entered=iteration,
        )  # fmt: skip
        for r in (ItemRow.model_validate(x) for x in run.read_jsonl(iter_key(iteration + 1, "items.jsonl")))
    ]
    seed = pool_seed(config, iteration)
    replaced: list[int] = []
    unfilled: list[int] = []
    if a.pool == "adversarial":
        draw = replace_entries(pool, generated, a.replacement_probability, seed)
        pool, replaced, unfilled = draw.pool, draw.replaced, draw.unfilled
    share = generated_share(pool)
    report = PoolReport(
        iteration=iteration + 1, mode=a.pool, size=len(pool), replacement_probability=a.replacement_probability,
        seed=seed, generated_available=len(generated), replaced=replaced, unfilled=unfilled,
        generated=sum(e.source == "generated" for e in pool), generated_share=share,
    )  # fmt: skip
    return _write_pool(run, iteration + 1, pool, report)


def score_test_takers(config: RunConfig, info: RunInfo, run: Store, iteration: int) -> PoolScoringReport:
    """Step 3 of iteration k: every particle of ``swarms/test_takers/iter_k`` answers every entry of the pool
    ``pools/iter_{k+1}``; the run's judge (``judge.name``, no reference answers, the same for real and
    generated entries) scores each answer; a test taker's utility is its mean judge score, in [0, 1]. Writes
    ``test_takers/answers.parquet`` and ``test_takers/scoring.json`` of iteration k.

    Raises:
        ScoringError: a test taker none of whose answers could be judged (failures counted in the message).
    """
    check_stop()
    t0 = time.perf_counter()
    task = load_run_task(config, info)
    pool = read_pool(run, iteration + 1)
    takers = swarm_test_takers(config, info, run, iteration)
    items = [{"item": e.item, "pool_index": i, "source": e.source} for i, e in enumerate(pool)]
    rows = answer(
        items,
        takers.takers,
        **answer_settings(config),
        run_seed=config.stream_seed,
        stage="pool-answers",
        iteration=iteration,
    )
    judge = build_run_judge(config, config.judge.name, takers.local, task.domain, f"pool-judge-{iteration}")
    judge_answers(judge, rows)
    summed = scores_per_test_taker(rows, takers.names)
    failures = summed.judge_failures
    unanswered = {name: len(reasons) for name, reasons in summed.answer_failures.items()}
    for name, mean in summed.means.items():
        if mean is None:
            raise ScoringError(
                f"test taker {name}: none of its {len(pool)} answers on the pool of iteration {iteration} could "
                f"be judged ({judge.name} judge: {failures[name]} judge failures, {unanswered[name]} answer "
                "failures); no utility can be computed"
            )
    _write_answers(run, swarm_iter_key(iteration, TEST_TAKER_SWARM, "answers.parquet"), rows)
    report = PoolScoringReport(
        swarm=TEST_TAKER_SWARM, iteration=iteration, judge=judge.name, test_takers=takers.names,
        utilities=[summed.means[n] for n in takers.names], judged=summed.judged, judge_failures=failures,
        answer_failures=unanswered,
        pool_size=len(pool), generated_share=generated_share(pool), seconds=round(time.perf_counter() - t0, 3),
    )  # fmt: skip
    report.write(run, swarm_iter_key(iteration, TEST_TAKER_SWARM, "scoring.json"))
    return report


def _write_answers(run: Store, key: str, rows: list[dict]) -> None:
    columns = ["test_taker", "item", "response", "answer_failure", "score", "judge_detail"]
    present = rows[0] if rows else {}
    extra = [c for c in ("pool_index", "source", "test_index", "output", "accuracy") if c in present]
    frame = pd.DataFrame(
        [
            {**{c: r.get(c) for c in extra + columns}, "judge_detail": json.dumps(r.get("judge_detail"))}
            for r in rows
        ],
        columns=extra + columns,
    )
    run.write_parquet(key, frame)


def held_out_items(config: RunConfig, task: Task) -> list[dict[str, object]]:
    """The first ``adversarial.test_items`` real test items that have a reference answer (an ``output`` that is
    not empty; fewer when the task has fewer): ``item``, ``output``, ``test_index``."""
    outputs = task.test["output"].tolist()  # str or None (load_task normalises them)
    usable = [i for i, out in enumerate(outputs) if out is not None and out.strip()]
    return [
        {"item": task.test["input"].iloc[i], "output": outputs[i], "test_index": i}
        for i in usable[: config.adversarial.test_items]
    ]


def track_held_out(config: RunConfig, info: RunInfo, run: Store, iteration: int) -> HeldOutReport:
    """Step 4 of iteration k: the iteration's best test taker (the particle with the highest pool score; the
    first on a tie) answers the held-out test items; the pool's judge (``judge.name``) scores the answers as it
    scored the pool, and the dev judge (``judge.dev_name``) scores them against the reference answers: one
    point of the generalisation curve. Writes ``test_takers/held_out.parquet`` and ``held_out.json`` of
    iteration k.

    Returns:
        The :class:`~dataswarms_core.records.HeldOutReport`; a score is None (missing, not 0) when no answer
        could be judged.
    """
    check_stop()
    t0 = time.perf_counter()
    task = load_run_task(config, info)
    scores = PoolScoringReport.read(run, swarm_iter_key(iteration, TEST_TAKER_SWARM, "scoring.json"))
    best = max(range(len(scores.utilities)), key=lambda i: (scores.utilities[i], -i))
    state = load_swarm_state(run, swarm_key(TEST_TAKER_SWARM, iteration))
    name = state.names[best]
    local = load_local(config, info, {name: (state.metadata["lora_config"], state.positions[best])})
    items = held_out_items(config, task)
    rows = answer(
        items, [TestTaker(name, local.backend, name)], **answer_settings(config), run_seed=config.stream_seed,
        stage="held-out-answers", iteration=iteration,
    )  # fmt: skip
    dev_rows = [dict(r) for r in rows]
    judge = build_run_judge(config, config.judge.name, local, task.domain, f"held-out-judge-{iteration}")
    judge_answers(judge, rows)
    dev_judge = build_run_judge(
        config, config.judge.dev_name, local, task.domain, f"held-out-dev-judge-{iteration}"
    )
    judge_answers(dev_judge, dev_rows, with_references=True)
    for row, dev in zip(rows, dev_rows, strict=True):
        row["accuracy"] = dev["score"]
    got = [r["score"] for r in rows if r["score"] is not None]
    right = [r["score"] for r in dev_rows if r["score"] is not None]
    _write_answers(run, swarm_iter_key(iteration, TEST_TAKER_SWARM, "held_out.parquet"), rows)
    unanswered = sum(1 for r in rows if r.get("answer_failure"))
    report = HeldOutReport(
        iteration=iteration, test_taker=name, pool_score=scores.utilities[best],
        held_out_score=sum(got) / len(got) if got else None,
        held_out_accuracy=sum(right) / len(right) if right else None, items=len(items), judge=judge.name,
        dev_judge=dev_judge.name, judged=len(got), judge_failures=len(rows) - unanswered - len(got),
        dev_judged=len(right), dev_judge_failures=len(rows) - unanswered - len(right), answer_failures=unanswered,
        seconds=round(time.perf_counter() - t0, 3),
    )  # fmt: skip
    report.write(run, swarm_iter_key(iteration, TEST_TAKER_SWARM, "held_out.json"))
    return report


@dataclass(frozen=True)
class AdversarialExport:
    """What :func:`export_adversarial` wrote.

    Attributes:
        summary: the test-taker swarm and the pool, for ``summary.json``.
        outputs: :class:`~dataswarms_core.records.RunOutputs` field → URL (the adversarial ones).
        markdown: the report's section (curve table, test-taker utilities, pool).
    """

    summary: AdversarialSummary
    outputs: dict[str, str]
    markdown: str


def export_adversarial(config: RunConfig, info: RunInfo, run: Store, iterations: int) -> AdversarialExport:
    """Export the test-taker swarm and the pool of an adversarial run after ``iterations`` completed iterations:
    the test-taker global best as a PEFT folder (``export/test_taker_adapter``), per (iteration, test taker)
    metrics, the generalisation curve (CSV and PNG) and the generated items that entered the pool with their
    provenance (``export/pool_items.jsonl``)."""
    from ..curves import curve_frame, curves_markdown, plot_curves
    from ..report import MISSING
    from .layout import EXPORT_DIR
    from .package import write_global_best

    scores = [
        PoolScoringReport.read(run, swarm_iter_key(k, TEST_TAKER_SWARM, "scoring.json"))
        for k in range(iterations)
    ]
    held = [
        HeldOutReport.read(run, swarm_iter_key(k, TEST_TAKER_SWARM, "held_out.json"))
        for k in range(iterations)
    ]
    steps = [
        SwarmStepReport.read(run, swarm_iter_key(k, TEST_TAKER_SWARM, "pso.json")) for k in range(iterations)
    ]
    pools = [PoolReport.read(run, f"{pool_key(k + 1)}/{POOL_REPORT}") for k in range(iterations)]
    state = load_swarm_state(run, swarm_key(TEST_TAKER_SWARM, iterations))
    adapter_url = run.url(f"{EXPORT_DIR}/test_taker_adapter")
    write_global_best(config, info, run, f"{EXPORT_DIR}/test_taker_adapter", state)

    rows = []
    for k, (sco, step) in enumerate(zip(scores, steps, strict=True)):
        for i, name in enumerate(sco.test_takers):
            rows.append({
                "iteration": k, "test_taker": name, "pool_score": sco.utilities[i],
                "personal_best_utility": step.personal_best_utility[i], "global_best_utility": step.global_best_utility,
                "step_length": step.step_length, "restarted": i in step.restarted, "judged": sco.judged[name],
                "judge_failures": sco.judge_failures[name], "answer_failures": sco.answer_failures[name],
                "generated_share": sco.generated_share, "best": held[k].test_taker == name,
                "held_out_score": held[k].held_out_score if held[k].test_taker == name else None,
                "held_out_accuracy": held[k].held_out_accuracy if held[k].test_taker == name else None,
            })  # fmt: skip
    metrics = pd.DataFrame(rows)
    metrics = metrics.astype({"held_out_score": float, "held_out_accuracy": float})
    metrics_csv = run.write_csv(f"{EXPORT_DIR}/test_takers.csv", metrics)
    run.write_parquet(f"{EXPORT_DIR}/test_takers.parquet", metrics)

    curve = [
        CurvePoint(
            iteration=k,
            test_taker=h.test_taker,
            pool_score=h.pool_score,
            held_out_score=h.held_out_score,
            held_out_accuracy=h.held_out_accuracy,
            generated_share=p.generated_share,
            replaced=len(p.replaced),
        )  # fmt: skip
        for k, (h, p) in enumerate(zip(held, pools, strict=True))
    ]
    label = config.adversarial.pool
    frame = curve_frame({label: curve})
    curve_csv = run.write_csv(f"{EXPORT_DIR}/generalisation.csv", frame)
    plot = run.write_bytes(
        f"{EXPORT_DIR}/generalisation.png", plot_curves(frame, f"{info.run_name} (pool: {label})")
    )

    entered: dict[tuple[str, int], dict] = {}
    for k in range(1, iterations + 1):
        for position, entry in enumerate(read_pool(run, k)):
            if entry.source == "generated":
                key = (entry.item_id or "", entry.entered if entry.entered is not None else -1)
                entered.setdefault(
                    key, {**entry.model_dump(), "position": position, "run_name": info.run_name}
                )
    pool_items = run.write_jsonl(f"{EXPORT_DIR}/pool_items.jsonl", list(entered.values()))

    summary = AdversarialSummary(
        pool=label, pool_size=config.adversarial.pool_size,
        replacement_probability=config.adversarial.replacement_probability, held_out_items=held[0].items,
        test_takers=state.names,
        utility_history=[dict(zip(s.test_takers, s.utilities, strict=True)) for s in scores],
        global_best_utility=state.global_best_utility, global_best_particle=state.names[state.global_best_particle],
        global_best_iteration=state.global_best_iteration,
        stopped=state.stopped, step_length_history=[s.step_length for s in steps],
        curve=curve, generated_items=len({k[0] for k in entered}),
        judge_failures=sum(sum(s.judge_failures.values()) for s in scores),
        answer_failures=sum(sum(s.answer_failures.values()) for s in scores),
        held_out_judge_failures=sum(h.judge_failures + h.dev_judge_failures for h in held),
        seconds={
            "pool_scoring": round(sum(s.seconds for s in scores), 1),
            "held_out": round(sum(h.seconds for h in held), 1),
            "test_taker_pso": round(sum(s.seconds for s in steps), 2),
        },
    )  # fmt: skip
    table = metrics.pivot(index="iteration", columns="test_taker", values="pool_score")
    md = [
        "## Adversarial Swarms: the test takers",
        "",
        f"Pool: **{label}** ({summary.pool_size} real dev items at the start"
        + (f", each entry replaced with probability {summary.replacement_probability:g} per iteration" if label
           == "adversarial" else ", never replaced: the control") + f"); held-out: {summary.held_out_items} real "
        f"test items. Test-taker global best {summary.global_best_utility:.4f} ({summary.global_best_particle}, "
        f"iteration {summary.global_best_iteration}); {summary.generated_items} generated items entered the pool; "
        f"judge failures on the pool {summary.judge_failures}, on held-out items {summary.held_out_judge_failures}.",
        "",
        "### Generalisation curve (the best test taker of each iteration)",
        "",
        curves_markdown(frame),
        f"{MISSING}: missing (no held-out answer could be judged). To put this curve beside its control's: "
        "`dataswarms compare RUN OTHER_RUN` (or run both with `dataswarms run --mode adversarial --pool both`).",
        "",
        "![generalisation](generalisation.png)",
        "",
        "### Test-taker utility (mean judge score on the pool) per iteration",
        "",
        "| iteration | " + " | ".join(map(str, table.columns)) + " |",
        "|---|" + "---|" * len(table.columns),
        *(f"| {it} | " + " | ".join(f"{v:.4f}" for v in row.values) + " |" for it, row in table.iterrows()),
    ]  # fmt: skip
    outputs = {
        "test_taker_adapter": adapter_url, "test_taker_metrics_csv": metrics_csv, "generalisation_csv": curve_csv,
        "generalisation_plot": plot, "pool_items": pool_items,
    }  # fmt: skip
    return AdversarialExport(summary, outputs, "\n".join(md) + "\n")


@dataclass(frozen=True)
class Comparison:
    """The generalisation curves of several adversarial runs in one table and plot (:func:`compare_runs`).

    Attributes:
        labels: run label (its pool, or its run name when pools repeat) → run URL.
        frame: :func:`~dataswarms_core.curves.curve_frame` of all curves.
        markdown: the comparison report (``comparison.md``).
        outputs: file name → URL (``comparison.md``, ``generalisation.csv``, ``generalisation.png``).
    """

    labels: dict[str, str]
    frame: pd.DataFrame
    markdown: str
    outputs: dict[str, str]


def compare_runs(runs: list[Store], output: Store) -> Comparison:
    """Put the generalisation curves of finished adversarial runs (e.g. ``--pool adversarial`` and its
    ``--pool static`` control) in one plot and one table, written to ``output``.

    Raises:
        StorageError / FormatError: a run has no readable ``summary.json`` (not finished).
        ValueError: a run is not an adversarial run, or fewer than one run is given.
    """
    from ..curves import curve_frame, curves_markdown, plot_curves
    from ..records import RunSummary

    if not runs:
        raise ValueError("compare: give at least one finished adversarial run")
    roots = [r.root.rstrip("/") for r in runs]
    twice = sorted({root for root in roots if roots.count(root) > 1})
    if twice:
        raise ValueError(f"{twice[0]}: given twice; compare needs different runs")
    for run in runs:
        if not run.exists("summary.json"):
            raise ValueError(
                f"{run.root}: not a finished run (no summary.json); finish it with dataswarms resume {run.root}"
            )
    summaries = [RunSummary.read(r, "summary.json") for r in runs]
    for run, s in zip(runs, summaries, strict=True):
        if s.adversarial is None:
            raise ValueError(
                f"{run.root}: run {s.run_name} is a {s.mode} run; compare needs adversarial runs"
            )
    pools = [s.adversarial.pool for s in summaries]
    labels = (
        pools
        if len(set(pools)) == len(pools)
        else [f"{s.run_name} ({p})" for s, p in zip(summaries, pools, strict=True)]
    )
    frame = curve_frame({lab: s.adversarial.curve for lab, s in zip(labels, summaries, strict=True)})
    lines = [
        "# Adversarial Swarms: generalisation curves",
        "",
        "Per run and iteration, the best test taker (highest mean judge score on the pool) on held-out real "
        "test items: its mean score by the pool's judge (held-out), its mean score against the reference "
        "answers (accuracy), and its pool score (docs/method.md §6).",
        "",
    ]
    for lab, s, run in zip(labels, summaries, runs, strict=True):
        a = s.adversarial
        lines.append(
            f"- **{lab}**: run `{s.run_name}` ({run.root}), pool {a.pool} of {a.pool_size} "
            + (f"(p = {a.replacement_probability:g})" if a.pool == "adversarial" else "(never replaced)")
            + f", {a.held_out_items} held-out items, {s.iterations_completed} "
            f"iterations, seed {s.seed}, base model {s.base_model}, task {s.task}"
        )
    lines += ["", curves_markdown(frame), "![generalisation](generalisation.png)", ""]
    markdown = "\n".join(lines)
    outputs = {
        "generalisation.csv": output.write_csv("generalisation.csv", frame),
        "generalisation.png": output.write_bytes(
            "generalisation.png", plot_curves(frame, " vs ".join(labels))
        ),
        "comparison.md": output.write_text("comparison.md", markdown),
    }
    return Comparison(dict(zip(labels, [r.root for r in runs], strict=True)), frame, markdown, outputs)
