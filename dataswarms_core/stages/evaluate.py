"""Evaluating models on a benchmark package (``dataswarms evaluate``): every model answers every item, the
run's judge scores each answer in [0, 1], and the leaderboard ranks the models (docs/method.md §7).

Layout under the package folder::

    evaluations/<model_key>/result.json     ModelEvaluation: one model's scores (the cache and resume unit)
    evaluations/<model_key>/answers.jsonl   its answers, judge scores and failures, item by item
    leaderboard/                            leaderboard.json|csv|parquet|md, leaderboard.png (default output)

``model_key`` hashes everything a result depends on: the package version, the model's identity (local
fingerprint, adapter weights, or endpoint URL and name), the judge (name, settings, judge-model fingerprint)
and the answer settings. Evaluating the same model on the same package version again reads the result.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from ..config import RunConfig
from ..config_files import validation_message
from ..errors import ConfigError, FormatError, ModelError, StorageError
from ..judges import JudgeContext, build_judge
from ..leaderboard import build_leaderboard, leaderboard_frame, leaderboard_markdown, plot_leaderboard
from ..model_spec import ModelSpec, check_model_spec
from ..models import check_model, model_fingerprint, resolve_model
from ..records import BenchmarkItem, BenchmarkManifest, Leaderboard, ModelEvaluation
from ..scoring import answer, judge_answers
from ..seeding import derive_seed
from ..stop import check_stop
from ..storage import Store
from .answers import load_spec, spec_identity
from .package import EVALUATIONS as EVALUATIONS_DIR
from .package import MANIFEST

LEADERBOARD_DIR = "leaderboard"


@dataclass(frozen=True)
class Package:
    """An opened benchmark package.

    Attributes:
        store: the package folder.
        manifest: its ``package.json``.
        config: the run configuration it was made with (judge, answer settings, base model).
        items: its items, in order.
        tests: real test items (``input``, ``output``) for the rank comparison; may be empty.
    """

    store: Store
    manifest: BenchmarkManifest
    config: RunConfig
    items: list[BenchmarkItem]
    tests: list[dict[str, Any]]


def open_package(url: str, storage_options: dict[str, Any] | None = None) -> Package:
    """Open the benchmark package at ``url``.

    Raises:
        StorageError: no package there (no ``package.json``: not a package, or one whose writing did not
            finish), or a file that does not match its schema.
        FormatError: a package of another format version.
        ConfigError: its ``run_config.yaml`` is not a valid configuration for this dataswarms.
    """
    store = Store(url.rstrip("/"), storage_options or {})
    if not store.exists(MANIFEST):
        hint = (
            " (a run folder: its packages are under packages/iter_NNNN)" if store.exists("run.json") else ""
        )
        raise StorageError(f"{store.root}: not a benchmark package (no {MANIFEST}){hint}")
    try:
        manifest = BenchmarkManifest.read(store, MANIFEST)
    except FormatError as exc:
        raise FormatError(
            f"{str(exc).split('; ')[0]}; evaluate it with the dataswarms that wrote it, or export the run again"
        ) from None
    try:
        raw = yaml.safe_load(store.read_text(manifest.files.get("run_config", "run_config.yaml")))
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_message(store.url("run_config.yaml"), exc)) from None
    items = []
    for n, row in enumerate(store.read_jsonl(manifest.files.get("items", "items.jsonl")), start=1):
        try:
            items.append(BenchmarkItem.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise StorageError(f"{store.url('items.jsonl')}: line {n}: {where}: {first['msg']}") from None
    tests = store.read_jsonl(manifest.files["test"]) if manifest.files.get("test") else []
    return Package(store, manifest, config, items, [t for t in tests if t.get("output") is not None])


@dataclass(frozen=True)
class Judging:
    """The judges an evaluation uses, on the package's base model loaded once."""

    judge: Any
    dev_judge: Any
    identity: str


def load_judging(package: Package) -> Judging:
    """Load the package's base model and build its judge (``judge.name``) and dev judge (``judge.dev_name``,
    for the real test items, with reference answers).

    Raises:
        ModelError: the base model is not available on this machine.
    """
    from ..backends import load_local_backend

    config = package.config
    path = resolve_model(config.model.base_model)
    local = load_local_backend(path, {}, config.model)

    def build(name: str, stage: str) -> Any:
        context = JudgeContext(
            settings=config.judge, domain=package.manifest.domain, seed=derive_seed(config.stream_seed, stage),
            local=local.backend, tokenizer=local.tokenizer, batch_size=config.scoring.batch_size,
        )  # fmt: skip
        return build_judge(name, context)

    return Judging(
        build(config.judge.name, "evaluate-judge"),
        build(config.judge.dev_name, "evaluate-dev-judge"),
        judging_identity(package),
    )


def judging_identity(package: Package) -> str:
    """What the judges' scores depend on (their settings and the judge model's fingerprint), without
    loading the model."""
    config = package.config
    fingerprint = model_fingerprint(resolve_model(config.model.base_model))
    return json.dumps({"judge": config.judge.model_dump(mode="json"), "model": fingerprint}, sort_keys=True)


def model_key(package: Package, identity: str, judges: str) -> str:
    """The cache key of one model's evaluation on ``package`` (hex, 16 digits; see the module docstring)."""
    s = package.config.scoring
    tests = json.dumps(package.tests, sort_keys=True).encode()
    data = {
        "version": package.manifest.version,
        "model": identity,
        "judge": judges,
        "answers": [s.answer_max_new_tokens, s.answer_temperature, s.batch_size, package.config.stream_seed],
        "tests": hashlib.sha256(tests).hexdigest(),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _judged(rows: list[dict[str, Any]]) -> tuple[list[float | None], int, int]:
    scores = [r["score"] for r in rows]
    failures = sum(1 for r in rows if r["answer_failure"])
    judge_failures = sum(1 for r in rows if r["score"] is None and not r["answer_failure"])
    return scores, failures, judge_failures


def evaluate_model(
    package: Package,
    spec: ModelSpec,
    output: Store | None = None,
    storage_options: dict[str, Any] | None = None,
    judging: Judging | None = None,
) -> tuple[ModelEvaluation, bool]:
    """``spec`` answers every item of ``package`` (and its real test items); the judges score the answers.
    A result stored under the same key is returned as is.

    Args:
        output: where ``evaluations/<key>/`` goes (default: the package folder).
        storage_options: for reading the spec's adapter folder.
        judging: loaded judges to reuse (default: loaded here).

    Returns:
        (the evaluation, whether it came from the cache).

    Raises:
        ModelError: the model, its adapter or the judge model does not load; an adapter of another base model.
        EndpointError: every request to the endpoint failed (unreachable); a few failed requests only mark
            those items failed (``answer_failures``).
    """
    check_stop()
    out = output or package.store
    check_model_spec(spec, storage_options)
    identity = spec_identity(spec, storage_options)
    key = model_key(package, identity, judging.identity if judging else judging_identity(package))
    folder = out.child(EVALUATIONS_DIR, key)
    if folder.exists("result.json"):
        cached = ModelEvaluation.read(folder, "result.json")
        return cached.model_copy(update={"model": spec.label, "spec": spec.spec}), True
    judging = judging or load_judging(package)  # only when there is something to judge
    t0 = time.perf_counter()
    model = load_spec(package.config, spec, storage_options)
    s = package.config.scoring
    settings = {
        "max_new_tokens": s.answer_max_new_tokens, "temperature": s.answer_temperature,
        "batch_size": s.batch_size, "run_seed": package.config.stream_seed,
    }  # fmt: skip
    rows = answer(
        [{"item": it.item, "id": it.id} for it in package.items], [model.taker], **settings, stage="evaluate"
    )
    judge_answers(judging.judge, rows)
    scores, failures, judge_failures = _judged(rows)
    test_rows: list[dict[str, Any]] = []
    if package.tests:
        test_rows = answer(
            [{"item": t["input"], "output": t["output"]} for t in package.tests], [model.taker], **settings,
            stage="evaluate-test",
        )  # fmt: skip
        judge_answers(judging.dev_judge, test_rows, with_references=True)
    test_scores, test_failures, test_judge_failures = _judged(test_rows)
    result = ModelEvaluation(
        model=spec.label, spec=spec.spec, model_key=key, benchmark_version=package.manifest.version,
        judge=package.config.judge.name, items=len(rows), answered=len(rows) - failures, answer_failures=failures,
        judge_failures=judge_failures, scores=scores, test_items=len(test_rows),
        test_answered=len(test_rows) - test_failures, test_answer_failures=test_failures,
        test_judge_failures=test_judge_failures, test_scores=test_scores,
        seconds=round(time.perf_counter() - t0, 2),
    )  # fmt: skip
    detail = [
        {"split": split, "id": r.get("id"), "query": r["query"], "response": r["response"], "score": r["score"],
         "answer_failure": r["answer_failure"], "judge_detail": json.dumps(r.get("judge_detail", {}), default=str)}
        for split, group in (("package", rows), ("test", test_rows)) for r in group
    ]  # fmt: skip
    folder.write_jsonl("answers.jsonl", detail)
    result.write(folder, "result.json")  # last: the folder is complete
    return result, False


def write_leaderboard(
    package: Package,
    evaluations: Sequence[ModelEvaluation],
    output: Store,
    cached: Sequence[str] = (),
    seed: int = 0,
) -> Leaderboard:
    """Rank ``evaluations`` and write the leaderboard to ``output``: ``leaderboard.json``, ``.csv``,
    ``.parquet``, ``.md`` and ``leaderboard.png`` (bar plot with the 95 % intervals).

    Raises:
        ValueError: see :func:`~dataswarms_core.leaderboard.build_leaderboard`.
    """
    board = build_leaderboard(
        evaluations, benchmark=package.manifest.name, version=package.manifest.version,
        judge=package.config.judge.name, seed=seed, cached=cached,
    )  # fmt: skip
    frame = leaderboard_frame(board)
    files = {
        "csv": output.write_csv("leaderboard.csv", frame),
        "parquet": output.write_parquet("leaderboard.parquet", frame),
        "markdown": output.write_text("leaderboard.md", leaderboard_markdown(board)),
        "plot": output.write_bytes("leaderboard.png", plot_leaderboard(board)),
    }
    board = board.model_copy(update={"files": {**files, "json": output.url("leaderboard.json")}})
    board.write(output, "leaderboard.json")
    return board


def check_specs(
    specs: Sequence[ModelSpec],
    storage_options: dict[str, Any] | None = None,
    package: Package | None = None,
    where: str = "--model",
) -> None:
    """Check every spec before anything loads: labels distinct, models and adapters present, adapters of the
    right base model; with ``package``, that its judge model (the run's base model) is here. Messages name
    ``where`` (``--model``, ``benchmark.models``).

    Raises:
        ConfigError: two models with one label.
        ModelError: see :func:`~dataswarms_core.model_spec.check_model_spec` and :func:`.spec_identity`; the
            judge model is missing.
    """
    if package is not None:
        try:
            check_model(package.config.model.base_model)
        except ModelError as exc:
            raise ModelError(f"{package.store.root}: the judge model (the run's base model): {exc}") from None
    labels = [s.label for s in specs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ConfigError(
            f"{where}: label {', '.join(repeated)} names two models; give each its own (LABEL=SPEC)"
        )
    for spec in specs:
        check_model_spec(spec, storage_options, where)
        spec_identity(spec, storage_options)
