"""Setting a run up: up-front checks (preflight), starting the run folder, and the checks before a resume."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import fsspec
import yaml

from ..config import RunConfig, config_hash
from ..data import Task, load_task
from ..errors import ConfigError, ConfigMismatchError, DataError, StorageError
from ..models import (
    check_model,
    check_target_modules,
    model_fingerprint,
    pick_device,
    ready_model_path,
    resolve_model,
)
from ..objectives import objective_needs
from ..records import RunInfo
from ..stop import check_stop
from ..storage import Store
from .checks import (
    CONFIG_FILE,
    RUN_INFO,
    check_lengths,
    check_run_folder,
    check_storage,
    config_differences,
    run_exists_message,
)
from .layout import now, run_store


def load_run_task(config: RunConfig, info: RunInfo | None = None) -> Task:
    """Load the run's task; with ``info``, check it is the file the run started with and leave out the dev
    items the run excluded as too long (``info.dev_excluded``).

    Raises:
        DataError: the file is unreadable, or changed since the run started (its hash differs).
    """
    task = load_task(
        config.task.source,
        config.task.domain,
        config.storage.options_for(config.task.source),
        config.task.max_dev_items,
    )
    if info is not None and task.content_hash != info.task_hash:
        raise DataError(
            f"{config.task.source}: the file changed since the run started (hash differs); start a new run"
        )
    if info is not None and info.dev_excluded:
        dev = task.dev.drop(index=info.dev_excluded).reset_index(drop=True)
        task = dataclasses.replace(task, dev=dev)
    return task


def _check_adversarial_task(config: RunConfig, task: Task) -> None:
    """Adversarial mode's needs of the task (docs/method.md §6): a pool no larger than the dev split, and a
    test split with reference answers for the generalisation curve.

    Raises:
        DataError: naming the file and what was expected.
    """
    source, a = config.task.source, config.adversarial
    if a.pool_size > len(task.dev):
        raise DataError(
            f"{source}: adversarial.pool_size {a.pool_size} is larger than the dev split ({len(task.dev)} items); "
            f"use at most {len(task.dev)}"
        )
    if len(task.test) == 0:
        raise DataError(
            f"{source}: no test split; adversarial mode scores each iteration's best test taker on held-out test "
            "items (adversarial.test_items), so the task needs a 'test' split"
        )
    references = [o for o in task.test["output"].tolist() if isinstance(o, str) and o.strip()]
    if not references:
        raise DataError(
            f"{source}: none of the {len(task.test)} test items has an 'output' (reference answer); adversarial "
            "mode scores held-out answers against reference answers"
        )


def preflight(config: RunConfig, resume: bool = False, force: bool = False) -> None:
    """Check the inputs a run needs before anything starts (fast; converts and trains nothing, writes only a
    probe object it removes): the task file, the base model, that ``storage.root`` can be written, the run
    folder (to resume: every file the run will trust, see :func:`~.checks.check_run_folder`), extra
    test-taker adapter folders, endpoint API-key variables and the realistic corpus.

    Raises:
        DataError / ModelError / StorageError / FormatError / ConfigError: the first problem found, in one line.
    """
    task = load_run_task(config)
    g, k = config.generation, config.seed_generators.n_generators
    need = max(k, g.items_shown + g.items_written)
    if len(task.dev) < need:
        repeated = f" distinct ({task.dev_duplicates} repeated items dropped)" if task.dev_duplicates else ""
        raise DataError(
            f"{config.task.source}: {len(task.dev)} dev items{repeated}, but {k} seed generators and "
            f"{g.items_shown} shown + {g.items_written} written items per call need at least {need}"
        )
    if config.mode == "adversarial":
        _check_adversarial_task(config, task)
    check_model(config.model.base_model)
    pick_device(config.model.device)
    if config.model.backend == "vllm":
        from ..vllm_backend import check_vllm_available

        check_vllm_available()
    for where, lora in (
        ("seed_generators.lora", config.seed_generators.lora),
        ("test_takers.lora", config.test_takers.lora),
    ):
        check_target_modules(config.model.base_model, list(lora.target_modules), f"{where}.target_modules")
    try:
        fsspec.core.url_to_fs(config.storage.root, **config.storage.fsspec_options())
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"storage.root {config.storage.root!r}: {str(exc).splitlines()[0]}") from None
    check_storage(config)
    if config.run_name:
        check_run_folder(config, resume=resume, force=force, task_hash=task.content_hash)
    for spec in config.test_takers.extra:
        if spec.adapter is not None and not Store(
            spec.adapter, config.storage.options_for(spec.adapter)
        ).exists("adapter_config.json"):
            raise ConfigError(
                f"test_takers.extra {spec.name}: {spec.adapter} is not a PEFT adapter folder (no adapter_config.json)"
            )
    endpoints = [(f"test_takers.extra {t.name}", t.endpoint) for t in config.test_takers.extra if t.endpoint]
    if config.judge.endpoint is not None:
        endpoints.append(("judge.endpoint", config.judge.endpoint))
    for where, endpoint in endpoints:
        if endpoint.api_key_env and not os.environ.get(endpoint.api_key_env):
            raise ConfigError(
                f"{where}: environment variable {endpoint.api_key_env} (api_key_env) is not set"
            )
    if "corpus" in objective_needs(config.scoring.components):
        load_task(
            config.scoring.realistic_corpus,
            storage_options=config.storage.options_for(config.scoring.realistic_corpus),
        )
    if config.export.answers == "reference-model" and config.export.reference_model:
        from ..model_spec import check_model_spec, parse_model_spec

        spec = parse_model_spec(config.export.reference_model)
        check_model_spec(
            spec, config.storage.options_for(spec.adapter or spec.model), "export.reference_model"
        )
    ready = ready_model_path(config.model.base_model)
    if ready is not None:  # else prepare_run checks the lengths once the built-in model is converted
        check_lengths(config, task, ready)


def _resume_info(
    config: RunConfig, store: Store, flow_run_id: str | None, resume: bool, force: bool
) -> RunInfo:
    """Check an existing run folder before resuming it; record the resume (and forced changes) in ``run.json``."""
    data = store.read_json(RUN_INFO)
    own_retry = flow_run_id is not None and isinstance(data, dict) and data.get("flow_run_id") == flow_run_id
    if not resume and not own_retry:
        raise StorageError(run_exists_message(store))
    info = RunInfo.from_data(data, store.url(RUN_INFO))
    task = load_run_task(config)
    # The checks of preflight again: a flow run can be started (or retried) without the command line.
    check_run_folder(config, resume=True, force=force, task_hash=task.content_hash)
    changes = config_differences(yaml.safe_load(store.read_text(CONFIG_FILE)), config.public_dict())
    model_path = resolve_model(config.model.base_model)  # this machine's copy
    fingerprint = model_fingerprint(model_path)
    if fingerprint != info.model_fingerprint:
        if not force:
            raise ConfigMismatchError(
                f"{store.root}: the base model differs from the checkpointed run's ({model_path} has another "
                "config or weights); resume with the same model, or pass --force"
            )
        changes = [*changes, "base model"]
    update: dict[str, Any] = {
        "model_path": str(model_path),
        "model_fingerprint": fingerprint,
        "resumes": info.resumes + 1,
    }
    if changes or task.content_hash != info.task_hash:
        update["forced_changes"] = [*info.forced_changes, *(changes or ["task file"])]
        update["task_hash"] = task.content_hash
        update["config_hash"] = config_hash(config.public_dict())
        store.write_text(CONFIG_FILE, yaml.safe_dump(config.public_dict(), sort_keys=False))
    info = info.model_copy(update=update)
    info.write(store, RUN_INFO)
    return info


def prepare_run(
    config: RunConfig, resume: bool = False, force: bool = False, flow_run_id: str | None = None
) -> RunInfo:
    """Start a run folder, or check an existing one before resuming it.

    New run: resolve the base model (converting the built-in GGUF once), load the task, write
    ``config.yaml`` and ``run.json``. Resume: the stored configuration and task file must match (else
    :class:`ConfigMismatchError` / :class:`DataError` naming the differences, unless ``force``, which
    records the new configuration and the forced changes in ``run.json``). A retry of the flow run that
    created the folder (same ``flow_run_id``) resumes it; any other flow run needs ``resume``.

    Returns:
        The run's :class:`~dataswarms_core.records.RunInfo` (also in ``run.json``).

    Raises:
        StorageError: the run folder already holds a run and ``resume`` is false.
        FormatError: the folder holds a run of another format version.
        ConfigMismatchError: resuming with another configuration without ``force``.
        ModelError / DataError: from model resolution and task loading.
    """
    check_stop()  # a stop requested while a library swallowed the interrupt ends the run here
    store = run_store(config)
    if store.exists(RUN_INFO):
        return _resume_info(config, store, flow_run_id, resume, force)
    task = load_run_task(config)
    model_path = resolve_model(config.model.base_model)
    excluded = check_lengths(config, task, model_path)  # before anything is written
    info = RunInfo(
        run_name=config.run_name or "",
        run_url=store.root,
        model_path=str(model_path),
        model_fingerprint=model_fingerprint(model_path),
        task_name=task.name,
        task_hash=task.content_hash,
        domain=task.domain,
        n_dev=len(task.dev) - len(excluded),
        dev_duplicates=task.dev_duplicates,
        dev_excluded=excluded,
        n_test=len(task.test),
        config_hash=config_hash(config.public_dict()),
        created=now(),
        flow_run_id=flow_run_id,
    )
    store.write_text(CONFIG_FILE, yaml.safe_dump(config.public_dict(), sort_keys=False))
    info.write(store, RUN_INFO)
    return info
