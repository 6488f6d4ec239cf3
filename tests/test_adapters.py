"""Adapters: PEFT folders on a store, LoRA-configuration checks, many adapters on one model."""

import pytest
import torch

from dataswarms_core.adapters import attach_adapters, check_same_lora_config, read_adapter, write_adapter
from dataswarms_core.errors import InvalidParticleError
from dataswarms_core.models import load_base_model
from dataswarms_core.storage import Store


def _adapter(model_dir, seed, target=("q_proj", "v_proj")):
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    cfg = LoraConfig(
        r=4, lora_alpha=8, target_modules=list(target), init_lora_weights=False, task_type="CAUSAL_LM"
    )
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), cfg)
    return cfg.to_dict(), {k: v.clone() for k, v in get_peft_model_state_dict(model).items()}


def test_write_read_and_load_with_peft(tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg, tensors = _adapter(tiny_model_dir, 0)
    cfg = {**cfg, "base_model_name_or_path": str(tiny_model_dir)}
    store = Store(str(tmp_path))
    write_adapter(store, "ad", cfg, tensors)
    cfg2, tensors2 = read_adapter(store, "ad")
    assert cfg2["r"] == 4 and set(tensors2) == set(tensors)
    assert all(torch.equal(tensors[k], tensors2[k]) for k in tensors)
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "ad")
    key = next(k for k in tensors if "lora_B" in k)
    module_key = key.replace(".weight", ".default.weight")
    assert torch.equal(dict(loaded.named_parameters())[module_key], tensors[key])


def test_lora_configuration_mismatch_is_refused(tiny_model_dir):
    a, _ = _adapter(tiny_model_dir, 0)
    b, _ = _adapter(tiny_model_dir, 1, target=("q_proj",))
    check_same_lora_config({"g0": a, "g1": dict(a)})
    with pytest.raises(InvalidParticleError, match="adapter g1: LoRA target_modules"):
        check_same_lora_config({"g0": a, "g1": b})


def test_attach_many_adapters_and_reject_foreign_keys(tiny_model_dir):
    from peft import get_peft_model_state_dict

    a, b = _adapter(tiny_model_dir, 0), _adapter(tiny_model_dir, 1)
    model, _ = load_base_model(tiny_model_dir, device="cpu")
    peft = attach_adapters(model, {"x": a, "y": b})
    for name, (_, tensors) in (("x", a), ("y", b)):
        got = get_peft_model_state_dict(peft, adapter_name=name)
        assert all(torch.equal(got[k], tensors[k]) for k in tensors)
    bad = (a[0], {**a[1], "base_model.model.model.nope.lora_A.weight": torch.zeros(1)})
    model2, _ = load_base_model(tiny_model_dir, device="cpu")
    with pytest.raises(InvalidParticleError, match="adapter z: does not fit the base model"):
        attach_adapters(model2, {"z": bad})


def test_adapter_for_another_model_is_refused_with_its_name(tiny_model_dir):
    cfg = {"r": 2, "lora_alpha": 4, "target_modules": ["w_in"], "peft_type": "LORA", "task_type": "CAUSAL_LM"}
    model, _ = load_base_model(tiny_model_dir, device="cpu")
    with pytest.raises(InvalidParticleError, match="adapter other: does not fit the base model"):
        attach_adapters(model, {"other": (cfg, {})})
