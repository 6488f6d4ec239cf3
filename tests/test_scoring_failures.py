"""Replies from OpenAI-compatible endpoints that are not ordinary (issue "Inputs from outside that break it",
kind 3): each is a per-item failure with its reason, never judged nor scored; the batch goes on.

Real sockets: a stub OpenAI-compatible server (stdlib ``http.server``) on 127.0.0.1 answers
``POST /v1/chat/completions`` with a canned body chosen by a ``[case:NAME]`` tag in the prompt.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fakes import ScriptedBackend

from dataswarms_core.config import EndpointConfig
from dataswarms_core.errors import ScoringError
from dataswarms_core.generation import REQUEST_FAILED, GenerationRequest, Reply, reply_failure
from dataswarms_core.judges import GenerativeJudge
from dataswarms_core.openai_backend import EndpointError, OpenAIBackend, parse_chat_completion
from dataswarms_core.records import AnswerRow, ScoringReport
from dataswarms_core.scoring import TestTaker as Taker
from dataswarms_core.scoring import (
    answer,
    answer_failure_kinds,
    answer_failure_matrix,
    compute_objectives,
    judge_answers,
    score_matrix,
)


def _completion(content, finish="stop", **message):
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "stub",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, **message},
                "finish_reason": finish,
            }
        ],
    }


# case → (body, content type); the default case answers "answer: <prompt>".
CASES = {
    "EMPTY": ({"choices": []}, "application/json"),
    "FILTER": (_completion(None, "content_filter"), "application/json"),
    "PARTIAL": (_completion("The first half of", "content_filter"), "application/json"),
    "NOMSG": ({"choices": [{"index": 0, "finish_reason": "stop"}]}, "application/json"),
    "NULLMSG": ({"choices": [{"index": 0, "message": None, "finish_reason": "stop"}]}, "application/json"),
    "NOCHOICES": ({"id": "x", "object": "chat.completion"}, "application/json"),
    "PARTS": (
        _completion(
            [
                {"type": "text", "text": "Hello "},
                {"type": "image_url", "image_url": {"url": "data:"}},
                {"type": "text", "text": "world"},
            ]
        ),
        "application/json",
    ),
    "IMAGEONLY": (_completion([{"type": "image_url", "image_url": {"url": "data:"}}]), "application/json"),
    "REFUSE": (_completion(None, refusal="I can't help with that."), "application/json"),
    "HTML": ("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    "ERROR": (
        {"error": {"message": "model overloaded", "type": "server_error", "code": 503}},
        "application/json",
    ),
    "BADREQ": ({"error": {"message": "unknown parameter seed", "code": 400}}, "application/json"),
    "BLANK": (_completion("   \n "), "application/json"),
    "NULLCONTENT": (_completion(None), "application/json"),
    "TOOLS": (
        _completion(None, "tool_calls", tool_calls=[{"id": "c", "type": "function"}]),
        "application/json",
    ),
    "LONG": (_completion("cut off here", "length"), "application/json"),
}
FAILURE_KINDS = {
    "EMPTY": "no_choices",
    "FILTER": "content_filter",
    "PARTIAL": "content_filter",
    "NOMSG": "no_message",
    "NULLMSG": "no_message",
    "NOCHOICES": "no_choices",
    "IMAGEONLY": "no_text_parts",
    "REFUSE": "refusal",
    "HTML": "non_json_body",
    "ERROR": "error_object",
    "BADREQ": "error_object",
    "NULLCONTENT": "no_content",
    "TOOLS": "no_content",
}
ANSWERS = {"PARTS": "Hello world", "BLANK": "", "LONG": "cut off here"}  # ordinary replies, for contrast


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = " ".join(str(m.get("content")) for m in body["messages"])
        self.server.prompts.append(prompt)
        tag = re.search(r"\[case:(\w+)\]", prompt)
        if tag and tag.group(1) in CASES:
            payload, ctype = CASES[tag.group(1)]
        else:
            payload, ctype = _completion(f"answer: {body['messages'][-1]['content']}"), "application/json"
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stub_server():
    """The stub endpoint; yields its base URL (``http://127.0.0.1:<port>/v1``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.prompts = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _backend(url, **kw):
    return OpenAIBackend(
        EndpointConfig(**{"base_url": url, "model": "stub", "timeout": 10, "max_retries": 0, **kw})
    )


def _req(text):
    return GenerationRequest([{"role": "user", "content": text}])


# --- the body parser -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_body_gives_an_answer_or_a_failure_with_its_kind(case):
    payload, ctype = CASES[case]
    reply = parse_chat_completion(payload if isinstance(payload, str) else json.dumps(payload), ctype)
    assert isinstance(reply, Reply)
    if case in FAILURE_KINDS:
        assert reply == "" and reply.failure.startswith(FAILURE_KINDS[case] + ": ")
        assert reply_failure(reply) == reply.failure
    else:
        assert (str(reply), reply.failure, reply_failure(reply)) == (ANSWERS[case], None, None)
        assert reply.truncated == (case == "LONG")


def test_failure_reasons_say_what_was_wrong():
    def reason(payload, ctype="application/json"):
        return parse_chat_completion(
            payload if isinstance(payload, str) else json.dumps(payload), ctype
        ).failure

    assert reason(CASES["REFUSE"][0]) == 'refusal: the model refused: "I can\'t help with that."'
    assert reason(CASES["ERROR"][0]) == "error_object: the 200 response holds an error: 'model overloaded'"
    assert (
        reason(CASES["NULLCONTENT"][0])
        == "no_content: choices[0].message.content is null (finish_reason 'stop')"
    )
    assert "finish_reason 'tool_calls'" in reason(CASES["TOOLS"][0])
    assert reason(CASES["HTML"][0], "text/html").startswith(
        "non_json_body: the 200 response (text/html) is not JSON: '<html><body><h1>502 Bad Gateway"
    )
    assert reason("[1, 2]") == "not_an_object: the response is a JSON list, not an object"
    assert reason({"choices": ["x"]}) == "bad_choice: choices[0] is a str, not an object"
    assert reason(_completion(42)).startswith("bad_content: message.content is a int")
    assert reason({"choices": None}).startswith("no_choices")
    assert reason(_completion([{"type": "refusal", "refusal": "no"}])).startswith("refusal: ")
    assert reason(_completion("ok", error=None) | {"error": None}) is None  # a null error is no error
    assert parse_chat_completion(json.dumps(_completion(["a", {"text": "b"}]))) == "ab"  # untyped parts
    assert parse_chat_completion(json.dumps(_completion([]))) == ""  # no parts: an empty answer
    assert parse_chat_completion(json.dumps(_completion("x", refusal=None))) == "x"


# --- the backend over real sockets -----------------------------------------------------------------------


def test_one_odd_reply_does_not_fail_the_batch(stub_server):
    backend = _backend(stub_server, concurrency=4)
    cases = ["OK", *CASES]
    replies = backend.generate(
        [_req(f"q{i} [case:{c}]") for i, c in enumerate(cases)],
        max_new_tokens=8,
        temperature=0.0,
        return_exceptions=True,
    )
    assert len(replies) == len(cases)
    for case, reply in zip(cases, replies, strict=True):
        if case in FAILURE_KINDS:
            assert reply == "" and reply.failure.startswith(FAILURE_KINDS[case] + ": "), case
        else:
            assert reply.failure is None, case
    assert replies[0] == "answer: q0 [case:OK]"
    assert [replies[cases.index(c)] for c in ANSWERS] == list(ANSWERS.values())
    assert replies[cases.index("LONG")].truncated


def test_without_return_exceptions_an_odd_reply_raises_with_its_reason(stub_server):
    backend = _backend(stub_server)
    with pytest.raises(EndpointError, match=r"model stub: no_choices: the response has no choices") as info:
        backend.generate([_req("[case:EMPTY]")], max_new_tokens=4, temperature=0.0)
    assert info.value.transient is False
    with pytest.raises(EndpointError, match="error_object") as info:
        backend.generate([_req("[case:ERROR]")], max_new_tokens=4, temperature=0.0)
    assert info.value.transient is True  # code 503 in the error object: worth retrying later
    with pytest.raises(EndpointError, match="error_object") as info:
        backend.generate([_req("[case:BADREQ]")], max_new_tokens=4, temperature=0.0)
    assert info.value.transient is False
    assert backend.generate([_req("[case:BLANK]")], max_new_tokens=4, temperature=0.0) == [""]


def test_answer_records_per_item_failures_and_goes_on(stub_server):
    endpoint = _backend(stub_server, concurrency=3)
    local = ScriptedBackend({"t0": ["local 1", None, "local 3"]})
    takers = [Taker("ep", endpoint), Taker("t0", local, adapter="t0")]
    items = [
        {"item": "What is 2+2? [case:EMPTY]", "generator": "g0", "call": 0},
        {"item": "Name a prime. [case:FILTER]", "generator": "g0", "call": 0},
        {"item": "Say nothing. [case:BLANK]", "generator": "g1", "call": 0},
    ]
    rows = answer(items, takers, max_new_tokens=8, temperature=0.0, batch_size=4, run_seed=1, stage="answers")
    got = {(r["item"].split()[-1], r["test_taker"]): (r["response"], r["answer_failure"]) for r in rows}
    assert got[("[case:EMPTY]", "ep")] == (None, "no_choices: the response has no choices (choices: '[]')")
    assert got[("[case:FILTER]", "ep")] == (
        None,
        "content_filter: the endpoint's content filter withheld the reply (finish_reason 'content_filter')",
    )
    assert got[("[case:BLANK]", "ep")] == ("", None)  # an empty answer of a model that finished: an answer
    assert got[("[case:EMPTY]", "t0")] == ("local 1", None)
    assert got[("[case:FILTER]", "t0")] == (None, REQUEST_FAILED)  # a failed request of the local fake
    assert got[("[case:BLANK]", "t0")] == ("local 3", None)
    assert local.calls[0].kwargs["return_exceptions"] is True

    # the judge never sees a failed answer; such rows get no score and say why
    judge_backend = ScriptedBackend(["7", "8", "9"])
    judge_answers(GenerativeJudge(judge_backend, "math", retries=0), rows)
    assert len(judge_backend.requests) == 3  # 6 rows, 3 failed answers
    failed = [r for r in rows if r["answer_failure"]]
    assert all(
        r["score"] is None and r["judge_detail"] == {"answer_failure": r["answer_failure"]} for r in failed
    )
    assert sorted(r["score"] for r in rows if not r["answer_failure"]) == [0.7, 0.8, 0.9]

    # answers.parquet rows take them as they are
    row = AnswerRow(
        iteration=0, index=0, **{k: failed[0][k] for k in ("generator", "call", "test_taker", "query", "response")},
        score=None, judge_detail=json.dumps(failed[0]["judge_detail"]), answer_failure=failed[0]["answer_failure"],
    )  # fmt: skip
    assert row.response is None and row.answer_failure.startswith("no_choices")


def test_an_endpoint_that_never_answers_still_raises_a_transient_error():
    from conftest import _free_port

    dead = _backend(f"http://127.0.0.1:{_free_port()}/v1", timeout=2)
    takers = [Taker("base", ScriptedBackend("fine")), Taker("ep", dead)]
    with pytest.raises(EndpointError, match="APIConnectionError") as info:
        answer([{"item": "q"}, {"item": "r"}], takers, max_new_tokens=4, temperature=0.0, batch_size=2,
               run_seed=0, stage="answers")  # fmt: skip
    assert info.value.transient is True


def test_the_generative_judge_over_odd_replies_records_missing(stub_server):
    """A judge endpoint that filters or answers without choices: unparsable replies, retried, then missing
    (counted) — not an IndexError, not a crash, not the transport-failure error."""
    judge = GenerativeJudge(_backend(stub_server), "math", retries=1)
    out = judge.judge(["What is 2+2? [case:FILTER]", "[case:EMPTY] 3+3?", "1+1?"], ["4", "6", "Score: 9"])
    assert [j.score for j in out[:2]] == [None, None]
    assert [j.detail["attempts"] for j in out[:2]] == [2.0, 2.0]


# --- counting: answer failures are not judge failures --------------------------------------------------------


def _rows():
    """g0: base answered and judged twice; t0 one judged, one judge failure, one answer failure.
    g1: base judged once; every answer of t0 failed."""

    def row(g, t, score, call=0, failure=None):
        return {"generator": g, "test_taker": t, "score": score, "call": call, "answer_failure": failure}

    return [
        row("g0", "base", 1.0), row("g0", "base", 0.5, 1),
        row("g0", "t0", 0.25), row("g0", "t0", None, 1), row("g0", "t0", None, 1, "no_choices: none"),
        row("g1", "base", 0.5),
        row("g1", "t0", None, 0, "content_filter: withheld"), row("g1", "t0", None, 1, "content_filter: withheld"),
        row("g1", "t0", None, 1, "refusal: no"),
    ]  # fmt: skip


def test_answer_failures_are_counted_apart_and_never_scored():
    rows = _rows()
    m, judged, failed = score_matrix(rows, ["g0", "g1"], ["base", "t0"])
    assert np.array_equal(judged, [[2, 1], [1, 0]]) and np.array_equal(failed, [[0, 1], [0, 0]])
    assert m[0].tolist() == [0.75, 0.25] and m[1, 0] == 0.5 and np.isnan(m[1, 1])
    assert answer_failure_matrix(rows, ["g0", "g1"], ["base", "t0"]).tolist() == [[0, 1], [0, 3]]
    assert answer_failure_kinds(rows) == {"content_filter": 2, "no_choices": 1, "refusal": 1}

    res = compute_objectives(
        [r for r in rows if r["generator"] == "g0"], ["g0"], ["base", "t0"], objective="difficulty",
        components=["difficulty"],
    )  # fmt: skip
    assert res.failed.tolist() == [[0, 1]] and res.answer_failures.tolist() == [[0, 1]]
    assert res.score_matrix.tolist() == [[0.75, 0.25]]


def test_a_test_taker_all_of_whose_answers_failed_is_a_clear_scoring_error():
    with pytest.raises(
        ScoringError,
        match=r"generator g1: every answer of test taker\(s\) \['t0'\] failed \(3 answer failures, "
        r"e\.g\. 'content_filter: withheld'\); no utility can be computed",
    ):
        compute_objectives(
            _rows(), ["g0", "g1"], ["base", "t0"], objective="difficulty", components=["difficulty"]
        )
    # a judge failure among them: still today's "every judgement" error, naming the answer failures too
    rows = [
        *_rows(),
        {"generator": "g1", "test_taker": "t0", "score": None, "call": 2, "answer_failure": None},
    ]
    with pytest.raises(
        ScoringError,
        match=r"generator g1: every judgement of test taker\(s\) \['t0'\] failed \(1 failures, and 3 answer failures\)",
    ):
        compute_objectives(
            rows, ["g0", "g1"], ["base", "t0"], objective="difficulty", components=["difficulty"]
        )


def test_a_generator_whose_answers_all_failed_is_not_an_empty_generator():
    rows = [
        {"generator": "g0", "test_taker": "base", "score": 0.5, "call": 0},
        {
            "generator": "g1",
            "test_taker": "base",
            "score": None,
            "call": 0,
            "answer_failure": "no_message: x",
        },
    ]
    with pytest.raises(ScoringError, match="every answer of test taker"):
        compute_objectives(rows, ["g0", "g1"], ["base"], objective="difficulty", components=["difficulty"])


def test_scoring_report_keeps_reading_files_without_the_new_fields():
    fields = dict(
        swarm="generators", iteration=0, objective="difficulty", judge="generative", generators=["g0"],
        test_takers=["base"], score_matrix=[[0.5]], utilities=[0.5], components={"difficulty": [0.5]},
        undefined={}, empty_generators=[], judge_failures=0, judge_failures_per_generator={"g0": 0},
        judge_failures_per_test_taker={"base": 0}, answers=1, mean_judge_mass=None, seconds=0.1,
    )  # fmt: skip
    old = ScoringReport.model_validate(fields)
    assert (old.answer_failures, old.answer_failures_per_generator, old.answer_failure_kinds) == (0, {}, {})
    new = ScoringReport(**fields, answer_failures=2, answer_failures_per_test_taker={"base": 2})
    assert ScoringReport.model_validate_json(new.model_dump_json()).answer_failures_per_test_taker == {
        "base": 2
    }
