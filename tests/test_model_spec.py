"""Model specs (``dataswarms evaluate --model``, ``export.reference_model``): parsing and up-front checks."""

from __future__ import annotations

import pytest

from dataswarms_core.errors import ConfigError, ModelError
from dataswarms_core.model_spec import check_model_spec, parse_model_spec


def test_kinds_and_labels(tmp_path):
    local = parse_model_spec(str(tmp_path))
    assert (local.kind, local.model, local.adapter, local.label) == (
        "local",
        str(tmp_path),
        None,
        local.label,
    )
    tuned = parse_model_spec(f"tuned={tmp_path}+runs/x/packages/iter_0003/adapter")
    assert (tuned.kind, tuned.label, tuned.model, tuned.adapter) == (
        "adapter", "tuned", str(tmp_path), "runs/x/packages/iter_0003/adapter"
    )  # fmt: skip
    derived = parse_model_spec("smollm2-135m-instruct+runs/x/packages/iter_0003/adapter")
    assert derived.label == "HuggingFaceTB/SmolLM2-135M-Instruct+packages/iter_0003/adapter"
    endpoint = parse_model_spec("gpt=gpt-4o-mini@https://api.example.com/v1/")
    assert (endpoint.kind, endpoint.label, endpoint.model, endpoint.base_url) == (
        "endpoint", "gpt", "gpt-4o-mini", "https://api.example.com/v1"
    )  # fmt: skip
    assert endpoint.endpoint().base_url == "https://api.example.com/v1"


def test_equals_signs_that_are_not_labels(tmp_path):
    folder = tmp_path / "ckpt=3"
    folder.mkdir()
    assert parse_model_spec(str(folder)).model == str(folder)  # an existing path with '=' is a path
    spec = parse_model_spec("base+adapters/run=2")  # '+' before '=': no label
    assert (spec.kind, spec.model, spec.adapter) == ("adapter", "base", "adapters/run=2")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty model spec"),
        ("name=", "empty model spec"),
        ("@http://127.0.0.1:8000/v1", "no model name before '@'"),
        ("base+", "expected MODEL\\+ADAPTER with both parts"),
        ("bad label!=x", None),  # a space: not a label, the whole text is the model
        ("-x=model", "label '-x' must be 1-64 letters"),
    ],
)
def test_bad_specs(text, message):
    if message is None:
        assert parse_model_spec(text).model == text
        return
    with pytest.raises(ConfigError, match=message):
        parse_model_spec(text)


def test_checks_before_loading(tmp_path, tiny_model_dir):
    with pytest.raises(ModelError, match="nope"):
        check_model_spec(parse_model_spec(str(tmp_path / "nope")))
    half = tmp_path / "half"
    half.mkdir()
    (half / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match="not a PEFT adapter folder \\(no adapter_model.safetensors\\)"):
        check_model_spec(parse_model_spec(f"{tiny_model_dir}+{half}"))
    check_model_spec(parse_model_spec("m@http://127.0.0.1:9/v1"))  # endpoints are checked when asked


def test_probe_endpoint(openai_server):
    from dataswarms_core.model_spec import probe_endpoint

    base_url, served = openai_server
    probe_endpoint(parse_model_spec(f"{served}@{base_url}"))  # answers: no error
    probe_endpoint(parse_model_spec("local-folder"))  # not an endpoint: nothing to check
    with pytest.raises(
        ModelError, match="m@http://127.0.0.1:9/v1: the endpoint does not answer \\(ConnectError"
    ):
        probe_endpoint(parse_model_spec("m@http://127.0.0.1:9/v1"))


def test_adapter_read_from_a_folder_or_a_bucket_root(tmp_path, s3_bucket):
    import json

    import fsspec
    import torch
    from safetensors.torch import save

    from dataswarms_core.model_spec import read_spec_adapter

    files = {
        "adapter_config.json": json.dumps({"r": 4}).encode(),
        "adapter_model.safetensors": save({"w": torch.ones(2)}),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    endpoint, options = s3_bucket
    fs = fsspec.filesystem("s3", **options)
    for name, data in files.items():
        fs.pipe(f"dataswarms-test/{name}", data)
    for spec, opts in ((f"base+{tmp_path}", {}), ("base+s3://dataswarms-test", options)):
        config, tensors = read_spec_adapter(parse_model_spec(spec), opts)
        assert config == {"r": 4} and torch.equal(tensors["w"], torch.ones(2))
