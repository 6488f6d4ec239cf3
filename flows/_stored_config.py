"""Rebuild a stored run's ``RunConfig`` from ``<run>/config.yaml``: what ``dataswarms resume RUN_URL`` continues.

The run's folder or URL names both where it lives (``storage.root``, its parent) and its ``run_name`` (its
last part), so a run that was moved or copied resumes where it is now. Storage options are never stored
with a run (they may hold credentials); they come from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from dataswarms_core.config import RunConfig
from dataswarms_core.config_files import validation_message
from dataswarms_core.errors import ConfigError, DataSwarmsError, StorageError
from dataswarms_core.records import RunInfo
from dataswarms_core.stages.setup import RUN_INFO
from dataswarms_core.storage import Store


@dataclass(frozen=True)
class StoredRun:
    """A run's configuration as read back from its folder.

    Attributes:
        config: The configuration to resume with (``storage.root`` and ``run_name`` from the URL).
        dropped_options: Names of ``storage.options`` found in the stored file and ignored.
    """

    config: RunConfig
    dropped_options: list[str]


def read_error_message(run_url: str, exc: BaseException) -> str:
    """One line for an unexpected failure to read a run (storage unreachable, bad URL).

    Args:
        run_url: The run's folder or URL as given.
        exc: What was raised.

    Returns:
        ``"<run_url>: cannot read the run (<type>: <first line>)"``.
    """
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{run_url}: cannot read the run ({type(exc).__name__}: {detail})"


def _read(run_url: str, endpoint_url: str | None) -> StoredRun:
    root, _, name = run_url.rstrip("/").rpartition("/")
    probe_options = {"client_kwargs": {"endpoint_url": endpoint_url}} if endpoint_url else {}
    store = Store(run_url.rstrip("/"), probe_options)
    if not store.exists("config.yaml"):
        raise StorageError(f"{store.root}: no run here (config.yaml not found)")
    if not store.exists(RUN_INFO):
        raise StorageError(f"{store.root}: no run here ({RUN_INFO} not found)")
    RunInfo.read(store, RUN_INFO)  # a run of another format version is refused before its config is read
    stored: Any = yaml.safe_load(store.read_text("config.yaml"))
    if not isinstance(stored, dict) or not isinstance(stored.get("storage"), dict):
        raise ConfigError(f"{store.url('config.yaml')}: not a dataswarms run configuration")
    dropped = sorted(stored["storage"].get("options") or {})
    stored["storage"]["options"] = {}  # never stored; credentials come from the environment
    stored["storage"]["root"] = root or "."
    if endpoint_url:
        stored["storage"]["endpoint_url"] = endpoint_url
    return StoredRun(RunConfig.model_validate({**stored, "run_name": name}), dropped)


def load_stored_config(run_url: str, endpoint_url: str | None = None) -> StoredRun:
    """Read ``<run_url>/config.yaml`` and rebuild the run's configuration for resuming it.

    Args:
        run_url: The run's folder or URL, e.g. ``./runs/NAME`` or ``s3://bucket/runs/NAME``.
        endpoint_url: S3-compatible endpoint to use instead of the stored ``storage.endpoint_url``.

    Returns:
        The :class:`StoredRun`.

    Raises:
        StorageError: No run there (no ``config.yaml``), or the storage cannot be read.
        FormatError: The run was written by another format version (e.g. a one-swarm run of dataswarms 0.1).
        ConfigError: The file is not a run configuration, not valid YAML, or fails validation.
    """
    try:
        return _read(run_url, endpoint_url)
    except DataSwarmsError:
        raise
    except ValidationError as exc:
        raise ConfigError(validation_message(f"{run_url}/config.yaml", exc)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{run_url}/config.yaml: invalid YAML ({str(exc).splitlines()[0]})") from exc
    except Exception as exc:  # noqa: BLE001 - storage unreachable, bad URL: one line, not a traceback
        raise StorageError(read_error_message(run_url, exc)) from exc
