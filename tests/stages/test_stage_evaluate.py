"""Stage ``evaluate``: models answer a package's items, the run's judge scores them, results are cached per
(model, package version, judge), and the leaderboard is written; bad packages and models fail in one line."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dataswarms_core.errors import ConfigError, FormatError, ModelError, StorageError
from dataswarms_core.model_spec import parse_model_spec
from dataswarms_core.openai_backend import EndpointError
from dataswarms_core.records import Leaderboard, ModelEvaluation
from dataswarms_core.stages.evaluate import (
    check_specs,
    evaluate_model,
    load_judging,
    open_package,
    write_leaderboard,
)
from dataswarms_core.storage import Store


@pytest.fixture(scope="module")
def package(exported, tmp_path_factory):
    """A copy of the shared run's package (evaluations are written into it)."""
    _, _, run, _, _, _, _, summary = exported
    dest = tmp_path_factory.mktemp("pkg") / "iter_0001"
    shutil.copytree(summary.outputs.package, dest)
    return open_package(str(dest))


@pytest.fixture(scope="module")
def judging(package):
    return load_judging(package)


def test_open_package(package, exported):
    _, _, run, _, _, _, _, summary = exported
    assert package.manifest.version == summary.package_version
    assert len(package.items) == summary.export_items and len(package.tests) == 6
    with pytest.raises(StorageError, match=r"not a benchmark package \(no package.json\) \(a run folder"):
        open_package(run.root)


def test_unknown_format_version(package, tmp_path):
    dest = tmp_path / "pkg"
    shutil.copytree(package.store.root, dest)
    data = json.loads((dest / "package.json").read_text())
    (dest / "package.json").write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(FormatError, match="format version 99.*evaluate it with the dataswarms that wrote it"):
        open_package(str(dest))


def test_models_answer_every_item_and_results_are_cached(package, judging, format_model_dir):
    adapter = Path(package.store.root) / "adapter"
    specs = [parse_model_spec(str(format_model_dir)), parse_model_spec(f"tuned={format_model_dir}+{adapter}")]
    check_specs(specs)
    results = []
    for spec in specs:
        result, cached = evaluate_model(package, spec, judging=judging)
        assert not cached
        assert result.items == len(package.items) == len(result.scores)
        assert result.answered + result.answer_failures == result.items
        assert all(s is None or 0.0 <= s <= 1.0 for s in result.scores)
        assert sum(s is None for s in result.scores) == result.answer_failures + result.judge_failures
        assert result.test_items == len(package.tests) == len(result.test_scores)
        results.append(result)
    assert results[1].model == "tuned" and results[0].model_key != results[1].model_key
    again, cached = evaluate_model(package, specs[0], judging=judging)
    assert cached and again == results[0]
    stored = ModelEvaluation.read(package.store.child("evaluations", results[0].model_key), "result.json")
    assert stored == results[0]
    answers = package.store.child("evaluations", results[0].model_key).read_jsonl("answers.jsonl")
    assert [a["split"] for a in answers].count("package") == len(package.items)

    out = package.store.child("leaderboard")
    board = write_leaderboard(package, results, out, cached=["tuned"])
    assert Leaderboard.read(out, "leaderboard.json") == board
    assert {r.model for r in board.rows} == {specs[0].label, "tuned"}
    assert [r.cached for r in sorted(board.rows, key=lambda r: r.model)] == [
        r.model == "tuned" for r in sorted(board.rows, key=lambda r: r.model)
    ]
    for name in ("leaderboard.csv", "leaderboard.parquet", "leaderboard.md", "leaderboard.png"):
        assert out.exists(name)


def test_adapter_of_another_base_model(package, format_model_dir, tmp_path):
    """An adapter whose dataswarms.json records another base-model fingerprint than the local model's."""
    adapter = tmp_path / "adapter"
    shutil.copytree(Path(package.store.root) / "adapter", adapter)
    origin = json.loads((adapter / "dataswarms.json").read_text())
    (adapter / "dataswarms.json").write_text(json.dumps({**origin, "model_fingerprint": "0123456789abcdef"}))
    spec = parse_model_spec(f"{format_model_dir}+{adapter}")
    with pytest.raises(ModelError, match="the adapter was trained on .* fingerprint"):
        check_specs([spec])


def test_model_folder_that_does_not_load(package, judging, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelError, match="broken"):
        evaluate_model(
            package, parse_model_spec(str(broken)), output=Store(str(tmp_path / "out")), judging=judging
        )


def test_repeated_labels_and_unreachable_endpoint(package, judging, tmp_path):
    with pytest.raises(ConfigError, match="label a names two models"):
        check_specs(
            [parse_model_spec("a=x@http://127.0.0.1:9/v1"), parse_model_spec("a=y@http://127.0.0.1:9/v1")]
        )
    with pytest.raises(EndpointError):
        evaluate_model(
            package, parse_model_spec("m@http://127.0.0.1:9/v1"), output=Store(str(tmp_path)), judging=judging
        )


class _HalfFailing(BaseHTTPRequestHandler):
    """An OpenAI-compatible stub: a content-filter refusal for every second request, an answer otherwise."""

    count = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        with _HalfFailing.lock:
            _HalfFailing.count += 1
            fail = _HalfFailing.count % 2 == 0
        choice = {"index": 0, "message": {"role": "assistant", "content": None if fail else "42"},
                  "finish_reason": "content_filter" if fail else "stop"}  # fmt: skip
        body = json.dumps(
            {"id": "x", "object": "chat.completion", "model": "stub", "choices": [choice]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_endpoint_failing_for_some_items_marks_them_failed(package, judging, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HalfFailing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = parse_model_spec(f"stub@http://127.0.0.1:{server.server_address[1]}/v1")
        result, _ = evaluate_model(package, spec, output=Store(str(tmp_path)), judging=judging)
    finally:
        server.shutdown()
    total = result.items + result.test_items
    assert result.answer_failures + result.test_answer_failures == total // 2
    assert 0 < result.answered < result.items or 0 < result.test_answered < result.test_items
    assert sum(s is None for s in result.scores) >= result.answer_failures
    board = write_leaderboard(package, [result], Store(str(tmp_path / "board")))
    assert board.rows[0].answer_failures == result.answer_failures
