"""The HF backend: batches mixing adapters give what each adapter gives alone; seeds reproduce."""

from pathlib import Path

import pytest
import torch

from dataswarms_core.adapters import attach_adapters
from dataswarms_core.generation import GenerationRequest, HFBackend
from dataswarms_core.models import load_base_model


def _random_adapter(model_dir: Path, seed: int):
    """An adapter with non-zero random A and B (PEFT initialises B to zero)."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    cfg = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), cfg)
    tensors = {k: v * 5 for k, v in get_peft_model_state_dict(peft).items()}
    return cfg.to_dict(), tensors


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    model, tokenizer = load_base_model(tiny_model_dir, device="cpu")
    adapters = {"a": _random_adapter(tiny_model_dir, 1), "b": _random_adapter(tiny_model_dir, 2)}
    return HFBackend(attach_adapters(model, adapters), tokenizer)


def _requests():
    texts = [
        "How many apples?",
        "A train leaves at noon. When does it arrive?",
        "2+2?",
        "Name a prime number.",
    ]
    return [
        GenerationRequest([{"role": "user", "content": t}], adapter=ad)
        for t, ad in zip(texts, ["a", "b", "__base__", "a"], strict=True)
    ]


def test_mixed_adapter_batch_equals_each_request_alone(backend):
    reqs = _requests()
    batched = backend.generate(reqs, max_new_tokens=12, temperature=0.0, batch_size=4)
    alone = [backend.generate([r], max_new_tokens=12, temperature=0.0, batch_size=1)[0] for r in reqs]
    assert batched == alone
    assert (
        len(
            set(
                batched[:1]
                + [
                    backend.generate(
                        [GenerationRequest(reqs[0].messages, "b")], max_new_tokens=12, temperature=0.0
                    )[0]
                ]
            )
        )
        == 2
    )  # adapters differ


def test_sampling_is_reproducible_from_the_seed(backend):
    reqs = _requests()
    one = backend.generate(reqs, max_new_tokens=10, temperature=1.0, top_p=1.0, seed=7, batch_size=2)
    assert one == backend.generate(reqs, max_new_tokens=10, temperature=1.0, top_p=1.0, seed=7, batch_size=2)
    assert one != backend.generate(reqs, max_new_tokens=10, temperature=1.0, top_p=1.0, seed=8, batch_size=2)


def test_next_token_probs_do_not_depend_on_padding(backend):
    reqs = _requests()
    ids = [5, 17, 42]
    batched = backend.next_token_probs(reqs, ids, batch_size=4)
    alone = torch.cat([backend.next_token_probs([r], ids, batch_size=1) for r in reqs])
    assert batched.shape == (4, 3)
    assert torch.allclose(batched, alone, atol=1e-5)
    full = backend.next_token_probs(reqs[:1], list(range(len(backend.tokenizer))), batch_size=1)
    assert full.sum().item() == pytest.approx(1.0, abs=1e-4)


def test_plain_model_refuses_adapter_requests(tiny_model_dir):
    model, tokenizer = load_base_model(tiny_model_dir, device="cpu")
    with pytest.raises(ValueError, match="without adapters"):
        HFBackend(model, tokenizer).generate(_requests(), max_new_tokens=2, temperature=0.0)


def test_replies_say_whether_they_hit_the_token_limit(backend):
    short = backend.generate(_requests()[:2], max_new_tokens=2, temperature=0.0)
    assert all(r.truncated for r in short)
    from dataswarms_core.generation import Reply

    assert isinstance(short[0], str) and isinstance(short[0], Reply)
