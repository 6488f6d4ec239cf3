"""Stage ``setup`` called directly (no Prefect): preflight, starting a run folder, checks before a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tiny import tiny_search_config

from dataswarms_core import stages
from dataswarms_core.config import config_hash
from dataswarms_core.data import load_task
from dataswarms_core.errors import ConfigMismatchError, FormatError, StorageError
from dataswarms_core.models import model_fingerprint
from dataswarms_core.records import RunInfo


@pytest.fixture(scope="module")
def started(tiny_model_dir, tmp_path_factory):
    """One run folder started by ``prepare_run`` (the tests below resume it or try to restart it)."""
    root = tmp_path_factory.mktemp("setup")
    cfg = tiny_search_config(tiny_model_dir, root, "setup-run")
    stages.preflight(cfg)  # a new run passes preflight
    info = stages.prepare_run(cfg, flow_run_id="flow-a")
    return cfg, info, root / "setup-run"


def test_prepare_run_writes_config_and_run_info(started, tiny_model_dir):
    cfg, info, folder = started
    assert yaml.safe_load((folder / "config.yaml").read_text()) == cfg.public_dict()
    assert RunInfo.model_validate_json((folder / "run.json").read_text()) == info
    task = load_task(cfg.task.source, cfg.task.domain)
    assert info.format_version == 2
    assert info.run_name == "setup-run" and info.run_url == str(folder)
    assert Path(info.model_path) == Path(tiny_model_dir)
    assert info.model_fingerprint == model_fingerprint(Path(info.model_path))
    assert info.task_name == task.name and info.task_hash == task.content_hash
    assert info.domain == task.domain
    assert (info.n_dev, info.n_test) == (len(task.dev), len(task.test)) and info.n_dev > 0
    assert info.config_hash == config_hash(cfg.public_dict())
    assert info.flow_run_id == "flow-a" and info.resumes == 0 and info.forced_changes == []


def test_second_start_without_resume_is_refused(started):
    cfg, info, folder = started
    with pytest.raises(StorageError, match="exists already"):
        stages.prepare_run(cfg)
    with pytest.raises(StorageError, match="exists already"):
        stages.prepare_run(cfg, flow_run_id="another-flow-run")
    with pytest.raises(StorageError, match="exists already"):
        stages.preflight(cfg)
    assert RunInfo.read(stages.run_store(cfg), "run.json") == info  # untouched


def test_resume_with_a_changed_config_names_the_field(started, tiny_model_dir):
    cfg, _, folder = started
    before = (folder / "run.json").read_text()
    changed = tiny_search_config(tiny_model_dir, cfg.storage.root, "setup-run", **{"pso.max_iterations": 5})
    with pytest.raises(ConfigMismatchError, match=r"pso\.max_iterations: 2 → 5") as err:
        stages.prepare_run(changed, resume=True)
    assert "generation" not in str(err.value)  # only the changed field is named
    assert (folder / "run.json").read_text() == before


def test_resume_and_own_retry_count_resumes_then_force_records_changes(started, tiny_model_dir):
    cfg, info, folder = started
    stages.preflight(cfg, resume=True)
    resumed = stages.prepare_run(cfg, resume=True)
    assert resumed.resumes == info.resumes + 1
    retried = stages.prepare_run(cfg, flow_run_id="flow-a")  # a retry of the creating flow run resumes
    assert retried.resumes == info.resumes + 2
    assert retried.model_copy(update={"resumes": 0}) == info

    changed = tiny_search_config(tiny_model_dir, cfg.storage.root, "setup-run", **{"pso.max_iterations": 5})
    forced = stages.prepare_run(changed, resume=True, force=True)
    assert forced.forced_changes == ["pso.max_iterations: 2 → 5"]
    assert forced.config_hash == config_hash(changed.public_dict()) != info.config_hash
    assert yaml.safe_load((folder / "config.yaml").read_text())["pso"]["max_iterations"] == 5
    assert RunInfo.read(stages.run_store(cfg), "run.json") == forced


@pytest.mark.parametrize(
    "run_json",
    [
        {},
        {
            "run_name": "old",
            "run_url": "x",
            "model_path": "m",
            "model_fingerprint": "f",
            "task_name": "t",
            "task_hash": "h",
            "domain": "d",
            "n_dev": 1,
            "n_test": 0,
            "config_hash": "c",
            "created": "now",
        },
    ],
    ids=["empty", "fields-without-version"],
)
def test_run_of_format_version_1_is_refused_before_any_work(run_json, tiny_model_dir, tmp_path):
    cfg = tiny_search_config(tiny_model_dir, tmp_path, "old-run")
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run/run.json").write_text(json.dumps(run_json))
    with pytest.raises(FormatError) as err:
        stages.preflight(cfg, resume=True)
    message = str(err.value)
    assert str(tmp_path / "old-run/run.json") in message
    assert "format version 1" in message and "reads version 2" in message
    with pytest.raises(FormatError, match="format version 1"):
        stages.prepare_run(cfg, resume=True)
    assert sorted(p.name for p in (tmp_path / "old-run").iterdir()) == ["run.json"]  # nothing written


def test_run_of_a_newer_format_version_is_refused(tiny_model_dir, tmp_path):
    cfg = tiny_search_config(tiny_model_dir, tmp_path, "new-run")
    (tmp_path / "new-run").mkdir()
    (tmp_path / "new-run/run.json").write_text(json.dumps({"format_version": 3}))
    with pytest.raises(FormatError, match=r"run\.json: format version 3, this dataswarms reads version 2"):
        stages.preflight(cfg, resume=True)


def test_config_differences_ignore_storage(started, tiny_model_dir, tmp_path):
    cfg, _, _ = started
    elsewhere = tiny_search_config(
        tiny_model_dir, tmp_path / "elsewhere", "setup-run", **{"storage.options": {"anon": True}}
    )
    assert stages.config_differences(cfg.public_dict(), elsewhere.public_dict()) == []
    held = tiny_search_config(  # held-out test takers only matter to the re-measurement after the search
        tiny_model_dir, tmp_path, "setup-run", held_out_test_takers={"include_base": False, "n_adapters": 2}
    )
    assert stages.config_differences(cfg.public_dict(), held.public_dict()) == []
    changed = tiny_search_config(
        tiny_model_dir, tmp_path / "elsewhere", "setup-run", **{"pso.max_iterations": 5, "seed": 3}
    )
    assert stages.config_differences(cfg.public_dict(), changed.public_dict()) == [
        "pso.max_iterations: 2 → 5",
        "seed: 0 → 3",
    ]
    old = {"storage": {"root": "a"}, "pso": {"inertia": 0.4}, "gone": 1}
    new = {"storage": {"root": "b", "options": {"k": "***"}}, "pso": {"inertia": 0.5}, "added": [1]}
    assert stages.config_differences(old, new) == [
        "added: None → [1]",
        "gone: 1 → None",
        "pso.inertia: 0.4 → 0.5",
    ]


def test_adversarial_preflight_refuses_a_task_it_cannot_run(tiny_model_dir, tmp_path):
    """A pool larger than the dev split, a task without a test split, and test items without reference
    answers: one-line errors naming the file, before anything runs (docs/method.md §6)."""
    from dataswarms_core.errors import DataError

    dev = [{"input": f"Question {i}: what is {i} + {i}?", "output": str(2 * i)} for i in range(12)]
    test = [{"input": f"Test {i}: what is {i} + 1?", "output": str(i + 1)} for i in range(3)]
    cases = {
        "pool.json": ({"dev": dev, "test": test}, {"adversarial.pool_size": 13},
                      r"pool.json: adversarial.pool_size 13 is larger than the dev split \(12 items\); use at most 12$"),
        "no-test.json": ({"dev": dev}, {}, "no-test.json: no test split; adversarial mode scores each iteration's "
                         r"best test taker on held-out test items \(adversarial.test_items\)"),
        "no-answers.json": ({"dev": dev, "test": [{"input": t["input"]} for t in test]}, {},
                            r"no-answers.json: none of the 3 test items has an 'output' \(reference answer\)"),
        "empty-answers.json": ({"dev": dev, "test": [{**t, "output": " "} for t in test]}, {},
                               "empty-answers.json: none of the 3 test items has an 'output'"),
    }  # fmt: skip
    for name, (data, overrides, message) in cases.items():
        (tmp_path / name).write_text(json.dumps(data))
        cfg = tiny_search_config(
            tiny_model_dir, tmp_path / "runs", "adv", **{
                "mode": "adversarial", "task.source": str(tmp_path / name), "test_takers.n_adapters": 2,
                "adversarial.pool_size": 12, **overrides,
            },
        )  # fmt: skip
        with pytest.raises(DataError, match=message) as err:
            stages.preflight(cfg)
        assert "\n" not in str(err.value)
        assert not (tmp_path / "runs" / "adv").exists()  # nothing was started
    ok = tiny_search_config(
        tiny_model_dir, tmp_path / "runs", "adv", **{
            "mode": "adversarial", "task.source": str(tmp_path / "pool.json"), "test_takers.n_adapters": 2,
            "adversarial.pool_size": 12,
        },
    )  # fmt: skip
    stages.preflight(ok)

    # The held-out items are the first test items WITH a reference answer (here the 2nd and 4th of 4).
    from dataswarms_core.stages.adversarial import held_out_items

    mixed = [{"input": "a?"}, {"input": "b?", "output": "2"}, {"input": "c?", "output": ""},
             {"input": "d?", "output": "4"}]  # fmt: skip
    (tmp_path / "mixed.json").write_text(json.dumps({"dev": dev, "test": mixed}))
    cfg = ok.model_copy(update={"task": ok.task.model_copy(update={"source": str(tmp_path / "mixed.json")})})
    stages.preflight(cfg)
    task = stages.load_run_task(cfg)
    assert held_out_items(cfg, task) == [
        {"item": "b?", "output": "2", "test_index": 1}, {"item": "d?", "output": "4", "test_index": 3},
    ]  # fmt: skip
    one = cfg.model_copy(update={"adversarial": cfg.adversarial.model_copy(update={"test_items": 1})})
    assert [r["test_index"] for r in held_out_items(one, task)] == [1]


def test_preflight_refuses_the_vllm_backend_without_vllm_or_cuda(tiny_model_dir, tmp_path, monkeypatch):
    """model.backend: vllm on a machine without vLLM (this one) or without CUDA: one line naming the missing
    piece and the [gpu] extra, before the run folder exists."""
    import importlib.util

    from dataswarms_core.errors import ModelError

    cfg = tiny_search_config(tiny_model_dir, tmp_path / "runs", "gpu-run", **{"model.backend": "vllm"})
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(ModelError, match=r"^backend 'vllm' needs the package vllm, not installed: pip install 'dataswarms\[gpu\]'"):
        stages.preflight(cfg)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a))
    with pytest.raises(ModelError, match=r"^backend 'vllm' needs a CUDA GPU and none is available"):
        stages.preflight(cfg)
    assert not (tmp_path / "runs").exists()
