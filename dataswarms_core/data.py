"""Task data: real items with ``input`` (query) and optional ``output`` (reference answer).

Accepted files (local path or fsspec URL):
- JSON ``{"name": ..., "domain": ..., "dev": [...], "test": [...]}`` (the layout of ``shared/data``), or a
  JSON list of records (all dev);
- JSON Lines, CSV or Parquet with an ``input`` column, optional ``output``, optional ``split`` (``dev`` /
  ``test``; rows without it are dev).
Built-in: ``gsm8k-quickstart`` (300 dev / 100 test GSM8K items, MIT licence, see
``builtin/LICENSE-GSM8K``) and ``user-queries-sample`` (500 real questions, the default corpus of the
realistic objective, see ``builtin/LICENSE-USER-QUERIES``).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import fsspec
import pandas as pd

from .errors import DataError

BUILTIN_TASKS = {
    "gsm8k-quickstart": "gsm8k_quickstart.json",
    "user-queries-sample": "user_queries_sample.jsonl",  # corpus of the realistic objective
}
GENERIC_DOMAIN = "the same topic as the examples"
_FORMATS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class Task:
    """A loaded task.

    Attributes:
        name: short name (file stem or the JSON's ``name``).
        domain: phrase used in prompts (e.g. "grade-school math word problems").
        dev: DataFrame with ``input`` (str) and ``output`` (str or None) columns; the pool generators see.
        test: same columns; held-out real items (may be empty).
        source: where it was read from.
        content_hash: SHA-256 (hex) of the file's bytes, for cache keys.
    """

    name: str
    domain: str
    dev: pd.DataFrame
    test: pd.DataFrame
    source: str
    content_hash: str


def _read_bytes(source: str, storage_options: dict[str, Any] | None) -> bytes:
    if source in BUILTIN_TASKS:
        return resources.files("dataswarms_core.builtin").joinpath(BUILTIN_TASKS[source]).read_bytes()
    try:
        with fsspec.open(source, "rb", **(storage_options or {})) as fh:
            return fh.read()
    except FileNotFoundError:
        raise DataError(
            f"{source}: task file not found (built-in tasks: {', '.join(BUILTIN_TASKS)})"
        ) from None
    except IsADirectoryError:
        raise DataError(f"{source}: is a folder, expected a JSON, JSONL, CSV or Parquet file") from None
    except Exception as exc:  # noqa: BLE001 - unknown protocol, no credentials, endpoint down: one line
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise DataError(f"{source}: cannot read the file ({type(exc).__name__}: {detail})") from None


def _read_jsonl(raw: bytes, source: str) -> pd.DataFrame:
    records = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{source}: line {number} is not a JSON object with an 'input' field")
        records.append(record)
    return pd.DataFrame(records, dtype=object)


def _frame(records: Any, source: str, where: str) -> pd.DataFrame:
    if not isinstance(records, list):
        raise DataError(f"{source}: {where} must be a list of items, got {type(records).__name__}")
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise DataError(f"{source}: {where}[{bad}] must be an object with an 'input' field")
    return pd.DataFrame(records, dtype=object)


def _clean(frame: pd.DataFrame, source: str, where: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame({"input": pd.Series([], dtype=object), "output": pd.Series([], dtype=object)})
    if "input" not in frame.columns:
        raise DataError(
            f"{source}: {where} has no 'input' column (columns: {', '.join(map(str, frame.columns))})"
        )
    bad = [i for i, v in enumerate(frame["input"]) if not isinstance(v, str) or not v.strip()]
    if bad:
        raise DataError(
            f"{source}: {where} row {bad[0]} has an empty or non-text 'input' ({len(bad)} such rows)"
        )
    inputs = [v.strip() for v in frame["input"]]
    if "output" in frame.columns:
        outputs = [
            None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v) for v in frame["output"]
        ]
    else:
        outputs = [None] * len(inputs)
    # object dtype keeps None as None (pandas' string inference would turn it into NaN)
    return pd.DataFrame(
        {"input": pd.Series(inputs, dtype=object), "output": pd.Series(outputs, dtype=object)}
    )


def load_task(
    source: str,
    domain: str | None = None,
    storage_options: dict[str, Any] | None = None,
    max_dev_items: int | None = None,
) -> Task:
    """Read a task file.

    Args:
        source: a built-in task name or a path/URL ending in .json, .jsonl, .csv or .parquet.
        domain: domain phrase; default the JSON's ``domain`` field, else a generic phrase.
        storage_options: fsspec options for remote URLs.
        max_dev_items: keep only the first this many dev items.

    Returns:
        A :class:`Task` with at least one dev item.

    Raises:
        DataError: missing file, unknown format, unparsable content, no ``input`` column, empty or
            non-text inputs, or no dev items; the message names the file and the problem.
    """
    raw = _read_bytes(source, storage_options)
    name_hint = source.rstrip("/").rsplit("/", 1)[-1]
    file_name = BUILTIN_TASKS.get(source, name_hint)
    suffix = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        raise DataError(
            f"{source}: unknown file type {suffix or '(none)'!r}; expected .json, .jsonl, .csv or .parquet"
        )
    meta: dict[str, Any] = {}
    try:
        if fmt == "json":
            data = json.loads(raw.decode("utf-8"))
            if isinstance(data, dict):
                if "dev" not in data:
                    raise DataError(
                        f'{source}: JSON object has no \'dev\' list (expected {{"dev": [...], "test": [...]}})'
                    )
                meta = {k: v for k, v in data.items() if k not in ("dev", "test")}
                dev = _frame(data["dev"], source, "dev")
                test = _frame(data.get("test", []), source, "test")
            else:
                dev, test = _frame(data, source, "items"), pd.DataFrame()
        else:
            if fmt == "jsonl":
                frame = _read_jsonl(raw, source)
            elif fmt == "csv":
                frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, na_values=[""])
            else:
                frame = pd.read_parquet(io.BytesIO(raw))
            if "split" in frame.columns:
                split = frame["split"].fillna("dev").astype(str)
                unknown = sorted(set(split) - {"dev", "test"})
                if unknown:
                    raise DataError(
                        f"{source}: column 'split' has values {unknown[:3]}, expected 'dev' or 'test'"
                    )
                dev, test = frame[split == "dev"], frame[split == "test"]
            else:
                dev, test = frame, pd.DataFrame()
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise DataError(
            f"{source}: cannot parse as {fmt.upper()} ({str(exc).splitlines()[0][:200]})"
        ) from None
    dev = _clean(dev, source, "dev")
    test = _clean(test, source, "test")
    if max_dev_items is not None:
        dev = dev.iloc[:max_dev_items].reset_index(drop=True)
    if dev.empty:
        raise DataError(f"{source}: no dev items (need at least one item with an 'input')")
    name = str(meta.get("name") or name_hint.rsplit(".", 1)[0])
    return Task(
        name=name,
        domain=domain or str(meta.get("domain") or GENERIC_DOMAIN),
        dev=dev,
        test=test,
        source=source,
        content_hash=hashlib.sha256(raw).hexdigest(),
    )
