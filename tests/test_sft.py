"""Seed-generator SFT: clustering, example formats, and real LoRA training on a tiny model."""

import random

import numpy as np
import pytest

from dataswarms_core.config import LoraSettings
from dataswarms_core.errors import DataError
from dataswarms_core.sft import answer_examples, cluster_inputs, embed, generator_examples, train_lora


def test_kmeans_separates_blobs_and_tops_up_small_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.normal(0, 0.1, (10, 2)), rng.normal(5, 0.1, (10, 2)), rng.normal(-5, 0.1, (2, 2))]
    )
    c = cluster_inputs(x, 3, seed=0, min_size=4)
    labels = c.labels
    assert len(set(labels[:10])) == 1 and len(set(labels[10:20])) == 1 and len(set(labels[20:])) == 1
    small = labels[20]
    assert c.topped_up[small] and len(c.pools[small]) == 4 and {20, 21} <= set(c.pools[small])
    assert sorted(len(p) for i, p in enumerate(c.pools) if i != small) == [10, 10]
    with pytest.raises(DataError, match="3 dev items, need at least 4"):
        cluster_inputs(x[:3], 2, seed=0, min_size=4)


def test_embeddings_minilm_and_tfidf():
    texts = ["How many apples are left?", "How many pears are left?", "What is the capital of France?"]
    e = embed(texts, "minilm")
    assert e.shape == (3, 384)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2]  # the two fruit questions are closer
    assert embed(texts, "tfidf").shape[0] == 3


def test_example_formats():
    inputs = [f"q{i}" for i in range(10)]
    ex = generator_examples(inputs, range(10), 2, shown=3, written=2, domain="maths", rng=random.Random(0))
    assert len(ex) == 2
    user, reply = ex[0]["prompt"][0]["content"], ex[0]["completion"][0]["content"]
    assert "about maths" in user and reply.startswith("1. q") and "\n2. q" in reply
    shown = [line.split(". ", 1)[1] for line in user.splitlines() if line[:1].isdigit()]
    written = [line.split(". ", 1)[1] for line in reply.splitlines()]
    assert not set(shown) & set(written)  # shown and written items differ
    answers = answer_examples(inputs, [None] * 9 + ["42"], range(10), 3, random.Random(0))
    assert [a["completion"][0]["content"] for a in answers] == ["42"] * 3
    with pytest.raises(DataError, match="need dev items with an 'output'"):
        answer_examples(inputs, [None] * 10, range(10), 3, random.Random(0))


def test_train_lora_writes_a_peft_adapter_that_loads(tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    inputs = [f"How many apples does person {i} have?" for i in range(12)]
    examples = generator_examples(inputs, range(12), 4, 2, 2, "math", random.Random(0))
    stats = train_lora(
        tiny_model_dir, examples, LoraSettings(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]),
        steps=2, batch_size=2, learning_rate=1e-3, seed=0, output_dir=tmp_path / "ad",
    )  # fmt: skip
    assert stats["steps"] == 2 and np.isfinite(stats["loss_first"]) and np.isfinite(stats["loss_last"])
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "ad")
    b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert b and any(float(t.abs().sum()) > 0 for t in b)  # training moved B away from its zero init
