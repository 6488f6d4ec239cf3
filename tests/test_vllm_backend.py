"""The vLLM backend without vLLM: request building, LoRA ids, engine sizing and reuse, errors.

vLLM itself is not installed here (no CUDA); the engine is replaced by a recording fake with vLLM's call and
output shapes to test the backend's plumbing. The real engine runs in tests/test_vllm_gpu.py (marker gpu).
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass

import pytest
import torch

from dataswarms_core import vllm_backend as vb
from dataswarms_core.adapters import BASE, read_adapter
from dataswarms_core.errors import ModelError
from dataswarms_core.generation import GenerationRequest, HFBackend, stop_token_ids
from dataswarms_core.models import load_tokenizer
from dataswarms_core.seeding import derive_seed
from dataswarms_core.storage import Store

LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "peft_type": "LORA"}


def particle(seed: int, scale: float = 0.01) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        f"base_model.model.model.layers.{i}.self_attn.{m}.lora_{ab}.weight": torch.randn(
            *shape, generator=gen
        )
        * scale
        for i in range(2)
        for m in ("q_proj", "v_proj")
        for ab, shape in (("A", (4, 32)), ("B", (32, 4)))
    }


def test_engine_lora_rank_is_the_smallest_supported_value():
    assert vb.engine_lora_rank([4, 8]) == 8
    assert vb.engine_lora_rank([9]) == 16
    assert vb.engine_lora_rank([300]) == 320
    assert vb.engine_lora_rank([512]) == 512
    assert vb.engine_lora_rank([]) == 8
    with pytest.raises(ModelError, match=r"LoRA rank 600 is larger than vLLM's largest max_lora_rank 512"):
        vb.engine_lora_rank([8, 600])


def test_lora_ids_are_never_reused_for_new_bytes(tmp_path):
    """Every (particle, iteration) whose bytes changed gets a new id, name and folder; unchanged bytes keep
    theirs; no folder is ever rewritten; a moved particle's old folder is deleted and its id retired."""
    folders = vb.AdapterFolders(tmp_path)
    seen: dict[int, str] = {}
    names = set()
    for iteration in range(3):
        for j in range(4):
            h = folders.register(f"g{j}", LORA, particle(100 * iteration + j))
            assert h.lora_id not in seen  # a new id for new bytes
            seen[h.lora_id] = h.digest
            names.add(h.lora_name)
            assert h.lora_name == f"g{j}#{h.lora_id}" and h.rank == 4
    assert sorted(seen) == list(range(1, 13)) and len(names) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i:06d}-g{i - 9}" for i in range(9, 13)]
    current = folders.register("g0", LORA, particle(200))  # g0 did not move: the same request, untouched
    written = (current.path / "adapter_model.safetensors").stat().st_mtime_ns
    assert current.lora_id == 9 and folders.register("g0", LORA, particle(200)) == current
    assert (current.path / "adapter_model.safetensors").stat().st_mtime_ns == written
    back = folders.register(
        "g0", LORA, particle(0)
    )  # g0 back at its iteration-0 bytes: retired id 1 stays retired
    assert back.lora_id == 13 and not current.path.exists()
    # the same bytes under another particle's name are another LoRA request
    other = folders.register("g9", LORA, particle(0))
    assert other.lora_id == 14 and other.path != back.path
    # a changed LoRA config alone is new bytes for vLLM too
    assert folders.register("g9", {**LORA, "lora_alpha": 16}, particle(0)).lora_id == 15
    # each folder is a PEFT adapter holding exactly its bytes
    config, tensors = read_adapter(Store(str(tmp_path)), back.path.name)
    assert config["r"] == 4 and all(torch.equal(tensors[k], v) for k, v in particle(0).items())
    with pytest.raises(ValueError, match="reserved for the base model"):
        folders.register(BASE, LORA, particle(0))


def test_digest_sees_one_changed_value_and_dtype():
    x = particle(1)
    d = vb.adapter_digest(LORA, x)
    y = {k: v.clone() for k, v in x.items()}
    first = sorted(y)[0]
    y[first].view(-1)[0] = torch.nextafter(y[first].view(-1)[0], torch.tensor(1.0))
    assert vb.adapter_digest(LORA, y) != d
    assert vb.adapter_digest(LORA, {k: v.to(torch.bfloat16) for k, v in x.items()}) != d
    assert vb.adapter_digest(LORA, dict(reversed(list(x.items())))) == d  # key order does not matter


def test_generation_requests_match_the_hf_prompts(tiny_model_dir, tmp_path):
    tokenizer = load_tokenizer(tiny_model_dir)
    folders = vb.AdapterFolders(tmp_path)
    handles = {
        "g0": folders.register("g0", LORA, particle(0)),
        "g1": folders.register("g1", LORA, particle(1)),
    }
    requests = [
        GenerationRequest([{"role": "user", "content": "What is 2 + 3?"}], "g0"),
        GenerationRequest([{"role": "user", "content": "Write a question."}], "g1", reply_prefix="1."),
        GenerationRequest([{"role": "user", "content": "Hi"}], BASE),
    ]
    built = vb.generation_requests(
        requests, tokenizer, handles, max_new_tokens=32, temperature=0.7, top_p=0.9, seed=5, stop_ids=[0, 2]
    )
    hf = HFBackend(torch.nn.Linear(1, 1), tokenizer)
    for request, engine_request in zip(requests, built, strict=True):
        expected = tokenizer(hf.render(request), add_special_tokens=False)["input_ids"]
        assert engine_request.prompt_token_ids == expected
    assert [r.lora for r in built] == [handles["g0"], handles["g1"], None]
    assert [r.sampling["seed"] for r in built] == [derive_seed(5, "row", i) for i in range(3)]
    assert built[0].sampling == {
        "max_tokens": 32, "temperature": 0.7, "top_p": 0.9, "seed": derive_seed(5, "row", 0),
        "stop_token_ids": [0, 2], "skip_special_tokens": True,
    }  # fmt: skip
    greedy = vb.generation_requests(
        requests[:1], tokenizer, handles, max_new_tokens=8, temperature=0.0, top_p=0.5, seed=5, stop_ids=[]
    )
    assert greedy[0].sampling["temperature"] == 0.0 and greedy[0].sampling["top_p"] == 1.0
    with pytest.raises(ValueError, match=r"adapter 'g7' requested but not loaded \(loaded: \['g0', 'g1'\]\)"):
        vb.generation_requests(
            [GenerationRequest([{"role": "user", "content": "x"}], "g7")], tokenizer, handles,
            max_new_tokens=8, temperature=0.0, top_p=1.0, seed=0, stop_ids=[],
        )  # fmt: skip
    assert stop_token_ids(tokenizer, [7, tokenizer.eos_token_id]) == {
        tokenizer.pad_token_id,
        tokenizer.eos_token_id,
        7,
    }


def test_probe_requests_extend_each_prompt_by_each_candidate(tiny_model_dir, tmp_path):
    tokenizer = load_tokenizer(tiny_model_dir)
    handles = {"t0": vb.AdapterFolders(tmp_path).register("t0", LORA, particle(0))}
    requests = [
        GenerationRequest([{"role": "user", "content": "Rate it."}], "t0", reply_prefix="Score: "),
        GenerationRequest([{"role": "user", "content": "Rate this."}], BASE),
    ]
    built = vb.probe_requests(requests, [11, 12, 13], tokenizer, handles)
    assert len(built) == 6
    for i, request in enumerate(requests):
        ids = vb.render_ids(tokenizer, request)
        for j, token in enumerate([11, 12, 13]):
            r = built[3 * i + j]
            assert r.prompt_token_ids == [*ids, token]
            assert r.sampling == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
            assert r.lora == (handles["t0"] if i == 0 else None)


@dataclass
class _Logprob:
    logprob: float


def test_probe_probability_reads_the_last_position():
    logprobs = [None, {5: _Logprob(-0.1)}, {11: _Logprob(math.log(0.25)), 3: _Logprob(-0.5)}]
    assert vb.probe_probability(logprobs, 11) == pytest.approx(0.25)
    assert math.isnan(vb.probe_probability(logprobs, 99))
    assert math.isnan(vb.probe_probability([], 11))


def test_without_vllm_the_backend_is_refused_in_one_line(tiny_model_dir, monkeypatch):
    from dataswarms_core.backends import load_local_backend
    from dataswarms_core.config import ModelConfig

    monkeypatch.setitem(sys.modules, "vllm", None)  # not importable, whether installed or not
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    with pytest.raises(
        ModelError,
        match=r"^backend 'vllm' needs the package\(s\) vllm, not installed: pip install 'dataswarms\[gpu\]'$",
    ):
        load_local_backend(tiny_model_dir, {}, ModelConfig(backend="vllm"))
    with pytest.raises(ModelError, match=r"pip install 'dataswarms\[gpu\]'"):
        vb.check_vllm_available()


def test_without_cuda_the_backend_is_refused_in_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a)
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match=r"^backend 'vllm' needs a CUDA GPU and none is available"):
        vb.check_vllm_available()


def test_config_refuses_ranks_and_max_loras_the_engine_cannot_serve():
    from dataswarms_core.config import RunConfig

    base = {"model": {"backend": "vllm"}}
    with pytest.raises(
        ValueError,
        match=r"seed_generators.lora.r = 600 is larger than the vLLM engine allows \(max_lora_rank 512",
    ):
        RunConfig.model_validate({**base, "seed_generators": {"lora": {"r": 600}}})
    with pytest.raises(
        ValueError,
        match=r"test_takers.lora.r = 32 is larger than the vLLM engine allows \(max_lora_rank 16\)",
    ):
        RunConfig.model_validate(
            {"model": {"backend": "vllm", "vllm": {"max_lora_rank": 16}}, "test_takers": {"lora": {"r": 32}}}
        )
    cfg = RunConfig.model_validate(base)
    n = cfg.max_adapters_per_stage()
    assert n == max(cfg.seed_generators.n_generators, cfg.test_takers.n_adapters)
    with pytest.raises(ValueError, match=rf"model.vllm.max_loras = 1 is smaller than the {n} adapters"):
        RunConfig.model_validate({"model": {"backend": "vllm", "vllm": {"max_loras": 1}}})
    assert (
        RunConfig.model_validate({"seed_generators": {"lora": {"r": 600}}}).model.backend == "hf"
    )  # hf: no limit


class _FakeLLM:
    """Records what the backend asks; answers like vLLM's ``RequestOutput`` (text, finish_reason,
    prompt_logprobs). The reply names the LoRA request and the prompt length, so routing is visible."""

    built: list[dict] = []

    def __init__(self, **kwargs):
        type(self).built.append(kwargs)
        self.calls = []

    def generate(self, prompts, sampling_params, lora_request, use_tqdm):
        self.calls.append((prompts, sampling_params, lora_request))
        outs = []
        for p, s, lora in zip(prompts, sampling_params, lora_request, strict=True):
            who = "base" if lora is None else f"{lora.lora_name}/{lora.lora_int_id}"
            text = f" {who}:{len(p['prompt_token_ids'])} "
            finish = "length" if s.kw["max_tokens"] < 4 else "stop"
            last = {p["prompt_token_ids"][-1]: _Logprob(math.log(0.5 if lora is None else 0.25))}
            outs.append(
                types.SimpleNamespace(
                    outputs=[types.SimpleNamespace(text=text, finish_reason=finish)],
                    prompt_logprobs=[None, last] if "prompt_logprobs" in s.kw else None,
                )
            )
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = _FakeLLM
    module.SamplingParams = lambda **kw: types.SimpleNamespace(kw=kw)
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, lora_id, path: types.SimpleNamespace(
        lora_name=name, lora_int_id=lora_id, lora_path=path
    )
    for name, mod in (("vllm", module), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a)
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(vb, "_ENGINES", {})
    _FakeLLM.built = []
    return _FakeLLM


def test_one_engine_per_process_serves_every_stage(fake_vllm, tiny_model_dir):
    """Two stages (generators, then the test takers of the next iteration) load through the registry: one
    engine is built, sized by the run's larger swarm and the adapters' rank; moved particles get new ids."""
    from dataswarms_core.backends import load_local_backend
    from dataswarms_core.config import ModelConfig

    model = ModelConfig(backend="vllm", vllm={"gpu_memory_utilization": 0.5})
    gens = load_local_backend(
        tiny_model_dir, {f"g{j}": (LORA, particle(j)) for j in range(4)}, model, max_loras=6
    )
    takers = load_local_backend(
        tiny_model_dir, {f"t{j}": (LORA, particle(10 + j)) for j in range(2)}, model, max_loras=6
    )
    moved = load_local_backend(
        tiny_model_dir, {f"g{j}": (LORA, particle(20 + j)) for j in range(4)}, model, max_loras=6
    )
    assert len(fake_vllm.built) == 1
    built = fake_vllm.built[0]
    assert built["enable_lora"] and built["max_loras"] == 6 and built["max_lora_rank"] == 8
    assert built["gpu_memory_utilization"] == 0.5 and built["model"] == str(tiny_model_dir)
    assert gens.backend.engine is takers.backend.engine is moved.backend.engine
    ids = [h.lora_id for b in (gens, takers, moved) for h in b.backend.handles.values()]
    assert ids == list(range(1, 11))

    rows = [GenerationRequest([{"role": "user", "content": f"q{i}"}], f"g{i % 4}") for i in range(8)]
    rows.append(GenerationRequest([{"role": "user", "content": "q"}], BASE))
    replies = moved.backend.generate(rows, max_new_tokens=16, temperature=0.8, top_p=0.95, seed=3)
    assert len(replies) == 9 and [r.split(":")[0] for r in replies[:4]] == [
        "g0#7/7",
        "g1#8/8",
        "g2#9/9",
        "g3#10/10",
    ]
    assert replies[8].startswith("base:") and replies[0] == replies[0].strip() and not replies[0].truncated
    assert len(moved.backend.engine.llm.calls) == 1  # every adapter's rows in one engine call
    cut = moved.backend.generate(rows[:1], max_new_tokens=2, temperature=0.0, seed=3)
    assert cut[0].truncated

    probs = takers.backend.next_token_probs(
        [
            GenerationRequest([{"role": "user", "content": "r"}], "t1"),
            GenerationRequest([{"role": "user", "content": "r"}]),
        ],
        [11, 12, 13],
    )
    assert probs.shape == (2, 3) and probs.dtype == torch.float32
    assert torch.allclose(probs, torch.tensor([[0.25] * 3, [0.5] * 3]))

    other = load_local_backend(tiny_model_dir, {}, ModelConfig(backend="vllm", dtype="bfloat16"))
    assert len(fake_vllm.built) == 2 and other.backend.engine is not gens.backend.engine
    assert list(vb._ENGINES.values()) == [other.backend.engine]  # the first engine was released
    load_local_backend(tiny_model_dir, {f"g{j}": (LORA, particle(j)) for j in range(4)}, model, max_loras=6)
    with pytest.raises(
        ModelError, match=r"adapters of rank 32 but this process's engine was built with max_lora_rank 8"
    ):
        load_local_backend(tiny_model_dir, {"g0": ({**LORA, "r": 32}, particle(0))}, model)
