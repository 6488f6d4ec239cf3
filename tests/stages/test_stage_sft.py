"""Stage ``sft`` called directly (no Prefect): the adapter cache key and the (cached) LoRA training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tiny import tiny_search_config

from dataswarms_core import stages
from dataswarms_core.records import AdapterManifest
from dataswarms_core.stages import sft as sft_stage
from dataswarms_core.stages.layout import cache_store
from dataswarms_core.stages.sft import SEED_GENERATORS, TEST_TAKERS

SMALL = {
    "task.max_dev_items": 40,  # fast k-means for the many cache keys below
    "seed_generators.n_generators": 2,
    "seed_generators.steps": 2,
    "seed_generators.batch_size": 2,
    "test_takers.steps": 1,
    "test_takers.batch_size": 2,
}


def _files(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """prepare_run, then the seed generators trained once into their cache folder."""
    root = tmp_path_factory.mktemp("sft")
    cfg = tiny_search_config(tiny_model_dir, root, "sft-run", **SMALL)
    info = stages.prepare_run(cfg)
    dest = cache_store(cfg, SEED_GENERATORS, stages.adapters_cache_key(cfg, info, SEED_GENERATORS))
    manifest = stages.train_seed_generators(cfg, info, dest)
    return cfg, info, dest, manifest


def test_cache_key_depends_on_what_training_depends_on(trained, tiny_model_dir):
    cfg, info, _, _ = trained

    def keys(**overrides):
        c = tiny_search_config(tiny_model_dir, cfg.storage.root, "sft-run", **{**SMALL, **overrides})
        return stages.adapters_cache_key(c, info, SEED_GENERATORS), stages.adapters_cache_key(
            c, info, TEST_TAKERS
        )

    gen, takers = keys()
    assert (gen, takers) == (stages.adapters_cache_key(cfg, info, SEED_GENERATORS),
                             stages.adapters_cache_key(cfg, info, TEST_TAKERS))  # fmt: skip
    assert gen != takers and len(gen) == 16
    # PSO, scoring, export, naming and sampling settings do not change what is trained.
    same = {"pso.max_iterations": 9, "pso.inertia": 0.1, "scoring.objective": "separation", "export.items": 5,
            "run_name": "other", "generation.temperature": 0.2, "generation.calls_per_generator": 4}  # fmt: skip
    assert keys(**same) == (gen, takers)
    # The run seed changes both.
    seeded = keys(seed=1)
    assert seeded[0] != gen and seeded[1] != takers
    # Seed-generator SFT settings (and what the examples look like) change the generators' key only.
    for changed in ({"seed_generators.steps": 3},
                    {"seed_generators.lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}},
                    {"generation.items_written": 2}):  # fmt: skip
        k = keys(**changed)
        assert k[0] != gen and k[1] == takers, changed
    # Test-taker SFT settings change the test takers' key only.
    for changed in ({"test_takers.steps": 2}, {"test_takers.n_adapters": 2}):
        k = keys(**changed)
        assert k[0] == gen and k[1] != takers, changed
    # The clusters (their number and the embedding) shape the test takers' data as well.
    k = keys(**{"seed_generators.n_generators": 3})
    assert k[0] != gen and k[1] != takers
    # The base model is part of the key.
    other = info.model_copy(update={"model_fingerprint": "another model"})
    assert stages.adapters_cache_key(cfg, other, SEED_GENERATORS) != gen
    assert stages.adapters_cache_key(cfg, other, TEST_TAKERS) != takers


def _training_data(cfg) -> tuple[int, list[list[int]]]:
    """The dev set size and the k-means pools the adapters of ``cfg`` train on."""
    from dataswarms_core.sft import cluster_inputs, embed
    from dataswarms_core.stages.setup import load_run_task

    task = load_run_task(cfg)
    vectors = embed(task.dev["input"].tolist(), cfg.seed_generators.embedding)
    need = cfg.generation.items_shown + cfg.generation.items_written
    return len(task.dev), cluster_inputs(vectors, cfg.seed_generators.n_generators, cfg.seed, need).pools


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        (SEED_GENERATORS, {}, {"task.max_dev_items": 12}),  # another dev subset of the same file
        (TEST_TAKERS, {}, {"task.max_dev_items": 12}),
        # 12 dev items in 2 clusters: pools are topped up to items_shown + items_written, which the test
        # takers' data therefore depend on
        (TEST_TAKERS, {"task.max_dev_items": 12}, {"task.max_dev_items": 12, "generation.items_written": 5}),
    ],
    ids=["generators-dev-subset", "test-takers-dev-subset", "test-takers-pool-size"],
)
def test_cache_key_changes_when_the_training_data_changes(trained, tiny_model_dir, kind, a, b):
    """Two runs must not share adapters trained on other data (same task file, same SFT settings)."""
    cfg, info, _, _ = trained
    ca = tiny_search_config(tiny_model_dir, cfg.storage.root, "sft-run", **{**SMALL, **a})
    cb = tiny_search_config(tiny_model_dir, cfg.storage.root, "sft-run", **{**SMALL, **b})
    assert _training_data(ca) != _training_data(cb)  # the adapters would train on other data
    assert stages.adapters_cache_key(ca, info, kind) != stages.adapters_cache_key(cb, info, kind)


def test_train_seed_generators_writes_a_manifest(trained):
    cfg, info, dest, manifest = trained
    folder = Path(dest.root)
    assert folder.parent.parent == Path(cfg.storage.root) / "_cache"
    assert folder.name == stages.adapters_cache_key(cfg, info, SEED_GENERATORS)
    assert AdapterManifest.read(dest, "manifest.json") == manifest
    assert manifest.kind == "seed_generators" and manifest.format_version == 2
    assert list(manifest.adapters) == ["g0", "g1"]
    for name, entry in manifest.adapters.items():
        assert entry.url == dest.url(name)
        assert (folder / name / "adapter_config.json").is_file()
        assert (folder / name / "adapter_model.safetensors").is_file()
        assert entry.steps == 2
        assert math.isfinite(entry.loss_first) and math.isfinite(entry.loss_last) and entry.loss_first > 0
        assert entry.seconds >= 0
    clusters = dest.read_json("clusters.json")
    assert sum(clusters["sizes"]) == info.n_dev and len(clusters["sizes"]) == 2
    assert len(clusters["topped_up"]) == 2


def test_train_seed_generators_reuses_a_complete_folder(trained, monkeypatch):
    cfg, info, dest, manifest = trained
    before = _files(Path(dest.root))

    def no_training(*args, **kwargs):
        raise AssertionError("a complete adapter folder must not be retrained")

    monkeypatch.setattr(sft_stage, "train_adapters", no_training)
    monkeypatch.setattr(sft_stage, "embed", no_training)
    assert stages.train_seed_generators(cfg, info, dest) == manifest
    assert _files(Path(dest.root)) == before  # nothing rewritten


def test_train_test_takers_without_adapters_writes_an_empty_manifest(trained, tiny_model_dir, monkeypatch):
    cfg, info, _, _ = trained
    none = tiny_search_config(
        tiny_model_dir, cfg.storage.root, "sft-run", **{**SMALL, "test_takers.n_adapters": 0}
    )
    dest = cache_store(none, TEST_TAKERS, stages.adapters_cache_key(none, info, TEST_TAKERS))
    monkeypatch.setattr(sft_stage, "train_adapters", lambda *a, **k: pytest.fail("nothing to train"))
    manifest = stages.train_test_takers(none, info, dest)
    assert manifest == AdapterManifest(kind="test_takers", adapters={})
    assert AdapterManifest.read(dest, "manifest.json") == manifest
    assert sorted(p.name for p in Path(dest.root).iterdir()) == ["manifest.json"]
    assert stages.train_test_takers(none, info, dest) == manifest


def test_train_test_takers_trains_one_adapter_per_name(trained):
    cfg, info, _, _ = trained
    dest = cache_store(cfg, TEST_TAKERS, stages.adapters_cache_key(cfg, info, TEST_TAKERS))
    manifest = stages.train_test_takers(cfg, info, dest)
    assert manifest.kind == "test_takers" and list(manifest.adapters) == ["t0"]
    entry = manifest.adapters["t0"]
    assert entry.steps == 1 and math.isfinite(entry.loss_first) and math.isfinite(entry.loss_last)
    assert (Path(dest.root) / "t0" / "adapter_model.safetensors").is_file()
    assert AdapterManifest.read(dest, "manifest.json") == manifest
