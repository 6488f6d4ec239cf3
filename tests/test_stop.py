"""Stop requests (dataswarms_core/stop.py) survive a library that swallows the interrupt; SFT stops on them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from dataswarms_core import stop
from dataswarms_core.config import LoraSettings
from dataswarms_core.sft import generator_examples, train_lora


@pytest.fixture(autouse=True)
def _no_stop_left():
    stop.clear_stop()
    yield
    stop.clear_stop()


def _signal_swallowed(signum: int) -> bool:
    """A signal that lands inside a library's bare ``except:`` (datasets' "couldn't be hashed" path).

    Returns:
        True once the interrupt the handler raised was swallowed.
    """
    try:
        os.kill(os.getpid(), signum)
        time.sleep(10)  # the handler raises at once; this only bounds a failure
    except BaseException:  # noqa: BLE001 - what such a library does
        return True
    return False


def test_request_check_and_clear():
    assert stop.stop_requested() is None
    stop.check_stop()  # nothing pending: no-op
    stop.request_stop(signal.SIGTERM)
    stop.request_stop(signal.SIGINT)  # the first request's signal is kept
    assert stop.stop_requested() == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt) as info:
        stop.check_stop()
    assert isinstance(info.value, stop.StopRequested) and info.value.signum == signal.SIGTERM
    with pytest.raises(stop.StopRequested):
        stop.check_stop()  # still pending: every later check raises too
    assert stop.exit_code() == 143
    assert stop.exit_code(KeyboardInterrupt()) == 143  # a plain interrupt while SIGTERM is recorded
    assert stop.exit_code(stop.StopRequested(signal.SIGINT)) == 130
    stop.clear_stop()
    assert stop.stop_requested() is None and stop.exit_code() == 130
    stop.check_stop()


def test_a_request_from_another_thread_is_seen_by_the_next_check():
    worker = threading.Thread(target=stop.request_stop, args=(signal.SIGTERM,))
    worker.start()
    worker.join()
    with pytest.raises(stop.StopRequested):
        stop.check_stop()


def test_a_swallowed_signal_still_stops_at_the_next_check_and_the_block_restores_everything():
    before = {s: signal.getsignal(s) for s in stop.STOP_SIGNALS}
    with pytest.raises(stop.StopRequested) as info:
        with stop.stop_signals():
            assert _signal_swallowed(signal.SIGTERM)  # the interrupt raised by the handler is lost here ...
            assert stop.stop_requested() == signal.SIGTERM  # ... but not the request
            stop.check_stop()  # the next stage boundary
            raise AssertionError("check_stop did not raise")
    assert info.value.signum == signal.SIGTERM and stop.exit_code(info.value) == 143
    assert {s: signal.getsignal(s) for s in stop.STOP_SIGNALS} == before
    assert stop.stop_requested() is None  # forgotten when the outermost block ends


def test_nested_blocks_keep_the_request_until_the_outermost_ends():
    with stop.stop_signals():
        with pytest.raises(KeyboardInterrupt):
            with stop.stop_signals((signal.SIGINT,)):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(10)  # the handler raises at once; this only bounds a failure
        assert stop.stop_requested() == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) is stop._on_signal  # the outer handler is back
    assert stop.stop_requested() is None


def test_an_ignored_signal_stays_ignored_and_threads_install_nothing():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with stop.stop_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.2)
            assert stop.stop_requested() is None
    finally:
        signal.signal(signal.SIGHUP, previous)
    seen = []

    def in_thread():
        with stop.stop_signals():
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    assert seen == [before]


def test_a_second_signal_runs_the_callbacks_newest_first_and_exits_at_once():
    """The first SIGTERM is swallowed and the code keeps working; a second signal (here Ctrl-C) exits with
    128 + its number right away, after the forced-exit callbacks."""
    code = textwrap.dedent(
        """
        import os, signal, sys, time
        from dataswarms_core import stop

        def say(text):
            return lambda signum: os.write(1, f"{text} {signum}\\n".encode())

        with stop.stop_signals(), stop.at_forced_exit(say("outer")), stop.at_forced_exit(say("inner")):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
            except BaseException:
                pass
            os.write(1, b"swallowed\\n")
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(10)
            os.write(1, b"still running\\n")
        """
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["swallowed", "inner 2", "outer 2"]
    assert time.monotonic() - started < 30


LORA = LoraSettings(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])


def _examples():
    inputs = [f"How many apples does person {i} have?" for i in range(12)]
    return generator_examples(inputs, range(12), 12, 2, 2, "math", random.Random(0))


def test_sft_stops_at_the_next_step_once_a_stop_is_requested(tiny_model_dir, tmp_path, monkeypatch):
    """A stop requested during step 1 (here by the callback itself, as a signal or another thread would)
    ends training right after that step: StopRequested, no adapter saved, far from max_steps."""
    check = type(stop_callback_instance())
    real_step_end = check.on_step_end
    steps = []

    def on_step_end(self, args, state, control, **kwargs):
        steps.append(state.global_step)
        if state.global_step == 1:
            stop.request_stop(signal.SIGTERM)
        return real_step_end(self, args, state, control, **kwargs)

    monkeypatch.setattr(check, "on_step_end", on_step_end)
    out = tmp_path / "ad"
    with pytest.raises(stop.StopRequested) as info:
        train_lora(
            tiny_model_dir, _examples(), LORA, steps=6, batch_size=2, learning_rate=1e-3, seed=0, output_dir=out,
        )  # fmt: skip
    assert info.value.signum == signal.SIGTERM
    assert steps == [1]  # stopped after the first of 6 steps
    assert not out.exists() or not any(out.iterdir())


def test_sft_does_not_start_when_the_signal_was_swallowed_during_data_preparation(
    tiny_model_dir, tmp_path, monkeypatch
):
    """The reported fault: SIGTERM lands while the SFT data set is prepared, inside a library's bare
    ``except:``. Training used to run on; now it stops before the first step."""
    import datasets

    real = datasets.Dataset.from_list.__func__
    swallowed = []

    def from_list(cls, *args, **kwargs):
        swallowed.append(_signal_swallowed(signal.SIGTERM))
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "from_list", classmethod(from_list))
    check = type(stop_callback_instance())
    steps = []
    real_begin = check.on_step_begin

    def on_step_begin(self, args, state, control, **kwargs):
        steps.append(state.global_step)
        return real_begin(self, args, state, control, **kwargs)

    monkeypatch.setattr(check, "on_step_begin", on_step_begin)
    out = tmp_path / "ad"
    with stop.stop_signals(), pytest.raises(stop.StopRequested) as info:
        train_lora(
            tiny_model_dir, _examples(), LORA, steps=6, batch_size=2, learning_rate=1e-3, seed=0, output_dir=out,
        )  # fmt: skip
    assert swallowed == [True] and info.value.signum == signal.SIGTERM and steps == []
    assert not out.exists() or not any(out.iterdir())


def test_sft_without_a_stop_trains_all_steps(tiny_model_dir, tmp_path):
    stats = train_lora(
        tiny_model_dir, _examples(), LORA, steps=2, batch_size=2, learning_rate=1e-3, seed=0, output_dir=tmp_path,
    )  # fmt: skip
    assert stats["steps"] == 2


def stop_callback_instance():
    from dataswarms_core.sft import stop_callback

    return stop_callback()


def test_reclaim_puts_the_stop_handler_back_where_a_library_replaced_it():
    """Prefect's flow engine installs its own SIGTERM handler for a flow run (it raises, records nothing)."""

    def library_handler(signum, frame):
        raise KeyboardInterrupt

    stop.reclaim_signals()  # outside a block: nothing to reclaim
    assert signal.getsignal(signal.SIGTERM) is not stop._on_signal
    with stop.stop_signals((signal.SIGTERM,)):
        previous = signal.signal(signal.SIGTERM, library_handler)
        stop.reclaim_signals()
        assert signal.getsignal(signal.SIGTERM) is stop._on_signal
        assert _signal_swallowed(signal.SIGTERM) and stop.stop_requested() == signal.SIGTERM
        signal.signal(signal.SIGTERM, previous)  # the library restores what it found
