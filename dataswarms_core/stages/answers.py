"""Models named by a spec (:mod:`dataswarms_core.model_spec`) answering items: the reference answers of a
package and the models of ``dataswarms evaluate``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..backends import endpoint_backend, load_local_backend
from ..config import RunConfig
from ..errors import ModelError
from ..model_spec import ModelSpec, read_spec_adapter
from ..models import model_fingerprint, resolve_model
from ..records import AdapterOrigin
from ..scoring import TestTaker, answer
from ..storage import Store
from .layout import ADAPTER_ORIGIN

SPEC_ADAPTER = "spec_adapter"


@dataclass(frozen=True)
class SpecModel:
    """A loaded model spec: the test taker answering for it and its identity for cache keys.

    Attributes:
        taker: answers as ``spec.label``.
        identity: what the answers depend on: the local model's fingerprint (+ the adapter's origin or file
            sizes), or the endpoint URL and model name.
    """

    taker: TestTaker
    identity: str


def spec_identity(spec: ModelSpec, storage_options: dict[str, Any] | None = None) -> str:
    """The identity of ``spec`` for cache keys, without loading weights (see :class:`SpecModel`).

    Raises:
        ModelError: the adapter was trained on another base model (its ``dataswarms.json`` records another
            fingerprint than the local model's).
    """
    if spec.kind == "endpoint":
        return f"endpoint:{spec.base_url}:{spec.model}"
    fingerprint = model_fingerprint(resolve_model(spec.model))
    if spec.kind == "local":
        return f"local:{fingerprint}"
    assert spec.adapter is not None
    store = Store(spec.adapter, storage_options or {})
    files = store.read_bytes("adapter_config.json") + store.read_bytes("adapter_model.safetensors")
    digest = hashlib.sha256(files).hexdigest()[:16]
    if store.exists(ADAPTER_ORIGIN):
        origin = AdapterOrigin.read(store, ADAPTER_ORIGIN)
        if origin.model_fingerprint != fingerprint:
            raise ModelError(
                f"--model {spec.spec}: the adapter was trained on {origin.base_model_name_or_path} with "
                f"fingerprint {origin.model_fingerprint}, but {spec.model} has fingerprint {fingerprint}; "
                "use the base model it was trained on"
            )
    return f"adapter:{fingerprint}:{digest}"


def load_spec(config: RunConfig, spec: ModelSpec, storage_options: dict[str, Any] | None = None) -> SpecModel:
    """Load ``spec`` as a test taker (local models through ``model.backend``, on ``model.device``).

    Raises:
        ModelError: the model or adapter does not load (another base model, a broken folder).
    """
    identity = spec_identity(spec, storage_options)
    if spec.kind == "endpoint":
        return SpecModel(TestTaker(spec.label, endpoint_backend(spec.endpoint(), name=spec.label)), identity)
    path = resolve_model(spec.model)
    adapters = {}
    if (
        spec.kind == "adapter"
    ):  # one fixed adapter name: labels may hold '.', which torch module names may not
        adapters[SPEC_ADAPTER] = read_spec_adapter(spec, storage_options)
    try:
        local = load_local_backend(path, adapters, config.model)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - PEFT/transformers errors: one line naming the spec
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"--model {spec.spec}: cannot load ({detail})") from None
    adapter = SPEC_ADAPTER if spec.kind == "adapter" else "__base__"
    return SpecModel(TestTaker(spec.label, local.backend, adapter), identity)


def answer_with_spec(
    config: RunConfig,
    spec: ModelSpec,
    texts: Sequence[str],
    *,
    stage: str,
    storage_options: dict[str, Any] | None = None,
) -> tuple[list[str | None], list[str | None]]:
    """``spec``'s answers to ``texts`` with the run's answer settings (``scoring.answer_*``).

    Returns:
        (answers, failures): per text the answer (None when it failed) and why it failed (None otherwise).
    """
    model = load_spec(config, spec, storage_options)
    s = config.scoring
    rows = answer(
        [{"item": t} for t in texts], [model.taker], max_new_tokens=s.answer_max_new_tokens,
        temperature=s.answer_temperature, batch_size=s.batch_size, run_seed=config.stream_seed, stage=stage,
    )  # fmt: skip
    return [r["response"] for r in rows], [r["answer_failure"] for r in rows]
