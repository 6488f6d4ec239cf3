"""Benchmark package stage (docs/method.md §7): the items a checkpoint's global-best generator writes, as a
versioned folder on the run's storage that people can use without dataswarms.

Layout of ``<run>/packages/iter_NNNN/`` (NNNN: iterations completed at the checkpoint exported)::

    items.jsonl, items.parquet   one BenchmarkItem per item: stable id, text, provenance, reference answer
    copies.jsonl                 generated items left out as copies, with the closest real item (CopyRow)
    test.jsonl                   real test items of the task (input, output), for the rank comparison
    adapter/                     the global-best adapter (PEFT folder, portable base name) + dataswarms.json
    lm_eval/                     an lm-evaluation-harness task (when the items have reference answers)
    inspect_task.py              an inspect_ai task (same condition), reading inspect_items.jsonl next to it
    run_config.yaml              the run's configuration (judge and answer settings for `dataswarms evaluate`)
    README.md                    the dataset card (YAML metadata + how it was made)
    package.json                 BenchmarkManifest, written last: a folder without it is incomplete
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field

import pandas as pd
import yaml

from ..adapters import write_adapter
from ..config import RunConfig
from ..copies import CopyDetector, CopyMatch
from ..data import Task
from ..errors import ConfigMismatchError
from ..harness import harness_task_name, write_inspect_task, write_lm_eval_task
from ..model_spec import check_model_spec, parse_model_spec
from ..models import canonical_model_name, model_fingerprint, resolve_model
from ..pso import SwarmState, load_swarm_state
from ..records import (
    AdapterOrigin,
    BenchmarkItem,
    BenchmarkManifest,
    CopyRow,
    GeneratorCounts,
    ItemRow,
    PackageCounts,
    RunInfo,
)
from ..seeding import GENERATOR_SWARM, derive_seed
from ..stop import check_stop
from ..storage import Store
from .answers import answer_with_spec, spec_identity
from .card import dataset_card
from .checks import RUN_INFO
from .layout import ADAPTER_ORIGIN, completed_iterations, now, swarm_key
from .setup import load_run_task
from .synthesis import sample_generators

PACKAGES_DIR = "packages"
EVALUATIONS = "evaluations"  # written by `dataswarms evaluate` (stages.evaluate)
MANIFEST = "package.json"


def package_key(iteration: int) -> str:
    """``packages/iter_NNNN``: the package of the checkpoint after ``iteration`` completed iterations."""
    return f"{PACKAGES_DIR}/iter_{iteration:04d}"


def item_id(text: str) -> str:
    """The stable id of an item: ``ds-`` + the first 16 hex digits of SHA-256 of its UTF-8 text."""
    return "ds-" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Collected:
    """What :func:`collect_items` gathered: kept rows in order (calls numbered across rounds), the copies
    left out, the summed :class:`~dataswarms_core.records.GeneratorCounts` and the calls made."""

    rows: list[ItemRow] = field(default_factory=list)
    copies: list[CopyRow] = field(default_factory=list)
    counts: GeneratorCounts = field(default_factory=GeneratorCounts)
    calls: int = 0


def _add(total: GeneratorCounts, more: GeneratorCounts) -> GeneratorCounts:
    return GeneratorCounts(**{k: getattr(total, k) + getattr(more, k) for k in GeneratorCounts.model_fields})


def collect_items(
    config: RunConfig, info: RunInfo, task: Task, name: str, adapter: tuple, iteration: int
) -> tuple[Collected, str | None]:
    """Sample the generator ``name`` until ``export.items`` unique, non-copied items are kept or the extra
    calls run out.

    Round 0 makes ``ceil(items / items_written)`` calls (stage label ``export``, the streams of earlier
    dataswarms); each further round r (stage ``export-r``) makes as many calls as the yield so far says are
    needed, at most the ``export.max_extra_calls`` left. Calls are numbered across rounds. Items repeating an
    earlier round's item exactly count as duplicates, near-duplicates of one as copies (kind ``items``,
    ``closest_index`` a position among the collected rows).

    Returns:
        What was collected (rows in order, copies, summed counts, calls) and the shortfall reason (None when
        the target was met).
    """
    e, per_call = config.export, config.generation.items_written
    got = Collected()
    seen: set[str] = set()
    extra_left = e.max_extra_calls
    calls = math.ceil(e.items / per_call)
    round_no = 0
    while calls > 0:
        check_stop()
        stage = "export" if round_no == 0 else f"export-{round_no}"
        sample = sample_generators(
            config, info, task, {name: adapter}, calls=calls, iteration=iteration, stage=stage
        )
        counts = sample.counts[name]
        offset = len(got.rows)
        new = [r for r in sample.items if r.item not in seen]
        repeated = len(sample.items) - len(new)
        at = {id(r): k for k, r in enumerate(sample.items)}
        placed: dict[int, int] = {}  # position in sample.items -> position in got.rows
        late = _copies_of_earlier(config, task, new, got.rows) if offset else [None] * len(new)
        for row, match in zip(new, late, strict=True):
            if match is not None:  # near-duplicates an item an earlier round kept
                got.copies.append(
                    CopyRow(
                        generator=row.generator,
                        iteration=row.iteration,
                        call=row.call + got.calls,
                        item=row.item,
                        kind="items",
                        closest=match.closest,
                        closest_index=match.closest_index,
                        overlap=match.overlap,
                        cosine=match.cosine,
                    )  # fmt: skip
                )
                continue
            seen.add(row.item)
            placed[at[id(row)]] = len(got.rows)
            got.rows.append(row.model_copy(update={"call": row.call + got.calls}))
        late_copies = sum(m is not None for m in late)
        for c in sample.copies:
            index = placed.get(c.closest_index) if c.kind == "items" else c.closest_index
            got.copies.append(c.model_copy(update={"call": c.call + got.calls, "closest_index": index}))
        got.counts = _add(
            got.counts,
            counts.model_copy(
                update={
                    "duplicates": counts.duplicates + repeated,
                    "copies": counts.copies + late_copies,
                    "items": counts.items - repeated - late_copies,
                }
            ),
        )
        got.calls += calls
        need = e.items - len(got.rows)
        if need <= 0:
            return got, None
        if extra_left == 0:
            break
        kept_per_call = len(got.rows) / got.calls
        calls = min(extra_left, math.ceil(need / max(kept_per_call, per_call / 10)))
        extra_left -= calls
        round_no += 1
    extra = got.calls - math.ceil(e.items / per_call)
    return got, (
        f"{len(got.rows)} of {e.items} items after {got.calls} calls ({extra} extra, the most "
        f"export.max_extra_calls {e.max_extra_calls} allows); raise export.max_extra_calls for more"
    )


def _copies_of_earlier(
    config: RunConfig, task: Task, rows: list[ItemRow], earlier: list[ItemRow]
) -> list[CopyMatch | None]:
    """Which of a later round's ``rows`` near-duplicate an item kept by an earlier round (docs/method.md §2,
    "Copies"); ``closest_index`` of a match is the position in ``earlier``."""
    c = config.copies
    if not (c.enabled and "items" in c.against and rows):
        return [None] * len(rows)
    detector = CopyDetector.from_config(
        c.model_copy(update={"against": ["items"]}), task.dev["input"].tolist(), task.test["input"].tolist()
    )
    return detector.find([(r.item, []) for r in rows], earlier=[r.item for r in earlier])


def _reference_answers(config: RunConfig, texts: list[str]) -> tuple[list[str | None], list[str | None], str]:
    """The reference model's answers to ``texts``, a blank one recorded as a failure, and the model's name."""
    spec = parse_model_spec(config.export.reference_model or config.model.base_model)
    answers, failures = answer_with_spec(
        config,
        spec,
        texts,
        stage="package-reference-answers",
        storage_options=config.storage.fsspec_options(),
    )
    for k, a in enumerate(answers):  # a blank reply is no reference answer: recorded as a failure
        if a is not None and not a.strip():
            answers[k], failures[k] = None, "empty_answer: the reference model replied with nothing"
    return answers, failures, spec.label  # a local model by its canonical name, not this machine's path


def _test_items(config: RunConfig, task: Task) -> list[dict[str, str]]:
    """``export.test_items`` real test items with a reference answer, drawn with a seeded stream."""
    if "output" not in task.test:
        return []
    usable = [i for i in range(len(task.test)) if not pd.isna(task.test["output"][i])]
    n = min(config.export.test_items, len(usable))
    picked = sorted(random.Random(derive_seed(config.stream_seed, "package-test-items")).sample(usable, n))
    return [{"input": str(task.test["input"][i]), "output": str(task.test["output"][i])} for i in picked]


def local_run_info(config: RunConfig, run: Store) -> RunInfo:
    """A stored run's ``run.json`` with this machine's copy of its base model (for exporting a run that was
    made elsewhere, or before a move).

    Raises:
        StorageError / FormatError: no readable ``run.json`` of this format version.
        ConfigMismatchError: the local base model differs from the run's (another fingerprint).
    """
    info = RunInfo.read(run, RUN_INFO)
    path = resolve_model(config.model.base_model)
    fingerprint = model_fingerprint(path)
    if fingerprint != info.model_fingerprint:
        raise ConfigMismatchError(
            f"{run.root}: the base model {config.model.base_model} here has fingerprint {fingerprint}, the run "
            f"was made with {info.model_fingerprint}; export it where its base model is"
        )
    return info.model_copy(update={"model_path": str(path)})


def write_global_best(config: RunConfig, info: RunInfo, store: Store, key: str, state: SwarmState) -> dict:
    """Write the global best of ``state`` as a PEFT adapter folder ``key`` of ``store``, with a portable
    ``base_model_name_or_path`` and its :class:`~dataswarms_core.records.AdapterOrigin` (``dataswarms.json``).

    Returns:
        The adapter configuration written (``adapter_config.json``).
    """
    lora = dict(state.metadata["lora_config"])
    base_name = canonical_model_name(config.model.base_model)
    lora["base_model_name_or_path"] = base_name  # portable, not this machine's path
    write_adapter(store, key, lora, state.global_best)
    AdapterOrigin(
        base_model=config.model.base_model, base_model_name_or_path=base_name,
        model_fingerprint=info.model_fingerprint, run_name=info.run_name, config_hash=info.config_hash,
        swarm=state.swarm, particle=state.names[state.global_best_particle], iteration=state.global_best_iteration,
        utility=state.global_best_utility,
    ).write(store, f"{key}/{ADAPTER_ORIGIN}")  # fmt: skip
    return lora


def write_package(
    config: RunConfig, info: RunInfo, run: Store, iteration: int | None = None, swarm: str = GENERATOR_SWARM
) -> BenchmarkManifest:
    """Write the benchmark package of the checkpoint after ``iteration`` completed iterations (default: the
    newest) and return its manifest (also ``package.json``, written last).

    Raises:
        RuntimeError: the run has no completed iteration.
        ValueError: ``iteration`` is not between 1 and the iterations completed.
    """
    check_stop()
    completed = completed_iterations(run)
    if completed == 0:
        raise RuntimeError(f"{run.root}: no completed iteration to export")
    k = completed if iteration is None else iteration
    if not 1 <= k <= completed:
        raise ValueError(
            f"{run.root}: --iteration must be between 1 and {completed} (iterations completed), got {k}"
        )
    folder = run.child(package_key(k))
    # Writing again (another export of this checkpoint) replaces the package: manifest first, so a reader
    # never takes a half-written folder for a package; stored evaluations stay (keyed by the items' version).
    folder.remove(MANIFEST)
    for name in folder.list():
        if name != EVALUATIONS:
            folder.remove(name)
    state = load_swarm_state(run, swarm_key(swarm, k))
    best = state.names[state.global_best_particle]
    lora = write_global_best(config, info, folder, "adapter", state)
    base_name = lora["base_model_name_or_path"]

    task = load_run_task(config, info)
    if config.export.answers == "reference-model":  # a bad reference model fails before any sampling
        spec = parse_model_spec(config.export.reference_model or config.model.base_model)
        check_model_spec(spec, config.storage.fsspec_options(), "export.reference_model")
        spec_identity(spec, config.storage.fsspec_options())
    got, shortfall = collect_items(config, info, task, best, (lora, state.global_best), k)
    kept = got.rows[: config.export.items]
    surplus = len(got.rows) - len(kept)
    texts = [r.item for r in kept]
    answers: list[str | None] = [None] * len(kept)
    failures: list[str | None] = [None] * len(kept)
    reference_model = None
    if config.export.answers == "reference-model" and kept:
        answers, failures, reference_model = _reference_answers(config, texts)
    items = [
        BenchmarkItem(
            id=item_id(r.item),
            item=r.item,
            generator=best,
            iteration=state.global_best_iteration,
            call=r.call,
            index=i,
            seed=config.seed,
            run_name=info.run_name,
            config_hash=info.config_hash,
            objective=config.scoring.objective,
            base_model=base_name,
            base_model_fingerprint=info.model_fingerprint,
            reference_answer=answers[i],
            reference_answer_failure=failures[i],
            reference_answer_by=f"model-written: {reference_model}" if answers[i] is not None else None,
        )  # fmt: skip
        for i, r in enumerate(kept)
    ]
    rows = [it.model_dump() for it in items]
    folder.write_jsonl("items.jsonl", rows)
    folder.write_parquet("items.parquet", pd.DataFrame(rows, columns=list(BenchmarkItem.model_fields)))
    folder.write_jsonl("copies.jsonl", [c.model_dump() for c in got.copies])
    tests = _test_items(config, task)
    folder.write_jsonl("test.jsonl", tests)
    folder.write_text("run_config.yaml", yaml.safe_dump(config.public_dict(), sort_keys=False))
    files = {
        "items": "items.jsonl", "items_parquet": "items.parquet", "copies": "copies.jsonl", "test": "test.jsonl",
        "adapter": "adapter", "run_config": "run_config.yaml", "card": "README.md",
    }  # fmt: skip
    task_name = harness_task_name(info.run_name)
    if any(a is not None for a in answers):
        description = (
            f"dataswarms benchmark {info.run_name} ({config.scoring.objective}), model-written answers"
        )
        files.update(write_lm_eval_task(folder, "lm_eval", task_name, items, description=description))
        files.update(write_inspect_task(folder, ".", task_name, items, description=description))
    counts = got.counts
    version = hashlib.sha256(folder.read_bytes("items.jsonl")).hexdigest()[:12]
    manifest = BenchmarkManifest(
        name=info.run_name, version=version, created=now(), run_name=info.run_name, run_url=run.root,
        config_hash=info.config_hash, checkpoint_iteration=k, generator=best,
        generator_iteration=state.global_best_iteration, utility=state.global_best_utility, task=info.task_name,
        task_source=config.task.source, task_hash=info.task_hash, task_licence=config.task.licence or task.licence,
        domain=task.domain, objective=config.scoring.objective, judge=config.judge.name,
        dev_judge=config.judge.dev_name, base_model=base_name, base_model_fingerprint=info.model_fingerprint,
        seed=config.seed,
        counts=PackageCounts(
            asked=config.export.items, written=len(items), calls=got.calls,
            extra_calls=got.calls - math.ceil(config.export.items / config.generation.items_written),
            max_extra_calls=config.export.max_extra_calls, requested=counts.requested,
            parse_failures=counts.parse_failures, duplicates=counts.duplicates, copies=counts.copies,
            surplus=surplus, shortfall=shortfall,
        ),
        answers=config.export.answers, reference_model=reference_model,
        reference_answer_failures=sum(f is not None for f in failures), test_items=len(tests),
        copies_excluded=len(got.copies), files=files,
    )  # fmt: skip
    folder.write_text("README.md", dataset_card(manifest, items, got.copies))
    manifest.write(folder, MANIFEST)
    return manifest
