"""Artifact and checkpoint storage over fsspec: a local folder by default, ``s3://`` via s3fs.

Everything a search writes goes through a :class:`Store` rooted at a run URL (``./runs/NAME``,
``file:///abs/path``, ``s3://bucket/prefix``). Writes of single objects are atomic for readers: locally the
data goes to a temporary file that is renamed into place; on object stores a PUT is atomic per object.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .errors import StorageError


def join(url: str, *parts: str) -> str:
    """Join ``parts`` onto ``url`` with ``/`` (works for local paths and ``scheme://`` URLs)."""
    out = url.rstrip("/")
    for part in parts:
        part = str(part).strip("/")
        if part:
            out = f"{out}/{part}"
    return out


def is_local(url: str) -> bool:
    """True when ``url`` is a local path or a ``file://`` URL."""
    return "://" not in url or url.startswith("file://")


class Store:
    """A folder of artifacts addressed by relative keys, on any fsspec file system.

    Args:
        root: the folder, as a local path or URL. Local paths are made absolute.
        storage_options: keyword arguments for the fsspec file system (for s3fs e.g.
            ``{"client_kwargs": {"endpoint_url": "http://127.0.0.1:5000"}}``). Never logged.

    The object is small and picklable (it holds only ``root`` and the options), so Prefect tasks can
    receive it; the file system is created on first use.
    """

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None) -> None:
        if is_local(root):
            root = str(Path(root.removeprefix("file://")).expanduser().absolute())
        self.root = root.rstrip("/") or "/"
        self.storage_options = dict(storage_options or {})
        self._fs: fsspec.AbstractFileSystem | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "storage_options": self.storage_options, "_fs": None}

    def __repr__(self) -> str:  # options may hold credentials: never shown
        return f"Store({self.root!r})"

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec file system of ``root`` (created once)."""
        if self._fs is None:
            self._fs, _ = fsspec.core.url_to_fs(self.root, **self.storage_options)
        return self._fs

    @property
    def local(self) -> bool:
        """True when the store is on the local file system."""
        return isinstance(self.fs, LocalFileSystem)

    def url(self, *parts: str) -> str:
        """The full URL of the key ``parts`` (joined with ``/``)."""
        return join(self.root, *parts)

    def child(self, *parts: str) -> Store:
        """A store rooted at the sub-folder ``parts``, sharing the options."""
        return Store(self.url(*parts), self.storage_options)

    def _path(self, key: str) -> str:
        return self.fs._strip_protocol(self.url(key)) if key else self.fs._strip_protocol(self.root)

    # -- reading -------------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        """True when the object or folder ``key`` exists."""
        return self.fs.exists(self._path(key))

    def read_bytes(self, key: str) -> bytes:
        """The content of ``key``. Raises :class:`StorageError` naming the URL when it is missing."""
        try:
            return self.fs.cat_file(self._path(key))
        except FileNotFoundError as exc:
            raise StorageError(f"{self.url(key)}: not found") from exc

    def read_text(self, key: str) -> str:
        """The UTF-8 text of ``key``."""
        return self.read_bytes(key).decode("utf-8")

    def read_json(self, key: str) -> Any:
        """The parsed JSON of ``key``. Raises :class:`StorageError` on invalid JSON."""
        try:
            return json.loads(self.read_text(key))
        except json.JSONDecodeError as exc:
            raise StorageError(f"{self.url(key)}: invalid JSON ({exc})") from exc

    def list(self, key: str = "") -> list[str]:
        """Names (not paths) directly under the folder ``key``; empty when it does not exist."""
        path = self._path(key)
        if not self.fs.exists(path):
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(path, detail=False))

    # -- writing -------------------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` to ``key`` atomically (readers see the old object or the new one); return its URL."""
        path = self._path(key)
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        else:
            self.fs.pipe_file(path, data)
        return self.url(key)

    def write_text(self, key: str, text: str) -> str:
        """Write UTF-8 ``text`` to ``key``; return its URL."""
        return self.write_bytes(key, text.encode("utf-8"))

    def write_json(self, key: str, obj: Any) -> str:
        """Write ``obj`` as indented JSON to ``key``; return its URL."""
        return self.write_text(key, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")

    def write_jsonl(self, key: str, rows: list[dict[str, Any]]) -> str:
        """Write ``rows`` as JSON Lines to ``key``; return its URL."""
        text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
        return self.write_text(key, text)

    def read_jsonl(self, key: str) -> list[dict[str, Any]]:
        """The rows of the JSON Lines object ``key``."""
        return [json.loads(line) for line in self.read_text(key).splitlines() if line.strip()]

    def write_parquet(self, key: str, frame: Any) -> str:
        """Write a pandas DataFrame as Parquet to ``key``; return its URL."""
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return self.write_bytes(key, buf.getvalue())

    def read_parquet(self, key: str) -> Any:
        """Read the Parquet object ``key`` into a pandas DataFrame."""
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.read_bytes(key)))

    def write_csv(self, key: str, frame: Any) -> str:
        """Write a pandas DataFrame as CSV to ``key``; return its URL."""
        return self.write_text(key, frame.to_csv(index=False))

    def upload_dir(self, local_dir: str | os.PathLike[str], key: str) -> str:
        """Copy the files of a local folder (recursively) under ``key``; return the folder's URL."""
        copy_folder(Store(str(local_dir)), "", self, key)
        return self.url(key)

    @contextlib.contextmanager
    def local_dir(self, key: str) -> Iterator[Path]:
        """Yield a local folder holding the files under ``key``: the folder itself when the store is
        local, else a temporary download removed on exit."""
        if self.local:
            path = Path(self._path(key))
            if not path.is_dir():
                raise StorageError(f"{self.url(key)}: folder not found")
            yield path
            return
        with tempfile.TemporaryDirectory(prefix="dataswarms-") as tmp:
            copy_folder(self, key, Store(tmp), "")
            yield Path(tmp)

    def remove(self, key: str) -> None:
        """Delete ``key`` (an object or a folder, recursively) if it exists."""
        path = self._path(key)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)


def copy_folder(
    src: Store, src_key: str, dst: Store, dst_key: str, exclude: tuple[str, ...] = ()
) -> list[str]:
    """Copy every file under ``src_key`` of ``src`` (recursively, in sorted order) to ``dst_key`` of ``dst``,
    across any two fsspec file systems (local ↔ S3, S3 → S3, ...). Each file is written with
    :meth:`Store.write_bytes` (atomic on local storage). Entries of ``src_key`` named in ``exclude`` (files or
    folders directly under it) are left out.

    Returns:
        The keys written, relative to ``dst``.

    Raises:
        StorageError: ``src_key`` is not an existing folder (naming its URL).
    """
    root = src._path(src_key).rstrip("/")
    if not src.fs.isdir(root):
        raise StorageError(f"{src.url(src_key)}: folder not found")
    written = []
    for path in sorted(src.fs.find(root)):
        rel = path[len(root) :].lstrip("/")
        if rel.split("/", 1)[0] in exclude:
            continue
        written.append(posixpath.join(dst_key, rel) if dst_key else rel)
        dst.write_bytes(written[-1], src.fs.cat_file(path))
    return written
