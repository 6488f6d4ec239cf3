"""Stop requests that a library cannot lose: a process-wide flag set by the first SIGINT/SIGTERM/SIGHUP.

A signal handler raises :class:`KeyboardInterrupt` in whatever code runs at that moment. Some libraries catch
it (a bare ``except:``, e.g. ``datasets`` while hashing a function it "couldn't hash"), and the work then goes
on as if nothing happened. So the first signal does two things: it records the request here and raises
:class:`StopRequested` (a ``KeyboardInterrupt``) as before. Code that can stop cleanly calls
:func:`check_stop` at its boundaries (each stage, each SFT step), which raises again while a stop is pending.
A second signal stops at once: the :func:`at_forced_exit` callbacks run (stop a server, print a line), then
``os._exit(128 + signum)``.

The command installs the handlers with :func:`stop_signals`; library code only calls :func:`check_stop`. No
Prefect here: the core never imports it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

#: The signals :func:`stop_signals` handles by default: Ctrl-C, ``kill``/schedulers, a closed terminal.
STOP_SIGNALS: tuple[int, ...] = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)


class StopRequested(KeyboardInterrupt):
    """A stop was requested (Ctrl-C, ``kill``, a scheduler): handled like Ctrl-C everywhere.

    Attributes:
        signum: The signal that requested it (``signal.SIGINT`` for Ctrl-C or a plain request).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(f"signal {signum}")
        self.signum = int(signum)


# A plain assignment under the GIL: no lock, since the signal handler runs in the main thread between two
# bytecodes and a lock held there by the interrupted code would deadlock it.
_requested: int | None = None
_blocks: list[tuple[int, ...]] = []  # the signals of each active stop_signals block, outermost first
_forced_exit: list[Callable[[int], None]] = []


def request_stop(signum: int = signal.SIGINT) -> None:
    """Record a stop request (any thread). The first request's signal is kept.

    Args:
        signum: The signal it stands for; decides the exit code ``128 + signum``.
    """
    global _requested
    if _requested is None:
        _requested = int(signum)


def stop_requested() -> int | None:
    """The signal number of the pending stop request, or None when none was requested."""
    return _requested


def check_stop() -> None:
    """Raise :class:`StopRequested` if a stop was requested; call it where work can stop cleanly.

    Raises:
        StopRequested: A stop is pending (even if the first ``KeyboardInterrupt`` was swallowed).
    """
    signum = _requested
    if signum is not None:
        raise StopRequested(signum)


def clear_stop() -> None:
    """Forget a pending stop request (done when the outermost :func:`stop_signals` block ends)."""
    global _requested
    _requested = None


def exit_code(exc: BaseException | None = None) -> int:
    """The shell's exit code for a stopped command: ``128 + signum`` (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).

    Args:
        exc: The interrupt that stopped the command, if any; its ``signum`` wins over the recorded request.

    Returns:
        ``128 +`` the signal of ``exc``, else of the recorded request, else SIGINT.
    """
    signum = getattr(exc, "signum", None) or _requested or signal.SIGINT
    return 128 + int(signum)


def _force_exit(signum: int) -> None:
    for callback in reversed(_forced_exit):  # the innermost (e.g. stop the server) first
        try:
            callback(signum)
        except BaseException:  # noqa: BLE001, S110 - exiting now whatever a callback does
            pass
    os._exit(128 + signum)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _requested is not None:  # the second signal (or one after a request): stop at once
        _force_exit(signum)
    request_stop(signum)
    raise StopRequested(signum)


@contextlib.contextmanager
def at_forced_exit(callback: Callable[[int], None]) -> Iterator[None]:
    """Within the block, run ``callback(signum)`` if a second signal forces the process to exit.

    Callbacks run newest first, each at most once, from the signal handler: keep them short and make them
    not wait (send a signal, write a line with ``os.write``). Exceptions they raise are ignored.

    Args:
        callback: Called with the forcing signal's number.

    Returns:
        A context manager; the callback is removed on exit.
    """
    _forced_exit.append(callback)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            _forced_exit.remove(callback)


@contextlib.contextmanager
def stop_signals(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, the first of ``signals`` records a stop request and raises :class:`StopRequested`;
    the next one runs the :func:`at_forced_exit` callbacks and exits with ``128 + signum``.

    A signal the process ignores (``nohup``, a shell's background job) stays ignored. Only the main thread can
    install handlers; elsewhere this does nothing. Blocks nest; when the outermost ends, the previous handlers
    are back and the stop request is forgotten.

    Args:
        signals: Signal numbers to handle (default SIGINT, SIGTERM, SIGHUP).

    Returns:
        A context manager.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in signals:
        handler = signal.getsignal(signum)
        if handler is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _on_signal)
    _blocks.append(tuple(previous))
    try:
        yield
    finally:
        _blocks.pop()
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if not _blocks:
            clear_stop()


def reclaim_signals() -> None:
    """Put the stop handlers back where code inside a :func:`stop_signals` block replaced them.

    Prefect's flow engine, for one, swaps in its own SIGTERM handler for the flow run (it raises
    ``TerminationSignal`` and records nothing, so a library that swallows it loses the stop). Call this once
    such code has installed its handler (e.g. from a flow's ``on_running`` hook); that code restores ours
    when it ends. Does nothing outside a block or off the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in {s for block in _blocks for s in block}:
        if signal.getsignal(signum) is not _on_signal:
            signal.signal(signum, _on_signal)
