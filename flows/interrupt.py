"""A stop request that outlives a lost ``KeyboardInterrupt``.

The command line's SIGINT/SIGTERM handler raises ``KeyboardInterrupt`` (what Python does for Ctrl-C) and also
records the request here. Should the exception be swallowed on its way up (library code that catches
``BaseException`` and carries on), the search flow still stops at its next stage boundary, where it calls
:func:`check`. Outside the command line nothing sets the request and :func:`check` does nothing.
"""

from __future__ import annotations

import threading
from typing import Any

_requested = threading.Event()
_signal: list[int] = []


def request_stop(signum: int, frame: Any = None) -> None:
    """Signal handler: record the request, then interrupt like Ctrl-C.

    Raises:
        KeyboardInterrupt: always, with the message ``"signal <signum>"``.
    """
    _signal[:] = [signum]
    _requested.set()
    raise KeyboardInterrupt(f"signal {signum}")


def check() -> None:
    """Raise ``KeyboardInterrupt`` when a stop was requested (called by the flow between stages).

    Raises:
        KeyboardInterrupt: a stop was requested, with the message ``"signal <signum>"``.
    """
    if _requested.is_set():
        raise KeyboardInterrupt(f"signal {_signal[0] if _signal else 2}")


def reset() -> None:
    """Forget any earlier request (each command starts clean)."""
    _requested.clear()
    _signal.clear()
