"""Registries of objectives, judges and backends: checked registration, unknown names, entries registered from
outside the package, built-in judges built as the stages need them, and the README tables."""

from pathlib import Path

import numpy as np
import pytest
from fakes import ScriptedBackend

from dataswarms_core.backends import BACKENDS, LoadedModel, endpoint_backend, load_local_backend
from dataswarms_core.config import EndpointConfig, JudgeConfig, ModelConfig
from dataswarms_core.config_files import load_config
from dataswarms_core.errors import ConfigError, ModelError, ScoringError
from dataswarms_core.judges import (
    JUDGES,
    ExpectedScoreJudge,
    GenerativeJudge,
    JudgeContext,
    Judgement,
    ReferenceJudge,
    build_judge,
    parse_score,
)
from dataswarms_core.objectives import OBJECTIVES, ObjectiveInputs, objective_needs, separation
from dataswarms_core.registry import (
    Registry,
    UnknownNameError,
    readme_block,
    readme_registries,
    update_readme,
)
from dataswarms_core.scoring import compute_objectives, judge_answers

README = Path(__file__).resolve().parent.parent / "README.md"


def test_registration_is_checked():
    reg = Registry("widget", known_needs={"gpu": "a GPU"})

    @reg.register("plain", source="docs/method.md §1", summary="a | b", kind="x")
    def plain():
        return 1

    assert plain() == 1  # returned unchanged
    reg.register("klass", source="s", summary="a class", needs=("gpu",))(dict)
    assert reg.names() == ["plain", "klass"] and "plain" in reg and "nope" not in reg and len(reg) == 2
    entry = reg.get("plain")
    assert (entry.impl, entry.source, entry.needs, entry.extra["kind"]) == (
        plain,
        "docs/method.md §1",
        frozenset(),
        "x",
    )
    with pytest.raises(TypeError):
        entry.extra["kind"] = "y"  # read-only
    here = r"test_registry\.test_registration_is_checked\.<locals>"
    both = rf"'plain' is registered already \(by {here}\.plain\); cannot register {here}\.other"
    with pytest.raises(ValueError, match=both):

        @reg.register("plain", source="s", summary="again")
        def other():
            pass

    for bad in ("Plain", "1st", "with space", "", "a.b"):
        with pytest.raises(ValueError, match="badly formed"):
            reg.register(bad, source="s", summary="x")
    with pytest.raises(ValueError, match=r"unknown need\(s\) \['cpu'\]; known: gpu"):
        reg.register("z", source="s", summary="x", needs=("cpu",))
    with pytest.raises(UnknownNameError, match="^unknown widget 'nope'; known: plain, klass$") as info:
        reg.get("nope")
    assert isinstance(info.value, ConfigError) and info.value.known == ["plain", "klass"]
    assert reg.markdown_table().splitlines()[2] == "| `plain` | a \\| b | — | docs/method.md §1 |"
    assert reg.markdown_needs() == "Needs: `gpu`: a GPU."
    assert reg.unregister("klass").impl is dict and reg.names() == ["plain"]
    with pytest.raises(UnknownNameError):
        reg.unregister("klass")


def test_built_in_entries_and_needs():
    assert OBJECTIVES.names() == ["difficulty", "separation", "novelty", "consistency", "realistic"]
    assert all(e.extra["lowest"] == 0.0 and e.source == "docs/method.md §4" for e in OBJECTIVES)
    assert objective_needs(["difficulty", "separation", "novelty"]) == {"reference_scores", "test_takers>=2"}
    assert objective_needs(["realistic", "consistency"]) == {"items", "corpus", "item_sets"}
    with pytest.raises(UnknownNameError, match="unknown objective 'composite'"):
        objective_needs(["composite"])  # a weighted sum of registered objectives, not one itself
    assert JUDGES.names() == ["expected-score", "generative", "reference"]
    with pytest.raises(
        UnknownNameError, match="^unknown judge 'foo'; known: expected-score, generative, reference$"
    ):
        JUDGES.get("foo")
    assert {e.name: e.extra["kind"] for e in BACKENDS} == {"hf": "local", "openai": "endpoint", "vllm": "local"}


def test_readme_tables_are_generated_from_the_registries(tmp_path):
    text = README.read_text(encoding="utf-8")
    for marker, registry in readme_registries().items():
        assert readme_block(text, marker) == registry.readme_block(), (
            f"README's {marker} table is outdated: run python -m dataswarms_core.registry --readme README.md"
        )
    assert update_readme(text) == text
    from dataswarms_core.registry import main

    copy = tmp_path / "README.md"
    copy.write_text(text.replace("| `difficulty` |", "| `difficult` |"), encoding="utf-8")
    assert main(["--readme", str(copy), "--check"]) == 1
    assert main(["--readme", str(copy)]) == 0 and copy.read_text(encoding="utf-8") == text
    with pytest.raises(ValueError, match="no <!-- registry:objectives -->"):
        update_readme("no markers")


ANSWERS = [
    {"generator": g, "test_taker": t, "score": s, "call": c, "item": f"{g}-{c}"}
    for g, t, s, c in [
        ("g0", "base", 1.0, 0), ("g0", "base", 0.5, 1), ("g0", "t0", 0.25, 0), ("g0", "t0", 0.25, 1),
        ("g1", "base", 0.0, 0), ("g1", "t0", 0.75, 0),
    ]
]  # fmt: skip


@pytest.fixture
def spread_objective():
    """A custom objective registered from outside the package: twice the separation, lowest value -1."""

    @OBJECTIVES.register(
        "spread", source="tests", summary="2 × separation", needs=("test_takers>=2",), lowest=-1.0
    )
    def spread(inputs: ObjectiveInputs) -> np.ndarray:
        return 2 * separation(inputs.m)

    yield spread
    OBJECTIVES.unregister("spread")


def test_a_custom_objective_is_accepted_by_config_and_scoring(spread_objective):
    cfg = load_config("quickstart", {"scoring.objective": "spread"})
    assert cfg.scoring.components == ["spread"]
    composite = load_config(
        "quickstart",
        {"scoring.objective": "composite", "scoring.composite_weights": {"difficulty": 1, "spread": 1}},
    )
    assert composite.scoring.components == ["difficulty", "spread"]
    with pytest.raises(ConfigError, match="spread compares test takers: need at least 2, got 1"):
        load_config(
            "quickstart",
            {"scoring.objective": "spread", "test_takers.include_base": False, "test_takers.n_adapters": 1},
        )
    res = compute_objectives(
        ANSWERS, ["g0", "g1", "g2"], ["base", "t0"], objective="composite",
        components=["difficulty", "spread"], weights={"difficulty": 1.0, "spread": 1.0}, normalise=False,
    )  # fmt: skip
    # g0: m = (.75, .25) → difficulty .25, spread 2 × .5; g1: (0, .75) → .25, 1.5; g2 empty → 0 and -1
    assert res.components["spread"] == pytest.approx([1.0, 1.5, -1.0])
    assert res.utilities == pytest.approx([1.25, 1.75, -1.0])


def test_an_unregistered_objective_is_refused_again():
    with pytest.raises(ConfigError, match="unknown objective 'spread'"):
        load_config("quickstart", {"scoring.objective": "spread"})
    with pytest.raises(UnknownNameError, match="unknown objective 'spread'; known: difficulty"):
        compute_objectives(ANSWERS, ["g0"], ["base", "t0"], objective="spread", components=["spread"])


def word_count_score(request):
    """A fake local model's reply: "Score: n" with n the number of words of the answer (judge prompt)."""
    return f"Score: {min(10, len(request.messages[-1]['content'].split('ANSWER:')[-1].split()))}"


class WordCountJudge:
    """A custom judge: asks its backend and parses the reply."""

    name = "word-count"

    def __init__(self, backend, seed):
        self.backend, self.seed = backend, seed

    def judge(self, queries, responses, references=None):
        from dataswarms_core.generation import GenerationRequest

        requests = [
            GenerationRequest([{"role": "user", "content": f"{q} ANSWER: {r}"}])
            for q, r in zip(queries, responses, strict=True)
        ]
        replies = self.backend.generate(
            requests, max_new_tokens=4, temperature=0.0, seed=self.seed, batch_size=8
        )
        return [Judgement(None if (n := parse_score(x)) is None else n / 10) for x in replies]


@pytest.fixture
def word_count_judge():
    @JUDGES.register("word-count", source="tests", summary="words of the answer / 10", needs=("local_model",))
    def factory(ctx: JudgeContext) -> WordCountJudge:
        return WordCountJudge(ctx.local, ctx.seed)

    yield factory
    JUDGES.unregister("word-count")


def _ctx(settings=None, local=None, tokenizer=None):
    return JudgeContext(
        settings=settings or JudgeConfig(),
        domain="math",
        seed=11,
        local=local,
        tokenizer=tokenizer,
        batch_size=5,
    )


def test_a_custom_judge_is_accepted_by_config_and_built_by_name(word_count_judge):
    cfg = load_config("quickstart", {"judge.name": "word-count", "judge.dev_name": "word-count"})
    backend = ScriptedBackend(word_count_score)
    judge = build_judge(cfg.judge.name, _ctx(cfg.judge, local=backend))
    assert isinstance(judge, WordCountJudge) and judge.seed == 11
    rows = [
        {"query": "2+2?", "response": "four"},
        {"query": "3+3?", "response": "it is six apples"},
    ]
    judge_answers(judge, rows)
    assert [r["score"] for r in rows] == [0.1, 0.4]
    assert [len(c.requests) for c in backend.calls] == [2]
    # No token probabilities needed: an endpoint is allowed with it (the judge decides what to do with it).
    load_config(
        "quickstart",
        {"judge.name": "word-count", "judge.endpoint": {"base_url": "http://x/v1", "model": "m"}},
    )


def test_an_unregistered_judge_is_refused_again():
    with pytest.raises(ConfigError, match="judge.name: .*unknown judge 'word-count'"):
        load_config("quickstart", {"judge.name": "word-count"})


class DigitTokenizer:
    def encode(self, text, add_special_tokens=False):
        return [ord(text)]


def test_built_in_judges_are_built_as_the_stages_build_them():
    local = ScriptedBackend(word_count_score)
    es = build_judge("expected-score", _ctx(local=local, tokenizer=DigitTokenizer()))
    assert isinstance(es, ExpectedScoreJudge)
    assert (es.backend, es.domain, es.batch_size, es.adapter) == (local, "math", 5, "__base__")
    settings = JudgeConfig(name="generative", retries=4, max_new_tokens=9)
    gen = build_judge("generative", _ctx(settings, local=local))
    assert isinstance(gen, GenerativeJudge)
    assert (gen.backend, gen.domain, gen.retries, gen.max_new_tokens, gen.seed, gen.batch_size) == (
        local, "math", 4, 9, 11, 5,
    )  # fmt: skip
    assert gen.retry_temperature == 0.7 and gen.adapter == "__base__"
    remote = JudgeConfig(
        name="generative", endpoint=EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m")
    )
    on_endpoint = build_judge("generative", _ctx(remote, local=None))
    assert type(on_endpoint.backend).__name__ == "OpenAIBackend" and on_endpoint.backend.name == "__base__"
    assert isinstance(build_judge("reference", _ctx()), ReferenceJudge)
    with pytest.raises(ScoringError, match="the expected-score judge needs the run's local model"):
        build_judge("expected-score", _ctx(tokenizer=DigitTokenizer()))
    with pytest.raises(ScoringError, match="the generative judge needs the run's local model"):
        build_judge("generative", _ctx(settings))


def test_backends_by_name_with_install_hints(tiny_model_dir):
    ep = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m")
    backend = endpoint_backend(ep, "remote")
    assert type(backend).__name__ == "OpenAIBackend" and backend.name == "remote"
    with pytest.raises(ConfigError, match="backend 'hf' is a local backend; expected a endpoint one: openai"):
        endpoint_backend(ep, backend="hf")
    with pytest.raises(ConfigError, match="backend 'vllm' is a local backend; expected a endpoint one: openai"):
        endpoint_backend(ep, backend="vllm")
    with pytest.raises(UnknownNameError, match="unknown backend 'tgi'; known: hf, vllm, openai"):
        endpoint_backend(ep, backend="tgi")

    @BACKENDS.register(
        "fancy", source="tests", summary="needs a package nobody has", kind="local",
        needs=("dataswarms_no_such_package",), pip_extra="gpu",
    )  # fmt: skip
    def fancy(model_path, adapters, model):
        raise AssertionError("not reached: the package check comes first")

    try:
        cfg = load_config("quickstart", {"model.backend": "fancy"})  # accepted once registered
        hint = r"^backend 'fancy' needs the package\(s\) dataswarms_no_such_package, not installed: "
        with pytest.raises(ModelError, match=hint + r"pip install 'dataswarms\[gpu\]'$"):
            load_local_backend(tiny_model_dir, {}, cfg.model)
    finally:
        BACKENDS.unregister("fancy")
    with pytest.raises(ConfigError, match="unknown local backend 'fancy'"):
        load_config("quickstart", {"model.backend": "fancy"})

    loaded = load_local_backend(tiny_model_dir, {}, ModelConfig(device="cpu"))
    assert isinstance(loaded, LoadedModel) and loaded.backend.tokenizer is loaded.tokenizer
    from dataswarms_core.generation import GenerationRequest

    reply = loaded.backend.generate(
        [GenerationRequest([{"role": "user", "content": "2+2?"}])], max_new_tokens=3, temperature=0.0
    )
    assert len(reply) == 1 and isinstance(reply[0], str)
