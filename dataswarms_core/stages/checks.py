"""Up-front checks of where a run is stored and of a run folder about to be resumed: each refuses in one line
naming the URL or file and the cause, before any work and without writing to a folder it refuses."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import RunConfig
from ..data import Task
from ..errors import ConfigMismatchError, DataError, StorageError
from ..prompts import generation_messages, judge_messages
from ..pso.state import FORMAT_VERSION as STATE_VERSION
from ..pso.state import STATE_FILE, TENSORS_FILE
from ..records import CheckpointPointer, ReferenceScores, RunInfo
from ..storage import Store
from .layout import CHECKPOINT_POINTER, REFERENCE_SCORES, run_store

RUN_INFO = "run.json"
CONFIG_FILE = "config.yaml"


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


IGNORED_ON_RESUME = ("storage.", "held_out_test_takers")


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted fields whose values differ between two public config dicts, as ``"field: old → new"``.

    ``storage.*`` is ignored: where a run is stored (and how it is reached) does not change its results; so is
    ``held_out_test_takers``, which only the re-measurement after the search uses (docs/method.md §9).
    """
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if not k.startswith(IGNORED_ON_RESUME))
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def storage_cause(exc: BaseException) -> str:
    """A short, secret-free cause of a storage failure: no credentials, unreachable endpoint, no such bucket,
    permission denied, not a folder, or the exception's type and first line."""
    names = {type(e).__name__ for e in _chain(exc)}
    text = " ".join(str(e) for e in _chain(exc))
    if names & {"NoCredentialsError", "PartialCredentialsError"} or "Unable to locate credentials" in text:
        return "no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
    if names & {"InvalidAccessKeyId", "SignatureDoesNotMatch"} or "InvalidAccessKeyId" in text:
        return "credentials refused by the endpoint"
    if "NoSuchBucket" in names or "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return "the bucket does not exist"
    if names & {"EndpointConnectionError", "ConnectionRefusedError", "ConnectTimeoutError", "ClientConnectorError"} or (
        "Could not connect" in text or "Connection refused" in text
    ):
        return "the endpoint cannot be reached"
    if names & {"PermissionError", "AccessDenied"} or "AccessDenied" in text or "Permission denied" in text:
        return "permission denied"
    if names & {"NotADirectoryError", "FileExistsError"}:
        return "not a folder: a part of the path is a file"
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def check_storage(config: RunConfig) -> None:
    """Write and remove a small probe object at ``storage.root`` (the run root's parent).

    Raises:
        StorageError: the root cannot be written, with the URL and the cause (no secret in the message).
    """
    root = Store(config.storage.root, config.storage.fsspec_options())
    key = f".dataswarms-probe-{uuid.uuid4().hex[:12]}"
    if root.local and root.fs.exists(root.root) and not root.fs.isdir(root.root):
        raise StorageError(f"storage.root {root.root}: is a file, expected a folder")
    try:
        root.write_bytes(key, b"dataswarms storage probe\n")
        root.remove(key)
    except Exception as exc:  # noqa: BLE001 - any failure becomes one line naming the URL and the cause
        raise StorageError(f"storage.root {root.root}: cannot write there ({storage_cause(exc)})") from None


def run_exists_message(store: Store) -> str:
    """The one-line refusal for a new run whose folder already holds a run."""
    return (
        f"{store.root}: a run of this name exists already; resume it (dataswarms resume {store.root}) "
        "or choose another --run-name"
    )


def check_run_folder(config: RunConfig, *, resume: bool, force: bool, task_hash: str) -> None:
    """Check the run folder before a run starts: a new run needs a free name; a resumed run needs every file it
    will trust to be readable and of this format version — ``run.json``, ``config.yaml`` (the same
    configuration unless ``force``; never another ``mode``), the task file's hash (unless ``force``),
    ``checkpoint.json`` and the swarm checkpoints and pool it names, ``reference_scores.json``.

    Raises:
        StorageError / FormatError: a file is missing, unreadable, or of another format version (named).
        ConfigMismatchError: the configuration differs (fields named) and ``force`` is off.
        DataError: the task file changed since the run started and ``force`` is off.
    """
    store = run_store(config)
    if not store.exists(RUN_INFO):
        return
    if not resume:
        raise StorageError(run_exists_message(store))
    info = RunInfo.read(store, RUN_INFO)
    try:
        stored = yaml.safe_load(store.read_text(CONFIG_FILE))
    except yaml.YAMLError as exc:
        raise StorageError(f"{store.url(CONFIG_FILE)}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(stored, dict):
        raise StorageError(f"{store.url(CONFIG_FILE)}: not a run configuration")
    stored_mode = stored.get("mode", "data-swarms")
    if stored_mode != config.mode:  # even with force: the checkpoints hold another set of swarms
        raise ConfigMismatchError(
            f"{store.root}: this {stored_mode} run cannot be resumed in {config.mode} mode (its checkpoints hold "
            "other swarms); resume it with mode: " + stored_mode
        )
    changes = config_differences(stored, config.public_dict())
    if changes and not force:
        raise ConfigMismatchError(
            f"{store.root}: the configuration differs from the checkpointed run in "
            f"{'; '.join(changes)} — resume with the original configuration, or pass --force"
        )
    if task_hash != info.task_hash and not force:
        raise DataError(
            f"{config.task.source}: the task file changed since the run started (hash differs); pass --force "
            "to continue anyway"
        )
    if store.exists(CHECKPOINT_POINTER):
        pointer = CheckpointPointer.read(store, CHECKPOINT_POINTER)
        for swarm, key in pointer.swarms.items():
            state = store.read_json(f"{key}/{STATE_FILE}") if store.exists(f"{key}/{STATE_FILE}") else None
            if state is None or not store.exists(f"{key}/{TENSORS_FILE}"):
                raise StorageError(
                    f"{store.url(CHECKPOINT_POINTER)}: names checkpoint {key} of swarm {swarm}, which is missing "
                    f"or incomplete ({STATE_FILE} and {TENSORS_FILE} are needed)"
                )
            version = state.get("format_version") if isinstance(state, dict) else None
            if version != STATE_VERSION:
                raise StorageError(
                    f"{store.url(key)}/{STATE_FILE}: format version {version!r}, this dataswarms reads "
                    f"version {STATE_VERSION}"
                )
        if pointer.pool is not None and not store.exists(f"{pointer.pool}/pool.json"):
            raise StorageError(
                f"{store.url(CHECKPOINT_POINTER)}: names pool {pointer.pool}, which is missing or incomplete "
                "(pool.json and pool.jsonl are needed)"
            )
    if store.exists(REFERENCE_SCORES):
        ReferenceScores.read(store, REFERENCE_SCORES)


@dataclass(frozen=True)
class LengthBudget:
    """How many tokens one item may have so that every prompt of the run fits the model's context.

    Attributes:
        context: the model's context (``max_position_embeddings``), tokens.
        per_item: the largest item length, tokens: the minimum over the generation prompt
            (template + ``items_shown`` items + ``generation.max_new_tokens``), the seed generators' training
            sequences (template + ``items_shown + items_written`` items), and the judge prompt (template +
            item + an answer of ``scoring.answer_max_new_tokens`` + ``judge.max_new_tokens``).
    """

    context: int
    per_item: int


def length_budget(config: RunConfig, tokenizer: Any, context: int, domain: str) -> LengthBudget:
    """The :class:`LengthBudget` of this configuration on a tokenizer with a ``context``-token window."""
    g, s = config.generation, config.scoring

    def tokens(messages: list[dict[str, str]]) -> int:
        return len(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True))

    generation = tokens(generation_messages([""] * g.items_shown, domain, g.items_written))
    judging = tokens(judge_messages("", "", domain))
    per_item = min(
        (context - generation - g.max_new_tokens) // g.items_shown,
        (context - generation) // (g.items_shown + g.items_written),
        context - judging - s.answer_max_new_tokens - config.judge.max_new_tokens,
    )
    return LengthBudget(context, per_item)


def long_dev_items(config: RunConfig, task: Task, model_path: Path) -> tuple[list[int], LengthBudget, list[int]]:
    """The dev items longer than :func:`length_budget` allows on the run's base model.

    Returns:
        ``(indices, budget, lengths)``: positions in ``task.dev`` of the over-long items, the budget, and their
        token lengths.

    Raises:
        DataError: the prompts alone leave no room for an item (the settings do not fit the context).
    """
    from ..models import load_tokenizer

    tokenizer = load_tokenizer(model_path)
    config_json = json.loads((model_path / "config.json").read_text())
    context = int(config_json.get("max_position_embeddings") or tokenizer.model_max_length)
    budget = length_budget(config, tokenizer, context, task.domain)
    if budget.per_item < 1:
        raise DataError(
            f"{config.task.source}: the prompts leave no room for an item in the model's {context}-token "
            "context (lower generation.items_shown, generation.max_new_tokens or scoring.answer_max_new_tokens)"
        )
    lengths = [len(ids) for ids in tokenizer(task.dev["input"].tolist(), add_special_tokens=False)["input_ids"]]
    over = [i for i, n in enumerate(lengths) if n > budget.per_item]
    return over, budget, [lengths[i] for i in over]


def check_lengths(config: RunConfig, task: Task, model_path: Path) -> list[int]:
    """Apply ``task.long_items`` to the over-long dev items (:func:`long_dev_items`).

    Returns:
        The positions to leave out (``exclude``; recorded in ``run.json`` and counted), or [] when none.

    Raises:
        DataError: there are over-long items and ``task.long_items`` is ``refuse`` (naming the longest), or
            too few items are left after excluding them.
    """
    over, budget, lengths = long_dev_items(config, task, model_path)
    if not over:
        return []
    longest = max(range(len(over)), key=lambda j: lengths[j])
    if config.task.long_items == "refuse":
        raise DataError(
            f"{config.task.source}: {len(over)} dev item(s) longer than the {budget.per_item} tokens the prompts "
            f"leave for one item in the model's {budget.context}-token context (dev item {over[longest]} has "
            f"{lengths[longest]} tokens); shorten them, or set task.long_items: exclude to leave them out (counted)"
        )
    g, k = config.generation, config.seed_generators.n_generators
    need = max(k, g.items_shown + g.items_written)
    if len(task.dev) - len(over) < need:
        raise DataError(
            f"{config.task.source}: {len(task.dev) - len(over)} dev items fit the context after excluding "
            f"{len(over)} over-long ones; at least {need} are needed"
        )
    return over
