"""Model specs: how ``dataswarms evaluate --model`` and ``export.reference_model`` name a model.

A spec is one string, optionally prefixed with the label the leaderboard shows (``LABEL=SPEC``):

| spec                          | model                                                                  |
| ----------------------------- | ---------------------------------------------------------------------- |
| ``MODEL``                     | a local Hugging Face model folder, a built-in name (``smollm2-135m-instruct``) or a Hub id (online users) |
| ``MODEL+ADAPTER``             | ``MODEL`` with the PEFT adapter folder ``ADAPTER`` (path or URL) attached |
| ``NAME@http(s)://HOST/v1``    | the model ``NAME`` of an OpenAI-compatible endpoint; the API key, if any, from ``OPENAI_API_KEY`` |

Parsing is pure (no file is read); :func:`check_model_spec` checks that what a spec names exists, before any
model is loaded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from .adapters import read_adapter
from .config import EndpointConfig
from .errors import ConfigError, ModelError
from .models import canonical_model_name, check_model
from .storage import Store

LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
API_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes:
        spec: the text as given (without the label).
        label: the name shown in leaderboards (given, or derived: the canonical model name, ``base+adapter``
            folder name, or the endpoint model name).
        kind: ``local`` (a model folder / built-in / Hub id), ``adapter`` (base + PEFT adapter) or
            ``endpoint``.
        model: the local model (kinds local, adapter) or the endpoint's model name.
        adapter: the adapter folder (kind adapter), else None.
        base_url: the endpoint URL (kind endpoint), else None.
    """

    spec: str
    label: str
    kind: Literal["local", "adapter", "endpoint"]
    model: str
    adapter: str | None = None
    base_url: str | None = None

    def endpoint(self) -> EndpointConfig:
        """The endpoint configuration (kind endpoint); the key variable is ``OPENAI_API_KEY`` when set."""
        if self.base_url is None:
            raise ValueError(f"{self.spec}: not an endpoint spec")
        key_env = API_KEY_ENV if os.environ.get(API_KEY_ENV) else None
        return EndpointConfig(base_url=self.base_url, model=self.model, api_key_env=key_env)


def parse_model_spec(text: str) -> ModelSpec:
    """Parse ``[LABEL=]SPEC`` (see the module docstring). Text before the first ``=`` is a label when it
    holds no ``/``, ``+``, ``@``, ``:`` or space and the whole text is not an existing path.

    Raises:
        ConfigError: empty spec, an empty part around ``+`` or ``@``, or a label other than 1-64 letters,
            digits, ``.``, ``_`` or ``-`` (one line naming the spec).
    """
    raw = text.strip()
    label = None
    head, sep, rest = raw.partition("=")
    # LABEL=SPEC: a label is a plain name (no '/', '+', '@', ':', space); an existing path with '=' is a path
    if sep and not os.path.exists(raw) and not re.search(r"[/+@:\s]", head):
        label, raw = head.strip(), rest.strip()
        if not LABEL_PATTERN.match(label):
            raise ConfigError(
                f"--model {text!r}: label {label!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
    if not raw:
        raise ConfigError(f"--model {text!r}: empty model spec (expected MODEL, MODEL+ADAPTER or NAME@URL)")
    endpoint = re.match(r"^(?P<name>[^@]*)@(?P<url>https?://\S+)$", raw)
    if endpoint:
        name = endpoint["name"].strip()
        if not name:
            raise ConfigError(f"--model {text!r}: no model name before '@' (expected NAME@http://HOST/v1)")
        return ModelSpec(raw, label or name, "endpoint", name, base_url=endpoint["url"].rstrip("/"))
    if "+" in raw:
        model, adapter = (p.strip() for p in raw.split("+", 1))
        if not model or not adapter:
            raise ConfigError(f"--model {text!r}: expected MODEL+ADAPTER with both parts")
        parts = [p for p in adapter.rstrip("/").split("/") if p]
        short = "/".join(parts[-3:]) if parts else adapter
        return ModelSpec(raw, label or f"{canonical_model_name(model)}+{short}", "adapter", model, adapter)
    return ModelSpec(raw, label or canonical_model_name(raw), "local", raw)


def check_model_spec(
    spec: ModelSpec, storage_options: dict[str, Any] | None = None, where: str = "--model"
) -> None:
    """Check, without loading weights, that ``spec`` names something usable: the model exists locally (or is
    a built-in), the adapter folder holds ``adapter_config.json``, the endpoint's key variable is set when
    named. (Whether an endpoint answers: :func:`probe_endpoint`.)

    Args:
        where: what the messages name (``--model``, ``export.reference_model``).

    Raises:
        ModelError: the model folder is missing or not a model; the adapter folder is not a PEFT adapter.
    """
    if spec.kind == "endpoint":
        return
    try:
        check_model(spec.model)
    except ModelError as exc:
        raise ModelError(f"{where} {spec.spec}: {exc}") from None
    if spec.kind == "adapter":
        assert spec.adapter is not None
        store = Store(spec.adapter, storage_options or {})
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            if not store.exists(name):
                raise ModelError(
                    f"{where} {spec.spec}: {spec.adapter} is not a PEFT adapter folder (no {name})"
                )


def read_spec_adapter(spec: ModelSpec, storage_options: dict[str, Any] | None = None) -> Any:
    """The adapter of an ``adapter`` spec as (adapter_config, tensors)."""
    assert spec.adapter is not None
    # the folder itself as the store's root, so an adapter at a bucket's root (s3://bucket) reads too
    return read_adapter(Store(spec.adapter, storage_options or {}), "")


def probe_endpoint(spec: ModelSpec, timeout: float = 5.0) -> None:
    """Check that an endpoint spec's server answers at all (``GET <base_url>/models``; any HTTP status is an
    answer: a missing route or a refused key shows up when the model is asked). Other kinds: nothing to do.

    Raises:
        ModelError: no HTTP answer within ``timeout`` seconds (connection refused, unknown host, time-out),
            in one line naming the spec.
    """
    if spec.kind != "endpoint":
        return
    import httpx

    try:
        httpx.get(f"{spec.base_url}/models", timeout=timeout)
    except httpx.HTTPError as exc:
        raise ModelError(
            f"--model {spec.spec}: the endpoint does not answer ({type(exc).__name__}: {exc or 'no reply'})"
        ) from None
