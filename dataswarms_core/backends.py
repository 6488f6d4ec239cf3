"""Generation backends by name (docs/method.md §2–3): local ones load the base model with the run's adapters,
endpoint ones talk to a served model.

- ``local`` (chosen by ``model.backend``): ``(model_path, adapters, model: ModelConfig) -> LoadedModel``.
- ``endpoint`` (for an ``endpoint:`` section): ``(endpoint: EndpointConfig, name: str | None) ->
  GenerationBackend``.

A backend's ``needs`` are the Python packages it imports (lazily, inside its factory). When one is missing,
:func:`load_local_backend` / :func:`endpoint_backend` raise a one-line :class:`ModelError` naming it and
the install command (the pip extra in the entry's ``pip_extra``, e.g. ``pip install 'dataswarms[gpu]'``).
Whether a backend honours sampling seeds is said in its summary.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ModelError
from .registry import Entry, Registry

if TYPE_CHECKING:
    from torch import Tensor

    from .config import EndpointConfig, ModelConfig
    from .generation import GenerationBackend

LOCAL, ENDPOINT = "local", "endpoint"


@dataclass(frozen=True)
class LoadedModel:
    """A loaded local backend.

    Attributes:
        backend: serves the base model (adapter ``"__base__"``) and every attached adapter by name.
        tokenizer: the base model's tokenizer (the expected-score judge reads its digit tokens).
    """

    backend: GenerationBackend
    tokenizer: Any


AdapterSet = Mapping[str, "tuple[dict[str, Any], dict[str, Tensor]]"]  # name → (LoRA config, tensors)
BACKENDS: Registry[Callable[..., Any]] = Registry("backend")


def missing_packages_error(backend: str, packages: Iterable[str], pip_extra: str | None = None) -> ModelError:
    """The one-line error for a backend whose packages are not installed.

    Args:
        backend: the backend's name.
        packages: the missing import names.
        pip_extra: the project's extra that installs them (``"gpu"``), or None to name the packages.
    """
    packages = list(packages)
    hint = f"pip install 'dataswarms[{pip_extra}]'" if pip_extra else f"pip install {' '.join(packages)}"
    return ModelError(
        f"backend {backend!r} needs the package(s) {', '.join(packages)}, not installed: {hint}"
    )


def _checked(name: str, kind: str, where: str) -> Entry[Callable[..., Any]]:
    entry = BACKENDS.get(name)
    if entry.extra.get("kind") != kind:
        known = [e.name for e in BACKENDS if e.extra.get("kind") == kind]
        raise ConfigError(
            f"{where}: backend {name!r} is a {entry.extra.get('kind')} backend; expected a {kind} one: "
            f"{', '.join(known)}"
        )
    missing = [p for p in sorted(entry.needs) if importlib.util.find_spec(p) is None]
    if missing:
        raise missing_packages_error(name, missing, entry.extra.get("pip_extra"))
    return entry


def local_backend_names() -> list[str]:
    """The registered local backends (valid values of ``model.backend``)."""
    return [e.name for e in BACKENDS if e.extra.get("kind") == LOCAL]


def load_local_backend(
    model_path: str | Path, adapters: AdapterSet, model_config: ModelConfig, max_loras: int | None = None
) -> LoadedModel:
    """Load the base model with ``adapters`` through the backend named by ``model_config.backend``.

    Args:
        model_path: the resolved local model folder (``run.json``'s ``model_path``).
        adapters: adapter name → (LoRA config dict, PEFT-named tensors); may be empty (base model only).
        model_config: the run's ``model`` section (``backend``, ``dtype``, ``device``, ``vllm``).
        max_loras: the most adapters any stage of this process serves at once (sizes a vLLM engine built
            once per process; None: ``len(adapters)``). The ``hf`` backend ignores it.

    Raises:
        UnknownNameError / ConfigError: an unknown or non-local backend name.
        ModelError: a package the backend needs is missing (with the install command), or loading failed.
    """
    entry = _checked(model_config.backend, LOCAL, "model.backend")
    if entry.extra.get("max_loras"):
        return entry.impl(Path(model_path), adapters, model_config, max_loras=max_loras)
    return entry.impl(Path(model_path), adapters, model_config)


def endpoint_backend(endpoint: EndpointConfig, name: str | None = None, backend: str = "openai") -> Any:
    """A :class:`~dataswarms_core.generation.GenerationBackend` for an endpoint model.

    Args:
        endpoint: the ``endpoint:`` section (URL, model, key variable, timeout, retries, concurrency).
        name: how requests address the model (a test taker's name); None: only ``"__base__"``.
        backend: the endpoint backend's registered name.

    Raises:
        UnknownNameError / ConfigError: an unknown or non-endpoint backend name.
        ModelError: a package the backend needs is missing.
    """
    return _checked(backend, ENDPOINT, "endpoint").impl(endpoint, name)


@BACKENDS.register(
    "hf", source="docs/method.md §2", kind=LOCAL, needs=("torch", "transformers", "peft"),
    options=("model.base_model", "model.dtype", "model.device"),
    summary=(
        "transformers causal LM with the run's LoRA adapters attached through PEFT; one loaded model, rows "
        "of a batch may use different adapters; sampling seeded per batch (reproducible on one machine)"
    ),
)  # fmt: skip
def _hf_backend(model_path: Path, adapters: AdapterSet, model: ModelConfig) -> LoadedModel:
    from .adapters import attach_adapters
    from .generation import HFBackend
    from .models import load_base_model

    base, tokenizer = load_base_model(model_path, model.dtype, model.device)
    if adapters:
        base = attach_adapters(base, adapters)
    return LoadedModel(HFBackend(base, tokenizer), tokenizer)


@BACKENDS.register(
    "vllm", source="docs/method.md §2", kind=LOCAL, needs=("vllm",), pip_extra="gpu", max_loras=True,
    options=("model.base_model", "model.dtype", "model.vllm"),
    summary=(
        "vLLM engine with LoRA (CUDA GPU, `pip install 'dataswarms[gpu]'`): one engine per process shared by "
        "every stage, each adapter a PEFT folder under a LoRA id never reused for other bytes, rows of all "
        "adapters in one batch; sampling seeded per row"
    ),
)  # fmt: skip
def _vllm_backend(
    model_path: Path, adapters: AdapterSet, model: ModelConfig, max_loras: int | None = None
) -> LoadedModel:
    from .vllm_backend import load_vllm

    return load_vllm(model_path, adapters, model, max_loras=max_loras)


@BACKENDS.register(
    "openai", source="docs/method.md §3", kind=ENDPOINT, needs=("openai",),
    options=("base_url", "model", "api_key_env", "timeout", "max_retries", "concurrency"),
    summary=(
        "OpenAI-compatible chat completions (OpenAI, vLLM, llama.cpp's server, `transformers serve`) for "
        "`test_takers.extra` and `judge.endpoint`; no token probabilities, no reply prefix; the seed is sent "
        "per request and honoured as far as the server does"
    ),
)  # fmt: skip
def _openai_backend(endpoint: EndpointConfig, name: str | None) -> GenerationBackend:
    from .openai_backend import OpenAIBackend

    return OpenAIBackend(endpoint) if name is None else OpenAIBackend(endpoint, name=name)
