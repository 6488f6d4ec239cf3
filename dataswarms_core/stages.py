"""The stages of a search, each reading and writing the run's store (used by the Prefect tasks).

Run layout under ``<storage.root>/<run_name>``::

    config.yaml, run.json                  the configuration and what it resolved to
    checkpoint.json                        the newest complete checkpoint (written last each iteration)
    progress.json                          the stage in progress
    reference_scores.json                  test takers' scores on real dev items (novelty only)
    swarm/iter_NNNN/                       swarm state ready for evaluation at iteration NNNN
    iterations/iter_NNNN/replies.jsonl     each generator call's raw reply, with parsed/missing counts
    iterations/iter_NNNN/items.jsonl       items written by each generator
    iterations/iter_NNNN/synthesis.json    counts (parse failures, duplicates) and timings
    iterations/iter_NNNN/answers.parquet   every test taker's answer and its judge score
    iterations/iter_NNNN/scoring.json      score matrix, utilities, judge failures, timings
    iterations/iter_NNNN/pso.json          what the swarm update did
    export/...                             see ``export.py``
    summary.json

Trained seed generators and test takers live in ``<storage.root>/_cache/<kind>/<key>/`` where the key
hashes everything they depend on, so another run with the same data and settings reuses them.
Every stage is a function of (config, run info, store contents): stages pass URLs and keys, never tensors.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from .config import RunConfig, config_hash
from .data import Task, load_task
from .errors import DataError, StorageError
from .seeding import derive_seed
from .storage import Store, join

SWARM_DIR = "swarm"
ITER_DIR = "iterations"


def swarm_key(iteration: int) -> str:
    """Key of the swarm checkpoint ready for evaluation at ``iteration``."""
    return f"{SWARM_DIR}/iter_{iteration:04d}"


def iter_key(iteration: int, name: str = "") -> str:
    """Key of a per-iteration artifact."""
    return f"{ITER_DIR}/iter_{iteration:04d}" + (f"/{name}" if name else "")


def default_run_name(config: RunConfig, flow_run_id: str | None = None) -> str:
    """``<task>-<objective>-<UTC yyyymmdd-HHMMSS>``, or ``<task>-<objective>-<flow run id prefix>`` inside a
    flow run (so every retry of that flow run finds the same run folder). The task part is the task file's
    name reduced to letters, digits and ``-`` (always a valid run name)."""
    import re

    stem = config.task.source.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    task = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:60] or "task"
    stamp = flow_run_id.split("-")[0] if flow_run_id else datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{task}-{config.scoring.objective}-{stamp}"[:128]


def write_progress(config: RunConfig, stage: str, iteration: int | None = None, **extra: Any) -> None:
    """Write ``progress.json`` at the run root: the stage in progress (read by the CLI's progress display)."""
    run_store(config).write_json(
        "progress.json",
        {"stage": stage, "iteration": iteration, "max_iterations": config.pso.max_iterations, **extra},
    )


def run_store(config: RunConfig) -> Store:
    """The store of this run: ``<storage.root>/<run_name>`` (``run_name`` must be set)."""
    if not config.run_name:
        raise ValueError("run_name must be set before the run store is opened")
    return Store(join(config.storage.root, config.run_name), config.storage.fsspec_options())


def cache_store(config: RunConfig, *parts: str) -> Store:
    """The shared cache of trained adapters: ``<storage.root>/_cache/...``."""
    return Store(join(config.storage.root, "_cache", *parts), config.storage.fsspec_options())


def load_run_task(config: RunConfig, info: dict[str, Any]) -> Task:
    """Load the run's task and check it is the file the run started with.

    Raises:
        DataError: the file changed since the run started (its hash differs).
    """
    task = load_task(
        config.task.source,
        config.task.domain,
        config.storage.options_for(config.task.source),
        config.task.max_dev_items,
    )
    if task.content_hash != info["task_hash"]:
        raise DataError(
            f"{config.task.source}: the file changed since the run started (hash differs); start a new run"
        )
    return task


# -- preparation -------------------------------------------------------------------------------------------
def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted fields whose values differ between two public config dicts, as ``"field: old → new"``.

    ``storage.*`` is ignored: where a run is stored (and how it is reached) does not change its results.
    """
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if not k.startswith("storage."))
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def preflight(config: RunConfig, resume: bool = False) -> None:
    """Check the inputs a run needs before anything starts (fast; converts and trains nothing): the task
    file, the base model, the run folder, extra test-taker adapter folders, endpoint API-key variables and
    the realistic corpus.

    Raises:
        DataError / ModelError / StorageError / ConfigError: the first problem found, in one line.
    """
    import os

    import fsspec

    from .errors import ConfigError
    from .models import check_model, check_target_modules, pick_device

    task = load_task(
        config.task.source,
        config.task.domain,
        config.storage.options_for(config.task.source),
        config.task.max_dev_items,
    )
    g, k = config.generation, config.seed_generators.n_generators
    need = max(k, g.items_shown + g.items_written)
    if len(task.dev) < need:
        raise DataError(
            f"{config.task.source}: {len(task.dev)} dev items, but {k} seed generators and "
            f"{g.items_shown} shown + {g.items_written} written items per call need at least {need}"
        )
    check_model(config.model.base_model)
    pick_device(config.model.device)
    for where, lora in (
        ("seed_generators.lora", config.seed_generators.lora),
        ("test_takers.lora", config.test_takers.lora),
    ):
        check_target_modules(config.model.base_model, list(lora.target_modules), f"{where}.target_modules")
    try:
        fs, path = fsspec.core.url_to_fs(config.storage.root, **config.storage.fsspec_options())
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"storage.root {config.storage.root!r}: {str(exc).splitlines()[0]}") from None
    if "file" in fs.protocol and Path(path).exists() and not Path(path).is_dir():
        raise ConfigError(f"storage.root {config.storage.root!r}: is a file, expected a folder")
    if config.run_name and not resume and run_store(config).exists("run.json"):
        store = run_store(config)
        raise StorageError(
            f"{store.root}: a run of this name exists already; resume it (dataswarms resume {store.root}) "
            "or choose another --run-name"
        )
    for spec in config.test_takers.extra:
        if spec.adapter is not None and not Store(
            spec.adapter, config.storage.options_for(spec.adapter)
        ).exists("adapter_config.json"):
            raise ConfigError(
                f"test_takers.extra {spec.name}: {spec.adapter} is not a PEFT adapter folder (no adapter_config.json)"
            )
    endpoints = [(f"test_takers.extra {t.name}", t.endpoint) for t in config.test_takers.extra if t.endpoint]
    if config.scoring.judge_endpoint is not None:
        endpoints.append(("scoring.judge_endpoint", config.scoring.judge_endpoint))
    for where, endpoint in endpoints:
        if endpoint.api_key_env and not os.environ.get(endpoint.api_key_env):
            raise ConfigError(
                f"{where}: environment variable {endpoint.api_key_env} (api_key_env) is not set"
            )
    if "realistic" in config.scoring.components:
        load_task(
            config.scoring.realistic_corpus,
            storage_options=config.storage.options_for(config.scoring.realistic_corpus),
        )


def prepare_run(
    config: RunConfig, resume: bool = False, force: bool = False, flow_run_id: str | None = None
) -> dict[str, Any]:
    """Start a run folder, or check an existing one before resuming it.

    New run: resolve the base model (converting the built-in GGUF once), load the task, write
    ``config.yaml`` and ``run.json``. Resume: the stored configuration and task file must match (else
    :class:`ConfigMismatchError` / :class:`DataError` naming the differences, unless ``force``, which
    records the new configuration and the forced changes in ``run.json``). A retry of the flow run that
    created the folder (same ``flow_run_id``) resumes it; any other flow run needs ``resume``.

    Returns:
        Run info: ``run_name``, ``run_url``, ``model_path``, ``model_fingerprint``, ``task_name``,
        ``task_hash``, ``domain``, ``n_dev``, ``n_test``, ``config_hash``, ``created``.

    Raises:
        StorageError: the run folder already holds a run and ``resume`` is false.
        ConfigMismatchError: resuming with another configuration without ``force``.
        ModelError / DataError: from model resolution and task loading.
    """
    from .errors import ConfigMismatchError
    from .models import model_fingerprint, resolve_model

    store = run_store(config)
    task_options = config.storage.options_for(config.task.source)
    if store.exists("run.json"):
        info = store.read_json("run.json")
        own_retry = flow_run_id is not None and info.get("flow_run_id") == flow_run_id
        if not resume and not own_retry:
            raise StorageError(
                f"{store.root}: a run of this name exists already; resume it (dataswarms resume {store.root}) "
                "or choose another --run-name"
            )
        stored = yaml.safe_load(store.read_text("config.yaml"))
        changes = config_differences(stored, config.public_dict())
        if changes and not force:
            raise ConfigMismatchError(
                f"{store.root}: the configuration differs from the checkpointed run in "
                f"{'; '.join(changes)} — resume with the original configuration, or pass --force"
            )
        task = load_task(config.task.source, config.task.domain, task_options, config.task.max_dev_items)
        if task.content_hash != info["task_hash"] and not force:
            raise DataError(
                f"{config.task.source}: the task file changed since the run started (hash differs); pass --force to continue anyway"
            )
        model_path = resolve_model(config.model.base_model)  # this machine's copy
        if model_fingerprint(model_path) != info["model_fingerprint"]:
            if not force:
                raise ConfigMismatchError(
                    f"{store.root}: the base model differs from the checkpointed run's ({model_path} has another "
                    "config or weights); resume with the same model, or pass --force"
                )
            changes = [*changes, "base model"]
            info["model_fingerprint"] = model_fingerprint(model_path)
        info["model_path"] = str(model_path)
        if changes or task.content_hash != info["task_hash"]:
            info.setdefault("forced_changes", []).extend(changes or ["task file"])
            info["task_hash"] = task.content_hash
            info["config_hash"] = config_hash(config.public_dict())
            store.write_text("config.yaml", yaml.safe_dump(config.public_dict(), sort_keys=False))
        info["resumes"] = int(info.get("resumes", 0)) + 1
        store.write_json("run.json", info)
        return info
    task = load_task(config.task.source, config.task.domain, task_options, config.task.max_dev_items)
    model_path = resolve_model(config.model.base_model)
    info = {
        "run_name": config.run_name,
        "run_url": store.root,
        "model_path": str(model_path),
        "model_fingerprint": model_fingerprint(model_path),
        "task_name": task.name,
        "task_hash": task.content_hash,
        "domain": task.domain,
        "n_dev": len(task.dev),
        "n_test": len(task.test),
        "config_hash": config_hash(config.public_dict()),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "flow_run_id": flow_run_id,
    }
    store.write_text("config.yaml", yaml.safe_dump(config.public_dict(), sort_keys=False))
    store.write_json("run.json", info)
    return info


CHECKPOINT_POINTER = "checkpoint.json"


def write_checkpoint_pointer(run: Store, iteration: int, stopped: str | None) -> dict[str, Any]:
    """Point at the newest complete swarm checkpoint. Written last, after the checkpoint and the iteration's
    artifacts, so a reader (a resumed run) never follows it to a half-written checkpoint."""
    pointer = {
        "iteration": iteration,
        "swarm": swarm_key(iteration),
        "stopped": stopped,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    run.write_json(CHECKPOINT_POINTER, pointer)
    return pointer


def read_checkpoint_pointer(run: Store) -> dict[str, Any] | None:
    """The newest complete checkpoint (``{"iteration", "swarm", "stopped"}``), or None before the first."""
    return run.read_json(CHECKPOINT_POINTER) if run.exists(CHECKPOINT_POINTER) else None


# -- adapters ------------------------------------------------------------------------------------------------
def adapters_cache_key(config: RunConfig, info: dict[str, Any], kind: str) -> str:
    """Hash of everything a kind of trained adapters depends on (data, base model, settings, seed)."""
    section = config.seed_generators if kind == "seed_generators" else config.test_takers
    extra = (
        {"shown": config.generation.items_shown, "written": config.generation.items_written}
        if kind == "seed_generators"
        else {
            "n_generators": config.seed_generators.n_generators,
            "embedding": config.seed_generators.embedding,
        }
    )
    return config_hash(
        {
            "kind": kind,
            "section": section.model_dump(mode="json"),
            "extra": extra,
            "seed": config.seed,
            "task": info["task_hash"],
            "domain": info["domain"],
            "model": info["model_fingerprint"],
            "dtype": config.model.dtype,
        }
    )


def _clusters(config: RunConfig, task: Task) -> Any:
    from .sft import cluster_inputs, embed

    need = config.generation.items_shown + config.generation.items_written
    vectors = embed(task.dev["input"].tolist(), config.seed_generators.embedding)
    return cluster_inputs(vectors, config.seed_generators.n_generators, config.seed, need)


def train_seed_generators(config: RunConfig, info: dict[str, Any], dest: Store) -> dict[str, Any]:
    """Cluster the dev inputs and train one generator adapter per cluster into ``dest`` (docs/method.md §1).

    Returns:
        The manifest (``dest/manifest.json``): adapters ``g0..g{K-1}`` with URLs and losses. When ``dest``
        already holds a complete set (its manifest is written last), that manifest is returned and nothing
        is trained: ``dest`` is keyed by :func:`adapters_cache_key`, so its content is what training would give.
    """
    import random

    if dest.exists("manifest.json"):
        return dest.read_json("manifest.json")

    from .sft import generator_examples, train_adapters

    task = load_run_task(config, info)
    clusters = _clusters(config, task)
    sg, gen = config.seed_generators, config.generation
    inputs = task.dev["input"].tolist()
    names = [f"g{i}" for i in range(sg.n_generators)]
    example_sets = [
        generator_examples(
            inputs,
            pool,
            sg.steps * sg.batch_size,
            gen.items_shown,
            gen.items_written,
            task.domain,
            random.Random(derive_seed(config.seed, "seed-generator-examples", i)),
        )  # fmt: skip
        for i, pool in enumerate(clusters.pools)
    ]
    dest.write_json(
        "clusters.json",
        {
            "sizes": [clusters.labels.count(c) for c in range(sg.n_generators)],
            "topped_up": clusters.topped_up,
        },
    )
    manifest = train_adapters(
        "seed_generators",
        names, example_sets, dest, model_path=Path(info["model_path"]), lora=sg.lora,
        steps=sg.steps, batch_size=sg.batch_size, learning_rate=sg.learning_rate, seed=config.seed,
        dtype=config.model.dtype, device=config.model.device, base_model_name=config.model.base_model,
        on_start=lambda name, i, n: write_progress(config, "seed-generators", detail=f"{name} ({i + 1}/{n})"),
    )  # fmt: skip
    return manifest


def train_test_takers(config: RunConfig, info: dict[str, Any], dest: Store) -> dict[str, Any]:
    """Train ``test_takers.n_adapters`` LoRA test takers, adapter j on the input→output pairs of cluster j
    (mod K), into ``dest``. With zero adapters the manifest lists none and nothing is trained; a complete
    ``dest`` is reused as in :func:`train_seed_generators`."""
    import random

    if dest.exists("manifest.json"):
        return dest.read_json("manifest.json")

    from .sft import answer_examples, train_adapters

    tt = config.test_takers
    if tt.n_adapters == 0:
        manifest = {"kind": "test_takers", "adapters": {}}
        dest.write_json("manifest.json", manifest)
        return manifest
    task = load_run_task(config, info)
    if task.dev["output"].isna().all():
        raise DataError(
            f"{config.task.source}: test_takers.n_adapters > 0 needs an 'output' (reference answer) in dev items"
        )
    clusters = _clusters(config, task)
    inputs, outputs = task.dev["input"].tolist(), task.dev["output"].tolist()
    names = [f"t{j}" for j in range(tt.n_adapters)]
    example_sets = [
        answer_examples(
            inputs,
            outputs,
            clusters.pools[j % len(clusters.pools)],
            tt.steps * tt.batch_size,
            random.Random(derive_seed(config.seed, "test-taker-examples", j)),
        )  # fmt: skip
        for j in range(tt.n_adapters)
    ]
    return train_adapters(
        "test_takers",
        names, example_sets, dest, model_path=Path(info["model_path"]), lora=tt.lora,
        steps=tt.steps, batch_size=tt.batch_size, learning_rate=tt.learning_rate, seed=config.seed,
        dtype=config.model.dtype, device=config.model.device, base_model_name=config.model.base_model,
        on_start=lambda name, i, n: write_progress(config, "test-takers", detail=f"{name} ({i + 1}/{n})"),
    )  # fmt: skip


def _adapter_key(store: Store, url: str) -> tuple[Store, str]:
    base, name = url.rsplit("/", 1)
    return Store(base, store.storage_options), name


def init_swarm_checkpoint(config: RunConfig, seed_manifest: dict[str, Any], run: Store) -> dict[str, Any]:
    """Build the initial swarm from the seed generators and write checkpoint ``swarm/iter_0000`` and the
    checkpoint pointer — or, when the run already has a pointer (a resumed run), return it unchanged.

    Returns:
        The checkpoint pointer: ``{"iteration", "swarm", "stopped", "written"}``.

    Raises:
        InvalidParticleError: the seed adapters' LoRA configurations or tensors disagree.
    """
    from .adapters import check_same_lora_config, read_adapter
    from .pso import init_swarm, save_swarm_state

    pointer = read_checkpoint_pointer(run)
    if pointer is not None:
        return pointer

    names, configs, positions = [], {}, []
    for name, entry in seed_manifest["adapters"].items():
        parent, key = _adapter_key(run, entry["url"])
        cfg, tensors = read_adapter(parent, key)
        names.append(name)
        if isinstance(cfg.get("target_modules"), list):
            cfg = {**cfg, "target_modules": sorted(cfg["target_modules"])}  # order carries no meaning
        configs[name] = cfg
        positions.append(tensors)
    check_same_lora_config(configs)
    state = init_swarm(
        positions, config.pso, config.seed, names=names, metadata={"lora_config": configs[names[0]]}
    )
    save_swarm_state(state, run, swarm_key(0))
    return write_checkpoint_pointer(run, 0, None)


# -- per iteration -------------------------------------------------------------------------------------------
def _load_backend(info: dict[str, Any], config: RunConfig, adapters: dict[str, Any]) -> tuple[Any, Any]:
    from .adapters import attach_adapters
    from .generation import HFBackend
    from .models import load_base_model

    model, tokenizer = load_base_model(Path(info["model_path"]), config.model.dtype, config.model.device)
    if adapters:
        model = attach_adapters(model, adapters)
    return HFBackend(model, tokenizer), tokenizer


def synthesize(config: RunConfig, info: dict[str, Any], run: Store, iteration: int) -> dict[str, Any]:
    """Every generator (particle) of checkpoint ``swarm/iter_k`` writes items; writes ``replies.jsonl``,
    ``items.jsonl`` and ``synthesis.json``.

    Returns:
        The synthesis report: ``counts`` per generator, ``items``, ``parse_failures``, ``seconds``.
    """
    from .pso import load_swarm_state
    from .synthesis import counts_as_dict, sample_items

    t0 = time.perf_counter()
    task = load_run_task(config, info)
    state = load_swarm_state(run, swarm_key(iteration))
    lora = state.metadata["lora_config"]
    backend, _ = _load_backend(
        info, config, {n: (lora, x) for n, x in zip(state.names, state.positions, strict=True)}
    )
    g = config.generation
    replies: list[dict[str, Any]] = []
    rows, counts = sample_items(
        backend, task.dev["input"].tolist(), task.domain, state.names, items_shown=g.items_shown,
        items_written=g.items_written, calls=g.calls_per_generator, max_new_tokens=g.max_new_tokens,
        temperature=g.temperature, top_p=g.top_p, batch_size=g.batch_size, run_seed=config.seed, iteration=iteration,
        replies_out=replies,
    )  # fmt: skip
    run.write_jsonl(iter_key(iteration, "replies.jsonl"), replies)
    run.write_jsonl(iter_key(iteration, "items.jsonl"), rows)
    counts_d = counts_as_dict(counts)
    report = {
        "iteration": iteration,
        "counts": counts_d,
        "items": len(rows),
        "parse_failures": sum(c["parse_failures"] for c in counts_d.values()),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    run.write_json(iter_key(iteration, "synthesis.json"), report)
    return report


def build_test_takers(
    config: RunConfig, info: dict[str, Any], run: Store, takers_manifest: dict[str, Any]
) -> tuple[list[Any], Any, Any]:
    """Load the test takers: the base model, trained adapters and extra adapter folders share one local
    backend; each endpoint model gets an OpenAI-compatible backend.

    Returns:
        ``(test_takers, local_backend, tokenizer)``; the local backend also serves local judges.
    """
    from .adapters import read_adapter
    from .openai_backend import OpenAIBackend
    from .scoring import TestTaker

    adapters = {}
    for name, entry in takers_manifest["adapters"].items():
        parent, key = _adapter_key(run, entry["url"])
        adapters[name] = read_adapter(parent, key)
    for spec in config.test_takers.extra:
        if spec.adapter is not None:
            parent, key = _adapter_key(
                Store(spec.adapter, config.storage.options_for(spec.adapter)), Store(spec.adapter).root
            )
            adapters[spec.name] = read_adapter(parent, key)
    local, tokenizer = _load_backend(info, config, adapters)
    takers = [TestTaker("base", local)] if config.test_takers.include_base else []
    takers += [TestTaker(name, local, name) for name in takers_manifest["adapters"]]
    for spec in config.test_takers.extra:
        if spec.adapter is not None:
            takers.append(TestTaker(spec.name, local, spec.name))
        else:
            takers.append(TestTaker(spec.name, OpenAIBackend(spec.endpoint, name=spec.name)))
    return takers, local, tokenizer


def build_judge(config: RunConfig, kind: str, local: Any, tokenizer: Any, domain: str, stage: str) -> Any:
    """A judge of the given kind: expected-score and generative on the local base model (or the
    configured judge endpoint for generative), reference without a model."""
    from .judges import ExpectedScoreJudge, GenerativeJudge, ReferenceJudge
    from .openai_backend import OpenAIBackend

    s = config.scoring
    if kind == "reference":
        return ReferenceJudge()
    if kind == "expected-score":
        return ExpectedScoreJudge(local, tokenizer, domain, batch_size=s.batch_size)
    backend = OpenAIBackend(s.judge_endpoint) if s.judge_endpoint is not None else local
    return GenerativeJudge(
        backend, domain, retries=s.judge_retries, max_new_tokens=s.judge_max_new_tokens,
        seed=derive_seed(config.seed, stage), batch_size=s.batch_size,
    )  # fmt: skip


def _answer_settings(config: RunConfig) -> dict[str, Any]:
    s = config.scoring
    return {
        "max_new_tokens": s.answer_max_new_tokens,
        "temperature": s.answer_temperature,
        "batch_size": s.batch_size,
    }


REFERENCE_SCORES = "reference_scores.json"


def score_reference(
    config: RunConfig, info: dict[str, Any], run: Store, takers_manifest: dict[str, Any]
) -> dict[str, Any]:
    """Test takers answer ``scoring.novelty_dev_items`` real dev items once per run; the dev judge scores
    them; ``reference_scores.json`` holds each test taker's mean (novelty's q, docs/method.md §4).

    Returns the existing file's content when the run already has it.

    Raises:
        ScoringError: a test taker none of whose dev answers could be judged.
    """
    import random

    from .errors import ScoringError
    from .scoring import answer, judge_answers

    if run.exists(REFERENCE_SCORES):
        return run.read_json(REFERENCE_SCORES)
    t0 = time.perf_counter()
    task = load_run_task(config, info)
    n = min(config.scoring.novelty_dev_items, len(task.dev))
    picked = sorted(
        random.Random(derive_seed(config.seed, "reference-items")).sample(range(len(task.dev)), n)
    )
    items = [{"item": task.dev["input"][i], "output": task.dev["output"][i], "dev_index": i} for i in picked]
    takers, local, tokenizer = build_test_takers(config, info, run, takers_manifest)
    rows = answer(items, takers, **_answer_settings(config), run_seed=config.seed, stage="reference-answers")
    judge = build_judge(config, config.scoring.dev_judge, local, tokenizer, task.domain, "reference-judge")
    judge_answers(judge, rows, with_references=True)
    scores, failures = {}, {}
    for t in takers:
        got = [r["score"] for r in rows if r["test_taker"] == t.name and r["score"] is not None]
        failures[t.name] = sum(1 for r in rows if r["test_taker"] == t.name and r["score"] is None)
        if not got:
            raise ScoringError(
                f"test taker {t.name}: none of its {n} answers on real dev items could be judged ({judge.name} judge)"
            )
        scores[t.name] = sum(got) / len(got)
    result = {
        "test_takers": [t.name for t in takers],
        "scores": scores,
        "judge": judge.name,
        "items": n,
        "judge_failures": failures,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    run.write_json(REFERENCE_SCORES, result)
    return result


def _corpus(config: RunConfig) -> Any:
    from .objectives import BM25Corpus

    corpus = load_task(
        config.scoring.realistic_corpus,
        storage_options=config.storage.options_for(config.scoring.realistic_corpus),
    )
    return BM25Corpus(corpus.dev["input"].tolist(), config.scoring.realistic_neighbours)


def score(
    config: RunConfig, info: dict[str, Any], run: Store, iteration: int, takers_manifest: dict[str, Any]
) -> dict[str, Any]:
    """Test takers answer iteration k's items, the judge scores them, the objectives give utilities;
    writes ``answers.parquet`` and ``scoring.json``.

    Returns:
        The scoring report: ``score_matrix`` (G × T, None where empty), ``utilities``, ``components``
        (every objective computed), ``empty_generators``, ``judge_failures`` (total, per generator, per
        test taker), ``seconds``.
    """
    import pandas as pd

    from .pso import load_swarm_state
    from .scoring import answer, compute_objectives, judge_answers, score_matrix

    t0 = time.perf_counter()
    task = load_run_task(config, info)
    names = load_swarm_state(run, swarm_key(iteration)).names
    items = run.read_jsonl(iter_key(iteration, "items.jsonl"))
    takers, local, tokenizer = build_test_takers(config, info, run, takers_manifest)
    s = config.scoring
    rows = answer(
        items, takers, **_answer_settings(config), run_seed=config.seed, stage="answers", iteration=iteration
    )
    judge = build_judge(config, s.judge, local, tokenizer, task.domain, f"judge-{iteration}")
    judge_answers(judge, rows)
    taker_names = [t.name for t in takers]
    frame = pd.DataFrame(
        [
            {
                **{
                    k: r[k]
                    for k in ("generator", "call", "index", "test_taker", "query", "response", "score")
                },
                "judge_detail": json.dumps(r["judge_detail"]),
            }
            for r in rows
        ],  # fmt: skip
        columns=["generator", "call", "index", "test_taker", "query", "response", "score", "judge_detail"],
    )
    frame.insert(0, "iteration", iteration)
    run.write_parquet(iter_key(iteration, "answers.parquet"), frame)
    components = list(
        dict.fromkeys(["difficulty", *(["separation"] if len(takers) > 1 else []), *s.components])
    )
    reference = None
    if "novelty" in components:
        ref = run.read_json(REFERENCE_SCORES)
        reference = [ref["scores"][t] for t in taker_names]
    result = compute_objectives(
        rows, names, taker_names, objective=s.objective, components=components, weights=s.composite_weights,
        normalise=s.normalise, on_empty_generator=s.on_empty_generator, reference=reference,
        n_sets=s.consistency_sets, items=[[r["item"] for r in items if r["generator"] == g] for g in names],
        corpus=_corpus(config) if "realistic" in components else None,
    )  # fmt: skip
    m, _, failed = score_matrix(rows, names, taker_names)
    masses = [r["judge_detail"]["mass"] for r in rows if "mass" in r["judge_detail"]]
    report = {
        "iteration": iteration,
        "objective": s.objective,
        "judge": judge.name,
        "generators": names,
        "test_takers": taker_names,
        "score_matrix": [[None if v != v else float(v) for v in row] for row in m.tolist()],
        "utilities": result.utilities,
        "components": result.components,
        "undefined": result.undefined,
        "empty_generators": result.empty_generators,
        "judge_failures": int(failed.sum()),
        "judge_failures_per_generator": dict(zip(names, failed.sum(axis=1).tolist(), strict=True)),
        "judge_failures_per_test_taker": dict(zip(taker_names, failed.sum(axis=0).tolist(), strict=True)),
        "answers": len(rows),
        "mean_judge_mass": sum(masses) / len(masses) if masses else None,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    run.write_json(iter_key(iteration, "scoring.json"), report)
    return report


def pso_step(config: RunConfig, run: Store, iteration: int) -> dict[str, Any]:
    """Record iteration k's utilities, move the swarm and write checkpoint ``swarm/iter_{k+1}``
    (docs/method.md §5); writes ``pso.json``.

    Returns:
        The update report (see :class:`~dataswarms_core.pso.UpdateReport`) plus ``global_best_utility`` and
        ``checkpoint`` (URL).
    """
    from dataclasses import asdict

    from .pso import load_swarm_state, save_swarm_state, update_swarm

    t0 = time.perf_counter()
    state = load_swarm_state(run, swarm_key(iteration))
    utilities = run.read_json(iter_key(iteration, "scoring.json"))["utilities"]
    report = asdict(update_swarm(state, utilities, config.pso))
    url = save_swarm_state(state, run, swarm_key(iteration + 1))
    report.update(
        {
            "global_best_utility": state.global_best_utility,
            "global_best_particle": state.names[state.global_best_particle],
            "global_worst_utility": state.global_worst_utility,
            "personal_best_utility": state.personal_best_utility,
            "next_step_length": state.step_length,
            "checkpoint": url,
            "seconds": round(time.perf_counter() - t0, 3),
        }
    )
    run.write_json(iter_key(iteration, "pso.json"), report)
    write_checkpoint_pointer(run, iteration + 1, state.stopped)  # last: the iteration is complete
    return report
