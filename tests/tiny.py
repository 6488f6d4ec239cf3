"""Tiny random models for tests: a byte-level BPE tokenizer with a ChatML chat template and a 2-layer
Llama (hidden size 32), built and saved in about a second."""

from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _corpus() -> list[str]:
    data = json.loads(_corpus_file())
    texts = [item["input"] for item in data["dev"]] + [item["output"] for item in data["dev"]]
    return texts + [
        "1. 2. 3. Score: 5 Question: Answer: Rate the answer from 1 (wrong) to 9 (fully correct)."
    ]


def build_tokenizer(path: Path, vocab_size: int = 600):
    """Train a byte-level BPE on the quickstart questions and save it as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )  # fmt: skip
    fast.chat_template = CHATML
    fast.save_pretrained(path)
    return fast


def build_tiny_llama(path: Path, seed: int = 0, pretrain_steps: int = 0) -> Path:
    """Save a random 2-layer Llama (hidden 32, 4 heads) with the tiny tokenizer to ``path``; with
    ``pretrain_steps`` > 0, then train it that many steps on the prompt formats (see :func:`pretrain`)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(path)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(path)
    if pretrain_steps:
        pretrain(path, pretrain_steps, seed)
    return path


def _format_examples(tokenizer, n: int, seed: int) -> list[str]:
    """Chat-formatted texts in dataswarms' generation and answer formats, from quickstart questions."""
    import random

    from dataswarms_core.prompts import answer_messages, generation_messages, numbered

    data = json.loads(_corpus_file())
    dev = data["dev"]
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        if i % 2 == 0:
            picked = [d["input"][:80] for d in rng.sample(dev, 6)]
            prompt = generation_messages(picked[:3], "grade-school math word problems", 3)
            reply = numbered(picked[3:])
        else:
            item = rng.choice(dev)
            prompt, reply = answer_messages(item["input"][:80]), item["output"]
        texts.append(
            tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": reply}], tokenize=False)
        )
    return texts


def _corpus_file() -> str:
    from importlib import resources

    return resources.files("dataswarms_core.builtin").joinpath("gsm8k_quickstart.json").read_text()


def pretrain(path: Path, steps: int = 150, seed: int = 0) -> None:
    """Fully fine-tune the tiny model a few seconds on the generation and answer formats, so that its
    samples contain numbered items (a random model's never parse) and the flow's scoring path is exercised."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    texts = _format_examples(tokenizer, 64, seed)
    for step in range(steps):
        batch = tokenizer(texts[(step * 8) % 64 : (step * 8) % 64 + 8], return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.save_pretrained(path)


def tiny_search_config(model_dir: Path, root: Path | str, name: str, **overrides):
    """The quickstart configuration shrunk to the tiny model: 3 generators, 1 LoRA test taker, 2 iterations,
    TF-IDF clusters, a few tokens per call. ``overrides`` use dotted keys (``"pso.max_iterations": 1``)."""
    from dataswarms_core.config_files import load_config

    values = {
        "model.base_model": str(model_dir),
        "storage.root": str(root),
        "run_name": name,
        "seed_generators.n_generators": 3,
        "seed_generators.embedding": "tfidf",
        "seed_generators.steps": 2,
        "seed_generators.batch_size": 2,
        "test_takers.n_adapters": 1,
        "test_takers.steps": 2,
        "generation.calls_per_generator": 2,
        "generation.max_new_tokens": 48,
        "scoring.answer_max_new_tokens": 6,
        "pso.max_iterations": 2,
        "export.items": 6,
        "copies.embedding_threshold": None,  # n-gram overlap only: no sentence encoder to load in tiny runs
    }
    values.update(overrides)
    return load_config("quickstart", values)


def hand_made_manifest(cfg, model_dir: Path, names: list[str], kind: str = "seed_generators", scale: float = 0.05):
    """PEFT adapters of the run's LoRA settings on ``model_dir``, every factor perturbed (``scale`` × a seeded
    normal, seed = the adapter's position) so that adapters differ, written as the SFT stage writes them (the
    run's cache folder ``_cache/<kind>/hand-made``, manifest last). Trains nothing; returns the manifest."""
    import torch
    from peft import get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    from dataswarms_core.adapters import lora_config, write_adapter
    from dataswarms_core.records import AdapterEntry, AdapterManifest
    from dataswarms_core.stages.layout import cache_store

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), lora_config(cfg.seed_generators.lora))
    start = get_peft_model_state_dict(model)
    adapter_config = {**model.peft_config["default"].to_dict(), "base_model_name_or_path": str(model_dir)}
    store = cache_store(cfg, kind, "hand-made")
    entries = {}
    for i, name in enumerate(names):
        g = torch.Generator().manual_seed(i)
        tensors = {k: t + scale * torch.randn(t.shape, generator=g) for k, t in start.items()}
        url = write_adapter(store, name, adapter_config, tensors)
        entries[name] = AdapterEntry(url=url, loss_first=1.0, loss_last=1.0, steps=0, seconds=0.0)
    manifest = AdapterManifest(kind=kind, adapters=entries)
    manifest.write(store, "manifest.json")
    return manifest
