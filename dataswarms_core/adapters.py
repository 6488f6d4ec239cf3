"""LoRA adapters as tensor dicts, PEFT folders on any store, and many adapters on one loaded base model.

On disk an adapter is a standard PEFT folder (``adapter_config.json`` + ``adapter_model.safetensors``),
loadable by ``peft.PeftModel.from_pretrained`` and by vLLM. In memory it is ``(config, tensors)`` with
PEFT's saved key names, e.g. ``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight``
(lora_A: r × in_features, lora_B: out_features × r).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch

from .errors import InvalidParticleError, StorageError
from .storage import Store

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch (generate(..., adapter_names=[...]))
# LoRA fields that must agree for tensors to be added key by key.
_SWARM_FIELDS = ("r", "lora_alpha", "target_modules", "use_rslora", "use_dora", "bias", "fan_in_fan_out")


def lora_config(settings: Any) -> Any:
    """A PEFT ``LoraConfig`` for causal LMs from a :class:`~dataswarms_core.config.LoraSettings`."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.lora_alpha,
        target_modules=list(settings.target_modules),
        lora_dropout=settings.lora_dropout,
        task_type="CAUSAL_LM",
    )


def _norm(value: Any) -> Any:
    return sorted(value) if isinstance(value, (list, set, tuple)) else value


def check_same_lora_config(configs: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse adapters whose LoRA configurations differ in a field that matters for PSO arithmetic.

    Args:
        configs: adapter name → ``adapter_config.json`` content.

    Raises:
        InvalidParticleError: naming the field, both adapters and both values.
    """
    items = list(configs.items())
    first_name, first = items[0]
    for name, cfg in items[1:]:
        for key in _SWARM_FIELDS:
            if _norm(cfg.get(key)) != _norm(first.get(key)):
                raise InvalidParticleError(
                    f"adapter {name}: LoRA {key} = {cfg.get(key)!r} but {first_name} has {first.get(key)!r}; "
                    "all adapters of a swarm need the same LoRA configuration"
                )


def read_adapter(store: Store, key: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a PEFT adapter folder ``key`` (``""``: the store's root) → ``(config dict, tensors)``.

    Raises:
        StorageError: a file is missing or unreadable (naming the URL).
    """
    from safetensors.torch import load

    prefix = f"{key.rstrip('/')}/" if key else ""
    config = store.read_json(f"{prefix}{CONFIG_FILE}")
    try:
        # clone: tensors loaded from bytes share an immutable buffer and must not be modified in place
        tensors = {k: t.clone() for k, t in load(store.read_bytes(f"{prefix}{WEIGHTS_FILE}")).items()}
    except StorageError:
        raise
    except Exception as exc:  # safetensors raises its own error type on corrupt data
        raise StorageError(f"{store.url(prefix + WEIGHTS_FILE)}: unreadable safetensors ({exc})") from exc
    return config, tensors


def write_adapter(
    store: Store, key: str, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> str:
    """Write a PEFT adapter folder (weights first, config last); return its URL."""
    from safetensors.torch import save

    store.write_bytes(f"{key}/{WEIGHTS_FILE}", save({k: t.detach().contiguous() for k, t in tensors.items()}))
    plain = {
        k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in config.items()
    }  # PEFT keeps sets
    store.write_text(f"{key}/{CONFIG_FILE}", json.dumps(plain, indent=2, sort_keys=True, default=str))
    return store.url(key)


def _peft_config(config: Mapping[str, Any]) -> Any:
    from peft import LoraConfig

    fields = set(LoraConfig.__dataclass_fields__)
    return LoraConfig(**{k: v for k, v in config.items() if k in fields})


def attach_adapters(
    model: Any, adapters: Mapping[str, tuple[Mapping[str, Any], Mapping[str, torch.Tensor]]]
) -> Any:
    """Wrap ``model`` in a PEFT model holding every adapter under its name (one base model in memory).

    Args:
        model: a loaded transformers causal LM (modified in place: LoRA layers are injected).
        adapters: name → (adapter_config dict, tensors with PEFT's saved key names); names must not be
            ``__base__``.

    Returns:
        A ``peft.PeftModel`` in eval mode; ``generate(..., adapter_names=[...])`` picks an adapter per row.

    Raises:
        InvalidParticleError: an adapter's tensors miss LoRA weights the model expects, or hold keys the
            model does not have (naming the adapter and a key).
    """
    from peft import PeftModel, set_peft_model_state_dict

    if not adapters:
        raise ValueError("attach_adapters: no adapters given")
    peft_model = None
    for name, (config, tensors) in adapters.items():
        if name == BASE:
            raise ValueError(f"adapter name {BASE!r} is reserved for the base model")
        try:
            cfg = _peft_config(config)
            if peft_model is None:
                peft_model = PeftModel(model, cfg, adapter_name=name)
            else:
                peft_model.add_adapter(name, cfg)
            result = set_peft_model_state_dict(peft_model, dict(tensors), adapter_name=name)
        except (ValueError, RuntimeError, TypeError, KeyError) as exc:  # PEFT/torch: wrong modules or shapes
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise InvalidParticleError(f"adapter {name}: does not fit the base model ({first})") from None
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        missing = [
            k for k in (getattr(result, "missing_keys", []) or []) if "lora_" in k and f".{name}." in k
        ]
        if unexpected or missing:
            raise InvalidParticleError(
                f"adapter {name}: does not fit the base model (unexpected keys {unexpected[:2]}, "
                f"missing {missing[:2]})"
            )
    peft_model.eval()
    return peft_model
