"""The vLLM generation backend (``model.backend: vllm``): one engine per process with LoRA enabled, every
adapter a PEFT folder served by a ``LoRARequest``, requests of all adapters in one batch (docs/method.md §2–3).

What vLLM needs is built here without importing vLLM, so it is tested on machines without it:

- :class:`AdapterFolders` writes each adapter as a PEFT folder and gives it a LoRA id. vLLM caches adapters by
  id, so an id is never reused for other bytes: every new (adapter name, content) pair gets a new id, name and
  folder; a folder is never rewritten. A particle that moved in the next iteration is therefore a new
  ``LoRARequest`` (a rewritten folder under an old id would serve the old weights).
- :func:`generation_requests` and :func:`probe_requests` turn :class:`~dataswarms_core.generation.GenerationRequest`
  rows into token-id prompts with their sampling settings, rendered with the same chat template and
  tokenisation as the Hugging Face backend. Each row is seeded on its own (``derive_seed(seed, "row", i)``),
  so an output does not depend on what else is in the batch.
- :func:`engine_lora_rank` picks the engine's ``max_lora_rank``: the smallest rank vLLM supports that holds the
  largest adapter rank.

The engine itself (:class:`VLLMBackend`, :func:`shared_engine`) needs vLLM and a CUDA device; without either the
backend is refused with one line naming the missing piece and the ``[gpu]`` extra. The engine is built once per
process and reused by every stage (and by both swarms).

The expected-score judge's next-token probabilities come from prompt log-probabilities: for each candidate
token t the prompt is extended by t and vLLM returns log p(t | prompt) over the whole vocabulary, the same
quantity the HF backend reads from its softmax. With prefix caching the shared prompt is computed once.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .adapters import BASE
from .errors import ModelError
from .seeding import derive_seed

# Values vLLM accepts for ``max_lora_rank`` (vllm/config/lora.py, 0.10–0.11).
SUPPORTED_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def engine_lora_rank(ranks: Sequence[int]) -> int:
    """The engine's ``max_lora_rank``: the smallest value in :data:`SUPPORTED_LORA_RANKS` ≥ every rank.

    Args:
        ranks: the LoRA ranks r of the adapters to serve (≥ 1); empty → 8 (vLLM's smallest useful default).

    Raises:
        ModelError: a rank above vLLM's largest supported ``max_lora_rank`` (naming both numbers).
    """
    need = max(ranks, default=8)
    for rank in SUPPORTED_LORA_RANKS:
        if rank >= need:
            return rank
    raise ModelError(
        f"backend 'vllm': LoRA rank {need} is larger than vLLM's largest max_lora_rank "
        f"{SUPPORTED_LORA_RANKS[-1]}; lower lora.r or use model.backend: hf"
    )


def adapter_digest(config: Mapping[str, Any], tensors: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an adapter's LoRA config and tensors (names, dtypes, shapes, bytes), in key order."""
    import torch

    h = hashlib.sha256(json.dumps(dict(config), sort_keys=True, default=str).encode())
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class LoRAHandle:
    """One adapter as vLLM serves it.

    Attributes:
        adapter: the adapter's name in the run (a particle, e.g. ``g0`` or ``t1``).
        lora_name: the ``LoRARequest`` name, ``<adapter>#<lora_id>``; unique in the process.
        lora_id: the ``LoRARequest`` id (≥ 1), never reused for other bytes.
        path: the PEFT folder vLLM reads (written once).
        rank: the adapter's LoRA rank r.
        digest: :func:`adapter_digest` of the bytes behind the id.
    """

    adapter: str
    lora_name: str
    lora_id: int
    path: Path
    rank: int
    digest: str


@dataclass
class AdapterFolders:
    """PEFT folders and LoRA ids for vLLM, under ``root`` (one per process).

    :meth:`register` returns the same handle for the same adapter name and bytes, and a new id, name and
    folder for anything else, so vLLM's by-id adapter cache can never serve stale weights. When an adapter
    name gets new bytes (a particle moved), its previous folder is deleted and its id retired for good (the
    same bytes coming back get a new id), so the disk holds one folder per adapter name.
    """

    root: Path
    _handles: dict[tuple[str, str], LoRAHandle] = field(default_factory=dict)
    _current: dict[str, LoRAHandle] = field(default_factory=dict)
    _next_id: int = 1

    def register(self, adapter: str, config: Mapping[str, Any], tensors: Mapping[str, Any]) -> LoRAHandle:
        """Write ``adapter`` (LoRA config dict, PEFT-named tensors) unless these bytes have an id already.

        Raises:
            ValueError: ``adapter`` is ``__base__`` (the base model has no LoRA request).
        """
        from .adapters import write_adapter
        from .storage import Store

        if adapter == BASE:
            raise ValueError(f"adapter name {BASE!r} is reserved for the base model")
        digest = adapter_digest(config, tensors)
        key = (adapter, digest)
        previous = self._current.get(adapter)
        if previous is not None and previous.digest != digest:  # the particle moved: retire its old id
            import shutil

            del self._handles[(adapter, previous.digest)]
            shutil.rmtree(previous.path, ignore_errors=True)
        if key not in self._handles:
            lora_id = self._next_id
            self._next_id += 1
            folder = f"{lora_id:06d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', adapter)}"
            write_adapter(Store(str(self.root)), folder, config, tensors)
            rank = int(config.get("r") or 8)
            self._handles[key] = LoRAHandle(
                adapter, f"{adapter}#{lora_id}", lora_id, self.root / folder, rank, digest
            )
        self._current[adapter] = self._handles[key]
        return self._handles[key]

    @property
    def handles(self) -> list[LoRAHandle]:
        """Every handle given out, in id order."""
        return sorted(self._handles.values(), key=lambda h: h.lora_id)


@dataclass(frozen=True)
class EngineRequest:
    """One vLLM request, built without vLLM.

    Attributes:
        prompt_token_ids: the prompt (chat template + reply prefix), tokenised as the HF backend does.
        sampling: keyword arguments of ``vllm.SamplingParams``.
        lora: the adapter's handle, or None for the base model.
    """

    prompt_token_ids: list[int]
    sampling: dict[str, Any]
    lora: LoRAHandle | None


def render_ids(tokenizer: Any, request: Any) -> list[int]:
    """Token ids of a request's prompt (:func:`~dataswarms_core.generation.render_prompt`), tokenised without
    added special tokens, as the HF backend encodes it."""
    from .generation import render_prompt

    return list(tokenizer(render_prompt(tokenizer, request), add_special_tokens=False)["input_ids"])


def _handle(request: Any, handles: Mapping[str, LoRAHandle]) -> LoRAHandle | None:
    if request.adapter == BASE:
        return None
    if request.adapter not in handles:
        raise ValueError(f"adapter {request.adapter!r} requested but not loaded (loaded: {sorted(handles)})")
    return handles[request.adapter]


def generation_requests(
    requests: Sequence[Any], tokenizer: Any, handles: Mapping[str, LoRAHandle], *, max_new_tokens: int,
    temperature: float, top_p: float, seed: int, stop_ids: Sequence[int],
) -> list[EngineRequest]:  # fmt: skip
    """vLLM requests for :meth:`GenerationBackend.generate` rows, in order.

    Row i samples with seed ``derive_seed(seed, "row", i)``; ``temperature == 0`` is greedy (top_p 1).

    Raises:
        ValueError: a row names an adapter that is not in ``handles``.
    """
    out = []
    for i, request in enumerate(requests):
        sampling = {
            "max_tokens": int(max_new_tokens),
            "temperature": float(temperature),
            "top_p": float(top_p) if temperature > 0 else 1.0,
            "seed": derive_seed(seed, "row", i),
            "stop_token_ids": list(stop_ids),
            "skip_special_tokens": True,
        }
        out.append(EngineRequest(render_ids(tokenizer, request), sampling, _handle(request, handles)))
    return out


def probe_requests(
    requests: Sequence[Any], token_ids: Sequence[int], tokenizer: Any, handles: Mapping[str, LoRAHandle]
) -> list[EngineRequest]:
    """vLLM requests for :meth:`GenerationBackend.next_token_probs`: for row i and candidate token j (row-major,
    ``len(requests) * len(token_ids)`` requests), the prompt extended by token j, asking for prompt
    log-probabilities and one (discarded) generated token.
    """
    out = []
    for request in requests:
        ids, lora = render_ids(tokenizer, request), _handle(request, handles)
        for token in token_ids:
            sampling = {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
            out.append(EngineRequest([*ids, int(token)], sampling, lora))
    return out


def probe_probability(prompt_logprobs: Sequence[Any], token: int) -> float:
    """p(token | prompt) from a probe request's ``prompt_logprobs`` (one mapping per prompt position, the
    first None): the last position's entry for ``token``, exponentiated. Missing → NaN (counted by the judge).
    """
    last = prompt_logprobs[-1] if prompt_logprobs else None
    entry = last.get(token) if last else None
    if entry is None:
        return math.nan
    return math.exp(float(getattr(entry, "logprob", entry)))


def check_vllm_available() -> None:
    """Raise the one-line error when vLLM or a CUDA device is missing.

    Raises:
        ModelError: naming the missing piece and ``pip install 'dataswarms[gpu]'``.
    """
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise ModelError(
            "backend 'vllm' needs the package vllm, not installed: pip install 'dataswarms[gpu]' (CUDA GPU)"
        )
    import torch

    if not torch.cuda.is_available():
        raise ModelError(
            "backend 'vllm' needs a CUDA GPU and none is available (torch.cuda.is_available() is False); "
            "use model.backend: hf on this machine, or run where 'dataswarms[gpu]' has a GPU"
        )


@dataclass
class _Engine:
    llm: Any
    tokenizer: Any
    max_lora_rank: int
    max_loras: int
    folders: AdapterFolders
    stop_ids: list[int]


_ENGINES: dict[tuple[Any, ...], _Engine] = {}


def shared_engine(model_path: Path, model: Any, *, max_lora_rank: int, max_loras: int) -> _Engine:
    """The process's vLLM engine for ``model_path`` (built on first use, then reused by every stage; an
    engine of another model or other settings is released first: one engine holds the GPU at a time).

    Args:
        model_path: the local model folder.
        model: the run's ``model`` section (dtype, ``vllm`` settings).
        max_lora_rank / max_loras: what this stage needs; the first build sizes the engine.

    Raises:
        ModelError: vLLM or CUDA missing; this stage needs a larger rank than the engine was built with.
    """
    check_vllm_available()
    import atexit
    import shutil
    import tempfile

    settings = model.vllm
    key = (
        str(model_path),
        model.dtype,
        settings.gpu_memory_utilization,
        settings.max_model_len,
        settings.enforce_eager,
    )
    engine = _ENGINES.get(key)
    if engine is not None:
        if max_lora_rank > engine.max_lora_rank:
            raise ModelError(
                f"backend 'vllm': adapters of rank {max_lora_rank} but this process's engine was built with "
                f"max_lora_rank {engine.max_lora_rank}; set model.vllm.max_lora_rank: {max_lora_rank}"
            )
        return engine
    _release_engines()  # one engine at a time: another model's engine would hold the GPU memory it needs
    from vllm import LLM

    from .generation import stop_token_ids
    from .models import load_tokenizer

    rank = engine_lora_rank([max_lora_rank, settings.max_lora_rank or 0])
    loras = max(max_loras, settings.max_loras or 0, 1)
    llm = LLM(
        model=str(model_path), dtype=model.dtype, enable_lora=True, max_loras=loras, max_lora_rank=rank,
        max_cpu_loras=max(2 * loras, 8), gpu_memory_utilization=settings.gpu_memory_utilization,
        max_model_len=settings.max_model_len, enforce_eager=settings.enforce_eager, enable_prefix_caching=True,
        seed=0,
    )  # fmt: skip
    tokenizer = load_tokenizer(model_path)
    generation = model_path / "generation_config.json"
    eos = json.loads(generation.read_text()).get("eos_token_id") if generation.is_file() else None
    root = Path(tempfile.mkdtemp(prefix="dataswarms-vllm-adapters-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    folders = AdapterFolders(root)
    engine = _Engine(llm, tokenizer, rank, loras, folders, sorted(stop_token_ids(tokenizer, eos)))
    _ENGINES[key] = engine
    return engine


def _release_engines() -> None:
    """Drop the process's engines (another model is needed, e.g. ``dataswarms evaluate`` of several local
    models): vLLM's engine core shuts down when the ``LLM`` is collected; the CUDA cache is emptied."""
    if not _ENGINES:
        return
    import gc

    import torch

    _ENGINES.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class VLLMBackend:
    """:class:`~dataswarms_core.generation.GenerationBackend` over the process's vLLM engine.

    Args:
        engine: from :func:`shared_engine`.
        handles: adapter name → its :class:`LoRAHandle` (registered in the engine's :class:`AdapterFolders`).
    """

    supports_reply_prefix = True  # prompts are token ids we render: a reply can be opened with a prefix

    def __init__(self, engine: _Engine, handles: Mapping[str, LoRAHandle]) -> None:
        self.engine = engine
        self.handles = dict(handles)

    def _run(self, built: Sequence[EngineRequest]) -> list[Any]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        if not built:
            return []
        prompts = [{"prompt_token_ids": r.prompt_token_ids} for r in built]
        params = [SamplingParams(**r.sampling) for r in built]
        loras = [
            None if r.lora is None else LoRARequest(r.lora.lora_name, r.lora.lora_id, str(r.lora.path))
            for r in built
        ]
        return self.engine.llm.generate(prompts, sampling_params=params, lora_request=loras, use_tqdm=False)

    def generate(
        self, requests: Sequence[Any], *, max_new_tokens: int, temperature: float, top_p: float = 1.0,
        seed: int = 0, batch_size: int = 16, return_exceptions: bool = False,
    ) -> list[str]:  # fmt: skip
        """One reply per request, in order, all rows in one engine call (vLLM batches them itself;
        ``batch_size`` is accepted for the protocol). Replies are stripped
        :class:`~dataswarms_core.generation.Reply` strings, ``truncated`` when vLLM stopped at the token limit.
        """
        from .generation import Reply

        built = generation_requests(
            requests, self.engine.tokenizer, self.handles, max_new_tokens=max_new_tokens,
            temperature=temperature, top_p=top_p, seed=seed, stop_ids=self.engine.stop_ids,
        )  # fmt: skip
        replies = []
        for out in self._run(built):
            completion = out.outputs[0]
            replies.append(Reply(completion.text.strip(), truncated=completion.finish_reason == "length"))
        return replies

    def next_token_probs(
        self, requests: Sequence[Any], token_ids: Sequence[int], *, batch_size: int = 16
    ) -> Any:
        """Probabilities (len(requests), len(token_ids)), float32, of each token at the reply's next position
        (prompt log-probabilities of :func:`probe_requests`; NaN where vLLM returned none)."""
        import torch

        outs = self._run(probe_requests(requests, token_ids, self.engine.tokenizer, self.handles))
        k = len(token_ids)
        values = [probe_probability(o.prompt_logprobs, int(token_ids[i % k])) for i, o in enumerate(outs)]
        return torch.tensor(values, dtype=torch.float32).reshape(len(requests), k)


def load_vllm(model_path: Path, adapters: Mapping[str, Any], model: Any, max_loras: int | None = None) -> Any:
    """The ``vllm`` local backend's factory (see :mod:`dataswarms_core.backends`): the shared engine, the
    adapters written and registered, a :class:`VLLMBackend` serving them.

    Raises:
        ModelError: vLLM or CUDA missing (with the ``[gpu]`` extra), or a rank the engine cannot serve.
    """
    from .backends import LoadedModel

    ranks = [int(cfg.get("r") or 8) for cfg, _ in adapters.values()]
    engine = shared_engine(
        model_path, model, max_lora_rank=max(ranks, default=8), max_loras=max(max_loras or 0, len(adapters))
    )
    handles = {name: engine.folders.register(name, cfg, tensors) for name, (cfg, tensors) in adapters.items()}
    return LoadedModel(VLLMBackend(engine, handles), engine.tokenizer)
