"""Extending dataswarms without editing it: an objective, a judge and a generation backend registered from this
module (as a user's own code would) drive a real tiny search through the Prefect flow."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tiny import tiny_search_config

from dataswarms_core.backends import BACKENDS, LoadedModel
from dataswarms_core.judges import JUDGES, Judgement
from dataswarms_core.objectives import OBJECTIVES
from dataswarms_core.records import RunSummary

CALLS = {"generate": 0, "next_token_probs": 0}


def brevity(inputs) -> np.ndarray:
    """1 / (1 + mean words per item): short items score high. Shape (G',)."""
    return np.array([1.0 / (1.0 + np.mean([len(i.split()) for i in items])) for items in inputs.items])


class LengthJudge:
    """Scores an answer by its length: min(characters, 20) / 20, in [0, 1]."""

    name = "length"

    def judge(self, queries, responses, references=None):
        return [Judgement(min(len(r), 20) / 20, {"chars": float(len(r))}) for r in responses]


class CountingBackend:
    """Wraps the registered HF backend and counts the calls that reach it."""

    def __init__(self, inner):
        self.inner = inner
        self.supports_reply_prefix = True

    def generate(self, requests, **kwargs):
        CALLS["generate"] += 1
        return self.inner.generate(requests, **kwargs)

    def next_token_probs(self, requests, token_ids, **kwargs):
        CALLS["next_token_probs"] += 1
        return self.inner.next_token_probs(requests, token_ids, **kwargs)


def counting_hf(model_path, adapters, model) -> LoadedModel:
    loaded = BACKENDS.get("hf").impl(model_path, adapters, model)
    return LoadedModel(CountingBackend(loaded.backend), loaded.tokenizer)


@pytest.fixture
def registered():
    """Register the three extensions for one test, then remove them again."""
    OBJECTIVES.register("brevity", source="tests/test_extensions.py", summary="short items", needs=("items",), lowest=0.0)(brevity)
    JUDGES.register("length", source="tests/test_extensions.py", summary="answer length")(lambda ctx: LengthJudge())
    BACKENDS.register(
        "counting-hf", source="tests/test_extensions.py", summary="hf, counted", kind="local", needs=("torch",)
    )(counting_hf)  # fmt: skip
    yield
    for registry, name in ((OBJECTIVES, "brevity"), (JUDGES, "length"), (BACKENDS, "counting-hf")):
        registry.unregister(name)


def test_search_with_an_objective_judge_and_backend_registered_by_the_user(
    registered, prefect_harness, format_model_dir, tmp_path
):
    from dataswarms.flows.search import data_swarms_search

    cfg = tiny_search_config(
        format_model_dir, tmp_path, "ext",
        **{"scoring.objective": "brevity", "judge.name": "length", "model.backend": "counting-hf",
           "pso.max_iterations": 1},
    )  # fmt: skip
    summary = data_swarms_search(cfg)
    assert isinstance(summary, RunSummary) and summary.objective == "brevity" and summary.judge == "length"

    # The objective: every generator's utility is its items' brevity (empty generators get its lowest value).
    items = [json.loads(line) for line in (tmp_path / "ext/iterations/iter_0000/items.jsonl").read_text().splitlines()]
    assert items, "the format-trained tiny model writes parsable items"
    for g, utility in summary.utility_history[0].items():
        words = [len(r["item"].split()) for r in items if r["generator"] == g]
        assert utility == pytest.approx(1.0 / (1.0 + np.mean(words)) if words else 0.0)
    # The judge: every answer scored by its length.
    answers = pd.read_parquet(tmp_path / "ext/iterations/iter_0000/answers.parquet")
    assert len(answers) > 0
    assert answers["score"].tolist() == pytest.approx([min(len(r), 20) / 20 for r in answers["response"]])
    # The backend: synthesis, answers and the export went through it; no judge needed token probabilities.
    assert CALLS["generate"] >= 3 and CALLS["next_token_probs"] == 0


def test_unknown_names_list_the_registered_ones(registered):
    from dataswarms_core.config_files import load_config
    from dataswarms_core.errors import ConfigError

    with pytest.raises(ConfigError, match="known: .*brevity"):
        load_config("quickstart", {"scoring.objective": "brevit"})
    with pytest.raises(ConfigError, match="known: .*length"):
        load_config("quickstart", {"judge.name": "lenght"})
    with pytest.raises(ConfigError, match="counting-hf"):
        load_config("quickstart", {"model.backend": "counting"})
