"""Shared fixtures: tiny random models, a Prefect test harness (once per session), a moto S3 server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("DO_NOT_TRACK", "1")

# The tests send Ctrl-C (SIGINT) to the code under test and to the commands they start. A session started as a
# shell script's background job inherits SIGINT *ignored* (POSIX), and dataswarms rightly keeps an ignored
# signal ignored; so the session takes Python's usual Ctrl-C handler, which its child processes see as the
# default disposition.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _prefect_logging_on_the_session_streams():
    """Import Prefect once at the start, so its console log handler binds to the streams of the whole session,
    not to those of a ``CliRunner`` that happens to import it first and closes them when it returns."""
    import prefect  # noqa: F401


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama + BPE tokenizer with a chat template, saved once per session."""
    from tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def format_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama pre-trained a few seconds on the prompt formats, so its samples hold numbered items."""
    from tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-format"), pretrain_steps=150)


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session (startup timeout 60 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_S3: dict = {}  # the session's moto server, so a test can take the endpoint away and bring it back


def start_s3_server() -> None:
    """(Re)start moto's server on the session's port; its data lives in this process and survives restarts."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_S3["port"])
    server.start()
    _S3["server"] = server


def stop_s3_server() -> None:
    """Stop the server: the endpoint refuses connections until :func:`start_s3_server`."""
    _S3.pop("server").stop()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 (real sockets), with dummy credentials; yields the endpoint URL."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    _S3["port"] = _free_port()
    start_s3_server()
    yield f"http://127.0.0.1:{_S3['port']}"
    if "server" in _S3:
        stop_s3_server()


@pytest.fixture
def s3_bucket(s3_server: str):
    """A fresh bucket ``dataswarms-test`` on the moto server; yields ``(endpoint_url, storage_options)``."""
    import requests
    from s3fs import S3FileSystem

    requests.post(f"{s3_server}/moto-api/reset", timeout=10)
    S3FileSystem.clear_instance_cache()
    options = {"client_kwargs": {"endpoint_url": s3_server}, "key": "testing", "secret": "testing"}
    fs = S3FileSystem(**options)
    fs.mkdir("dataswarms-test")
    yield s3_server, options
    S3FileSystem.clear_instance_cache()


@contextlib.contextmanager
def openai_server_on(model_dir: Path, port: int, log_path: Path, timeout: float = 120.0):
    """``transformers serve MODEL_DIR`` (a real OpenAI-compatible server) on 127.0.0.1:``port`` for the block.

    Yields ``(base_url, model_name)``; the server's output goes to ``log_path`` (its tail is in the error when
    it does not start within ``timeout`` seconds).
    """
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    exe = shutil.which("transformers", path=os.path.dirname(sys.executable)) or shutil.which("transformers")
    log = open(log_path, "wb")  # noqa: SIM115 - closed at exit
    proc = subprocess.Popen(
        [exe, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        f"transformers serve did not start: {log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.5)
        yield f"{base}/v1", str(model_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def openai_server(tiny_model_dir):
    """A real OpenAI-compatible server (``transformers serve``) on 127.0.0.1 serving the tiny model.

    Yields ``(base_url, model_name)``.
    """
    with openai_server_on(tiny_model_dir, _free_port(), tiny_model_dir.parent / "serve.log") as served:
        yield served


EXPORT_GENERATORS = ["g0", "g1", "g2"]


@pytest.fixture(scope="session")
def exported(format_model_dir, tmp_path_factory):
    """One iteration through the stages (synthesize → score → pso_step → pointer) on hand-made generators,
    the base model as the only test taker; then ``export_run``."""
    import time

    from tiny import hand_made_manifest, tiny_search_config

    from dataswarms_core import stages
    from dataswarms_core.stages.layout import cache_store
    from dataswarms_core.stages.sft import TEST_TAKERS

    root = tmp_path_factory.mktemp("export")
    cfg = tiny_search_config(
        format_model_dir,
        root,
        "export-run",
        **{
            "test_takers.n_adapters": 0,
            "export.items": 24,
            "export.max_extra_calls": 8,
            "export.answers": "reference-model",
            "export.test_items": 6,
        },
    )
    info = stages.prepare_run(cfg)
    generators = hand_made_manifest(cfg, format_model_dir, EXPORT_GENERATORS)
    takers = stages.train_test_takers(
        cfg, info, cache_store(cfg, TEST_TAKERS, stages.adapters_cache_key(cfg, info, TEST_TAKERS))
    )
    run = stages.run_store(cfg)
    stages.init_swarms(cfg, run, {"generators": generators})
    with pytest.raises(RuntimeError, match="no completed iteration to export"):
        stages.export_run(cfg, info, run, time.time())
    synthesis = stages.synthesize(cfg, info, run, 0)
    scoring = stages.score(cfg, info, run, 0, takers)
    step = stages.pso_step(cfg, run, 0, "generators")
    stages.write_checkpoint_pointer(run, 1, ["generators"], step.stopped)
    started = time.time()
    summary = stages.export_run(cfg, info, run, started)
    return cfg, info, run, generators, synthesis, scoring, step, summary
