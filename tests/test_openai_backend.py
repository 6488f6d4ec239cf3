"""The OpenAI-compatible backend against a real server on 127.0.0.1 (``transformers serve``)."""

import pytest

from dataswarms_core.config import EndpointConfig
from dataswarms_core.generation import GenerationRequest
from dataswarms_core.judges import GenerativeJudge
from dataswarms_core.openai_backend import EndpointError, OpenAIBackend


def _req(text, adapter="__base__"):
    return GenerationRequest([{"role": "user", "content": text}], adapter=adapter)


def test_generate_through_a_real_server(openai_server):
    base_url, model = openai_server
    backend = OpenAIBackend(EndpointConfig(base_url=base_url, model=model, concurrency=2), name="ep")
    replies = backend.generate(
        [_req("How many apples?"), _req("2+2?", "ep"), _req("Name a prime.")],
        max_new_tokens=8,
        temperature=0.0,
        seed=3,
    )
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert replies == backend.generate(
        [_req("How many apples?"), _req("2+2?"), _req("Name a prime.")],
        max_new_tokens=8,
        temperature=0.0,
        seed=3,
    )
    with pytest.raises(ValueError, match="cannot serve adapter 'g0'"):
        backend.generate([_req("x", "g0")], max_new_tokens=2, temperature=0.0)


def test_generative_judge_over_the_endpoint_counts_what_it_cannot_parse(openai_server):
    base_url, model = openai_server
    judge = GenerativeJudge(OpenAIBackend(EndpointConfig(base_url=base_url, model=model)), "math", retries=1)
    out = judge.judge(["What is 2+2?", "How many legs has a cat?"], ["4", "4"])
    assert all(j.score is None or 0.1 <= j.score <= 1.0 for j in out)
    assert all(j.detail["attempts"] in (1.0, 2.0) for j in out)
    assert all(j.detail["attempts"] == 2.0 for j in out if j.score is None)  # retried before giving up


def test_unreachable_endpoint_and_missing_key(monkeypatch):
    from conftest import _free_port

    cfg = EndpointConfig(base_url=f"http://127.0.0.1:{_free_port()}/v1", model="m", timeout=2, max_retries=1)
    backend = OpenAIBackend(cfg)
    assert backend.generate([_req("x")], max_new_tokens=2, temperature=0.0, return_exceptions=True) == [None]
    with pytest.raises(EndpointError, match=r"endpoint http://127.0.0.1:\d+/v1 model m: APIConnectionError"):
        backend.generate([_req("x")], max_new_tokens=2, temperature=0.0)
    monkeypatch.delenv("DATASWARMS_TEST_KEY", raising=False)
    with pytest.raises(EndpointError, match="environment variable DATASWARMS_TEST_KEY is not set"):
        OpenAIBackend(cfg.model_copy(update={"api_key_env": "DATASWARMS_TEST_KEY"}))
    monkeypatch.setenv("DATASWARMS_TEST_KEY", "sk-secret-value")
    assert "sk-secret" not in repr(
        OpenAIBackend(cfg.model_copy(update={"api_key_env": "DATASWARMS_TEST_KEY"}))
    )
