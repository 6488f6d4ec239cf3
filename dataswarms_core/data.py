"""Task data: real items with ``input`` (query) and optional ``output`` (reference answer).

Accepted files (local path or fsspec URL):
- JSON ``{"name": ..., "domain": ..., "dev": [...], "test": [...]}`` (the layout of ``shared/data``), or a
  JSON list of records (all dev);
- JSON Lines, CSV or Parquet with an ``input`` column, optional ``output``, optional ``split`` (``dev`` /
  ``test``; rows without it are dev).
Text files (JSON, JSONL, CSV) are UTF-8, with or without a byte-order mark, or UTF-16 / UTF-32 with a
byte-order mark; LF, CRLF or CR line endings. Other bytes are refused naming the file and the byte offset.
Built-in: ``gsm8k-quickstart`` (300 dev / 100 test GSM8K items, MIT licence, see
``builtin/LICENSE-GSM8K``), ``truthfulqa-quickstart`` (300 dev / 88 test TruthfulQA items, Apache-2.0, see
``builtin/LICENSE-TRUTHFULQA``) and ``user-queries-sample`` (500 real questions, the default corpus of the
realistic objective, see ``builtin/LICENSE-USER-QUERIES``).
"""

from __future__ import annotations

import codecs
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
    "truthfulqa-quickstart": "truthfulqa_quickstart.json",
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
        dev_duplicates: dev items dropped because their ``input`` repeats an earlier dev item's exactly.
        licence: the JSON's ``license`` (or ``licence``) field, else its ``source`` text, else "not stated".
    """

    name: str
    domain: str
    dev: pd.DataFrame
    test: pd.DataFrame
    source: str
    content_hash: str
    dev_duplicates: int = 0
    licence: str = "not stated"


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


# Byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)


def _decode(raw: bytes, source: str) -> str:
    """The text of a JSON, JSONL or CSV file: UTF-8 (a UTF-8 byte-order mark is dropped), or UTF-16 / UTF-32
    when the file starts with their byte-order mark. Line endings are left to the readers (all accept LF,
    CRLF and CR).

    Raises:
        DataError: a byte sequence that is not valid in the encoding (naming the byte offset in the file and
            its line), or NUL bytes in UTF-8 text (UTF-16 without a byte-order mark).
    """
    codec, label, skip = "utf-8", "UTF-8", 0
    for bom, name, what in _BOMS:
        if raw.startswith(bom):
            codec, label, skip = name, what, len(bom)
            break
    try:
        text = raw[skip:].decode(codec)
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = len(_lines(raw[skip:offset].decode(codec, errors="replace")))
        named = " (the encoding its byte-order mark names)" if codec != "utf-8" else ""
        raise DataError(
            f"{source}: not valid {label} text{named}: byte {raw[offset]:#04x} at offset {offset} "
            f"(line {line}); save the file as UTF-8"
        ) from None
    if codec == "utf-8" and "\x00" in text:
        offset = raw.index(b"\x00")
        raise DataError(
            f"{source}: NUL byte at offset {offset}: not UTF-8 text (UTF-16 without a byte-order mark?); "
            "save the file as UTF-8"
        )
    return text


def _lines(text: str) -> list[str]:
    """Lines split at LF, CRLF or CR only: ``str.splitlines`` would also split at U+2028, U+2029, NEL and
    other characters that JSON allows unescaped inside strings."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _read_jsonl(text: str, source: str) -> pd.DataFrame:
    records = []
    for number, line in enumerate(_lines(text), start=1):
        line = line.removeprefix("\ufeff")  # concatenated files: another file's UTF-8 byte-order mark
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


def _is_unicode(text: str) -> bool:
    """False for text holding lone surrogates (JSON ``"\\ud83d"``), which cannot be written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    for column, values in (("input", inputs), ("output", outputs)):
        for row, value in enumerate(values):
            if value is not None and not _is_unicode(value):
                raise DataError(
                    f"{source}: {where} row {row} has an '{column}' that is not valid Unicode (a lone "
                    "surrogate such as a JSON \\ud83d escape without its pair)"
                )
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
        DataError: missing file, unknown format, text that is not UTF-8 (nor UTF-16/32 with a byte-order
            mark; naming the byte offset), unparsable content, no ``input`` column, empty, non-text or
            non-Unicode inputs, or no dev items; the message names the file and the problem.
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
            data = json.loads(_decode(raw, source))
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
                frame = _read_jsonl(_decode(raw, source), source)
            elif fmt == "csv":
                frame = pd.read_csv(
                    io.StringIO(_decode(raw, source)), dtype=str, keep_default_na=False, na_values=[""]
                )
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
    repeated = dev["input"].duplicated(keep="first")
    dev_duplicates = int(repeated.sum())
    dev = dev[~repeated].reset_index(drop=True)  # an item repeated is one item: clusters and pools need distinct ones
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
        dev_duplicates=dev_duplicates,
        licence=str(meta.get("license") or meta.get("licence") or meta.get("source") or "not stated"),
    )
