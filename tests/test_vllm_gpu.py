"""The vLLM backend on a real engine (marker ``gpu``): SmolLM2-135M-Instruct converted to safetensors, four
LoRA adapters. Skipped, with the reason, without a CUDA device or without vLLM (``pip install
'dataswarms[gpu]'``); run with ``pytest -m gpu tests/test_vllm_gpu.py`` on a GPU machine.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from dataswarms_core.adapters import BASE
from dataswarms_core.backends import load_local_backend
from dataswarms_core.config import ModelConfig
from dataswarms_core.generation import GenerationRequest

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="needs vLLM: pip install 'dataswarms[gpu]'"
    ),
]

LORA = {
    "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "peft_type": "LORA",
    "task_type": "CAUSAL_LM", "bias": "none", "lora_dropout": 0.0,
}  # fmt: skip
PROMPT = [{"role": "user", "content": "Write one short math word problem about apples."}]


def adapter(seed: int, scale: float) -> dict[str, torch.Tensor]:
    """SmolLM2-135M q/v LoRA tensors (30 layers, hidden 576, 3 KV heads × 64); ``scale`` 0 → a zero adapter."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for layer in range(30):
        for module, out_features in (("q_proj", 576), ("v_proj", 192)):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            out[f"{prefix}.lora_A.weight"] = torch.randn(8, 576, generator=gen) * 0.05
            out[f"{prefix}.lora_B.weight"] = torch.randn(out_features, 8, generator=gen) * scale
    return out


@pytest.fixture(scope="module")
def smollm2():
    from dataswarms_core.models import resolve_model

    return resolve_model("smollm2-135m-instruct")


def greedy(loaded, names):
    rows = [GenerationRequest(PROMPT, n) for n in names]
    return loaded.backend.generate(rows, max_new_tokens=40, temperature=0.0, seed=0)


def test_four_adapters_differ_and_a_zero_adapter_is_the_base_model(smollm2):
    model = ModelConfig(base_model=str(smollm2), backend="vllm", vllm={"gpu_memory_utilization": 0.3})
    adapters = {f"g{j}": (LORA, adapter(j, 0.5)) for j in range(4)}
    adapters["zero"] = (LORA, adapter(9, 0.0))
    loaded = load_local_backend(smollm2, adapters, model, max_loras=5)
    out = greedy(loaded, [BASE, "g0", "g1", "g2", "g3", "zero"])
    print("vLLM greedy outputs:", [o[:60] for o in out])
    assert len(set(out[1:5])) == 4, "each adapter writes its own text"
    assert all(o != out[0] for o in out[1:5])
    assert out[5] == out[0], "a zero adapter reproduces the base model's greedy output"
    sampled = loaded.backend.generate(
        [GenerationRequest(PROMPT, "g0")] * 2, max_new_tokens=40, temperature=1.0, top_p=0.95, seed=7
    )
    again = loaded.backend.generate(
        [GenerationRequest(PROMPT, "g0")] * 2, max_new_tokens=40, temperature=1.0, top_p=0.95, seed=7
    )
    assert sampled == again and sampled[0] != sampled[1], "rows are seeded on their own, reproducibly"


def test_the_next_iteration_serves_the_moved_particle(smollm2):
    """The same particle rewritten in the next iteration gets a new LoRA id: vLLM serves the new weights."""
    model = ModelConfig(base_model=str(smollm2), backend="vllm", vllm={"gpu_memory_utilization": 0.3})
    first = load_local_backend(smollm2, {"g0": (LORA, adapter(1, 0.5))}, model)
    before = greedy(first, ["g0"])[0]
    moved = load_local_backend(smollm2, {"g0": (LORA, adapter(2, 0.5))}, model)
    after = greedy(moved, ["g0"])[0]
    assert first.backend.engine is moved.backend.engine, "one engine per process"
    assert moved.backend.handles["g0"].lora_id != first.backend.handles["g0"].lora_id
    assert after != before


def test_next_token_probabilities_match_the_hf_backend(smollm2):
    """The expected-score judge's probabilities through vLLM (prompt log-probabilities) agree with the HF
    backend's softmax on the same prompts and adapter."""
    from dataswarms_core.backends import _hf_backend

    model = ModelConfig(base_model=str(smollm2), backend="vllm", vllm={"gpu_memory_utilization": 0.3})
    adapters = {"t0": (LORA, adapter(3, 0.5))}
    vllm_loaded = load_local_backend(smollm2, adapters, model)
    hf = _hf_backend(smollm2, adapters, ModelConfig(base_model=str(smollm2), device="cuda"))
    tokenizer = hf.tokenizer
    digits = [tokenizer.convert_tokens_to_ids(str(d)) for d in range(1, 10)]
    rows = [
        GenerationRequest([{"role": "user", "content": "Rate 1-9: 2+2=4."}], name, reply_prefix="Score: ")
        for name in (BASE, "t0")
    ]
    ours = vllm_loaded.backend.next_token_probs(rows, digits)
    reference = hf.backend.next_token_probs(rows, digits)
    print("vLLM:", ours, "\nHF:", reference)
    assert ours.shape == (2, 9) and not torch.isnan(ours).any()
    assert torch.allclose(ours, reference, atol=2e-3)
