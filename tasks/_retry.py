"""Retry policy shared by the tasks: transient I/O faults only (storage, model endpoints), with backoff."""

from __future__ import annotations

from typing import Any

from dataswarms_core.errors import is_transient_error

RETRIES = 3
RETRY_DELAYS = [2, 10, 30]  # seconds


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry when the failure is a transient fault (connection refused,
    timeout, throttling, 5xx), never for bad input (data, configuration, invalid particles)."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - classified below
        return is_transient_error(exc)
    return False


RETRY = {"retries": RETRIES, "retry_delay_seconds": RETRY_DELAYS, "retry_condition_fn": retry_transient}
