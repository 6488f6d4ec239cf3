"""Scoring stage: test takers answer, a judge scores each answer, the objective gives every generator a
utility (docs/method.md §3–4); and, once per run, the test takers' scores on real dev items (novelty's q)."""

from __future__ import annotations

import json
import random
import time

import pandas as pd

from ..config import RunConfig
from ..errors import ScoringError
from ..objectives import objective_needs
from ..pso import load_swarm_state
from ..records import AdapterManifest, AnswerRow, ItemRow, ReferenceScores, RunInfo, ScoringReport
from ..scoring import answer, answer_failure_kinds, compute_objectives, judge_answers, scores_per_test_taker
from ..seeding import GENERATOR_SWARM, derive_seed
from ..stop import check_stop
from ..storage import Store
from .components import build_run_judge, build_test_takers, realistic_corpus, swarm_test_takers
from .layout import REFERENCE_SCORES, iter_key, swarm_iter_key, swarm_key
from .setup import load_run_task

ANSWER_COLUMNS = list(AnswerRow.model_fields)


def answer_settings(config: RunConfig) -> dict[str, float | int]:
    """The test takers' answer settings of ``scoring`` (max new tokens, temperature, batch size)."""
    s = config.scoring
    return {
        "max_new_tokens": s.answer_max_new_tokens,
        "temperature": s.answer_temperature,
        "batch_size": s.batch_size,
    }


def score_reference(
    config: RunConfig, info: RunInfo, run: Store, manifest: AdapterManifest
) -> ReferenceScores:
    """Test takers answer ``scoring.novelty_dev_items`` real dev items once per run; the dev judge scores
    them; ``reference_scores.json`` holds each test taker's mean (novelty's q, docs/method.md §4).

    Returns the existing file's content when the run already has it.

    Raises:
        ScoringError: a test taker none of whose dev answers could be judged.
    """
    check_stop()  # a stop requested while a library swallowed the interrupt ends the run here
    if run.exists(REFERENCE_SCORES):
        return ReferenceScores.read(run, REFERENCE_SCORES)
    t0 = time.perf_counter()
    task = load_run_task(config, info)
    n = min(config.scoring.novelty_dev_items, len(task.dev))
    picked = sorted(
        random.Random(derive_seed(config.stream_seed, "reference-items")).sample(range(len(task.dev)), n)
    )
    items = [{"item": task.dev["input"][i], "output": task.dev["output"][i], "dev_index": i} for i in picked]
    takers = build_test_takers(config, info, manifest)
    rows = answer(
        items, takers.takers, **answer_settings(config), run_seed=config.stream_seed, stage="reference-answers"
    )
    judge = build_run_judge(config, config.judge.dev_name, takers.local, task.domain, "reference-judge")
    judge_answers(judge, rows, with_references=True)
    summed = scores_per_test_taker(rows, takers.names)
    for name, mean in summed.means.items():
        unanswered = summed.answer_failures[name]
        if mean is None:
            note = f"; {len(unanswered)} answers failed, e.g. {unanswered[0]!r}" if unanswered else ""
            raise ScoringError(
                f"test taker {name}: none of its {n} answers on real dev items could be judged ({judge.name} judge)"
                + note
            )
    result = ReferenceScores(
        test_takers=takers.names, scores=summed.means, judge=judge.name, items=n,
        judge_failures=summed.judge_failures,
        seconds=round(time.perf_counter() - t0, 3),
    )  # fmt: skip
    result.write(run, REFERENCE_SCORES)
    return result


def score(
    config: RunConfig,
    info: RunInfo,
    run: Store,
    iteration: int,
    manifest: AdapterManifest,
    swarm: str = GENERATOR_SWARM,
) -> ScoringReport:
    """Test takers answer iteration k's items, the judge scores them, the objectives give the generator
    swarm's utilities; writes ``answers.parquet`` and ``<swarm>/scoring.json``.

    Args:
        manifest: the trained LoRA test takers. In adversarial mode (docs/method.md §6) the test takers are
            instead the test-taker swarm's particles at iteration k (:func:`.components.swarm_test_takers`).

    Returns:
        The :class:`~dataswarms_core.records.ScoringReport`: score matrix (G × T, None where empty),
        utilities, every objective computed, empty generators, judge failures, answer failures (answers
        the test takers failed to give: never judged, counted apart), seconds.

    Raises:
        ScoringError: see :func:`~dataswarms_core.scoring.compute_objectives`.
    """
    check_stop()  # a stop requested while a library swallowed the interrupt ends the run here
    t0 = time.perf_counter()
    task = load_run_task(config, info)
    names = load_swarm_state(run, swarm_key(swarm, iteration)).names
    items = [
        ItemRow.model_validate(r).model_dump() for r in run.read_jsonl(iter_key(iteration, "items.jsonl"))
    ]
    if config.mode == "adversarial":
        takers = swarm_test_takers(config, info, run, iteration)
    else:
        takers = build_test_takers(config, info, manifest)
    s = config.scoring
    rows = answer(
        items,
        takers.takers,
        **answer_settings(config),
        run_seed=config.stream_seed,
        stage="answers",
        iteration=iteration,
    )
    judge = build_run_judge(config, config.judge.name, takers.local, task.domain, f"judge-{iteration}")
    judge_answers(judge, rows)
    answers = [
        AnswerRow(
            **{k: r[k] for k in ANSWER_COLUMNS if k != "judge_detail"},
            judge_detail=json.dumps(r["judge_detail"]),
        )
        for r in rows
    ]
    run.write_parquet(
        iter_key(iteration, "answers.parquet"),
        pd.DataFrame([a.model_dump() for a in answers], columns=ANSWER_COLUMNS),
    )
    components = list(
        dict.fromkeys(["difficulty", *(["separation"] if len(takers.takers) > 1 else []), *s.components])
    )
    needs = objective_needs(components)
    reference = None
    if "reference_scores" in needs:
        ref = ReferenceScores.read(run, REFERENCE_SCORES)
        reference = [ref.scores[t] for t in takers.names]
    result = compute_objectives(
        rows, names, takers.names, objective=s.objective, components=components, weights=s.composite_weights,
        normalise=s.normalise, on_empty_generator=s.on_empty_generator, reference=reference,
        n_sets=s.consistency_sets, items=[[r["item"] for r in items if r["generator"] == g] for g in names],
        corpus=realistic_corpus(config) if "corpus" in needs else None, settings=s,
    )  # fmt: skip
    m, failed, unanswered = result.score_matrix, result.failed, result.answer_failures
    masses = [r["judge_detail"]["mass"] for r in rows if "mass" in r["judge_detail"]]
    report = ScoringReport(
        swarm=swarm,
        iteration=iteration,
        objective=s.objective,
        judge=judge.name,
        generators=names,
        test_takers=takers.names,
        score_matrix=[[None if v != v else float(v) for v in row] for row in m.tolist()],
        utilities=result.utilities,
        components=result.components,
        undefined=result.undefined,
        empty_generators=result.empty_generators,
        missing_utilities=[
            g for g in names
            if g in result.empty_generators or any(g in result.undefined.get(c, []) for c in s.components)
        ],  # fmt: skip
        judge_failures=int(failed.sum()),
        judge_failures_per_generator=dict(zip(names, failed.sum(axis=1).tolist(), strict=True)),
        judge_failures_per_test_taker=dict(zip(takers.names, failed.sum(axis=0).tolist(), strict=True)),
        answers=len(rows),
        mean_judge_mass=sum(masses) / len(masses) if masses else None,
        seconds=round(time.perf_counter() - t0, 3),
        answer_failures=int(unanswered.sum()),
        answer_failures_per_generator=dict(zip(names, unanswered.sum(axis=1).tolist(), strict=True)),
        answer_failures_per_test_taker=dict(zip(takers.names, unanswered.sum(axis=0).tolist(), strict=True)),
        answer_failure_kinds=answer_failure_kinds(rows),
    )
    report.write(run, swarm_iter_key(iteration, swarm, "scoring.json"))
    return report
