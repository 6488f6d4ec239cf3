"""Training stage: the seed generators (one LoRA adapter per cluster of dev inputs, docs/method.md §1) and the
LoRA test takers, each set cached under a key that hashes everything it depends on."""

from __future__ import annotations

import random
from pathlib import Path

from ..config import RunConfig, SeedGeneratorConfig, TestTakerConfig, config_hash
from ..data import Task
from ..errors import DataError
from ..records import FORMAT_VERSION, AdapterManifest, RunInfo
from ..seeding import derive_seed
from ..sft import Clusters, answer_examples, cluster_inputs, embed, generator_examples, train_adapters
from ..storage import Store
from .layout import write_progress
from .setup import load_run_task

MANIFEST = "manifest.json"
SEED_GENERATORS = "seed_generators"
TEST_TAKERS = "test_takers"


def adapters_cache_key(config: RunConfig, info: RunInfo, kind: str) -> str:
    """Hash of everything a kind of trained adapters depends on (data, base model, settings, seed).

    Args:
        kind: ``seed_generators`` or ``test_takers``.
    """
    section = config.seed_generators if kind == SEED_GENERATORS else config.test_takers
    extra = (
        {"shown": config.generation.items_shown, "written": config.generation.items_written}
        if kind == SEED_GENERATORS
        else {
            "n_generators": config.seed_generators.n_generators,
            "embedding": config.seed_generators.embedding,
        }
    )
    return config_hash(
        {
            "format": FORMAT_VERSION,  # adapters cached by another format version are not reused
            "kind": kind,
            "section": section.model_dump(mode="json"),
            "extra": extra,
            "seed": config.seed,
            "task": info.task_hash,
            "domain": info.domain,
            "model": info.model_fingerprint,
            "dtype": config.model.dtype,
        }
    )


def _clusters(config: RunConfig, task: Task) -> Clusters:
    need = config.generation.items_shown + config.generation.items_written
    vectors = embed(task.dev["input"].tolist(), config.seed_generators.embedding)
    return cluster_inputs(vectors, config.seed_generators.n_generators, config.seed, need)


def _train(
    config: RunConfig,
    info: RunInfo,
    dest: Store,
    kind: str,
    section: SeedGeneratorConfig | TestTakerConfig,
    names: list[str],
    example_sets: list[list[dict]],
) -> AdapterManifest:
    progress = "seed-generators" if kind == SEED_GENERATORS else "test-takers"
    return train_adapters(
        kind, names, example_sets, dest, model_path=Path(info.model_path), sft=section, seed=config.seed,
        dtype=config.model.dtype, device=config.model.device, base_model_name=config.model.base_model,
        on_start=lambda name, i, n: write_progress(config, progress, detail=f"{name} ({i + 1}/{n})"),
    )  # fmt: skip


def train_seed_generators(config: RunConfig, info: RunInfo, dest: Store) -> AdapterManifest:
    """Cluster the dev inputs and train one generator adapter per cluster into ``dest`` (docs/method.md §1).

    Returns:
        The manifest (``dest/manifest.json``): adapters ``g0..g{K-1}`` with URLs and losses. When ``dest``
        already holds a complete set (its manifest is written last), that manifest is returned and nothing
        is trained: ``dest`` is keyed by :func:`adapters_cache_key`, so its content is what training would give.
    """
    if dest.exists(MANIFEST):
        return AdapterManifest.read(dest, MANIFEST)
    task = load_run_task(config, info)
    clusters = _clusters(config, task)
    sg, gen = config.seed_generators, config.generation
    inputs = task.dev["input"].tolist()
    example_sets = [
        generator_examples(
            inputs,
            pool,
            sg.steps * sg.batch_size,
            gen.items_shown,
            gen.items_written,
            task.domain,
            random.Random(derive_seed(config.seed, "seed-generator-examples", i)),
        )  # fmt: skip
        for i, pool in enumerate(clusters.pools)
    ]
    dest.write_json(
        "clusters.json",
        {
            "sizes": [clusters.labels.count(c) for c in range(sg.n_generators)],
            "topped_up": clusters.topped_up,
        },
    )
    names = [f"g{i}" for i in range(sg.n_generators)]
    return _train(config, info, dest, SEED_GENERATORS, sg, names, example_sets)


def train_test_takers(config: RunConfig, info: RunInfo, dest: Store) -> AdapterManifest:
    """Train ``test_takers.n_adapters`` LoRA test takers, adapter j on the input→output pairs of cluster j
    (mod K), into ``dest``. With zero adapters the manifest lists none and nothing is trained; a complete
    ``dest`` is reused as in :func:`train_seed_generators`.

    Raises:
        DataError: adapters are asked for but the dev items carry no ``output``.
    """
    if dest.exists(MANIFEST):
        return AdapterManifest.read(dest, MANIFEST)
    tt = config.test_takers
    if tt.n_adapters == 0:
        manifest = AdapterManifest(kind=TEST_TAKERS)
        manifest.write(dest, MANIFEST)
        return manifest
    task = load_run_task(config, info)
    if task.dev["output"].isna().all():
        raise DataError(
            f"{config.task.source}: test_takers.n_adapters > 0 needs an 'output' (reference answer) in dev items"
        )
    clusters = _clusters(config, task)
    inputs, outputs = task.dev["input"].tolist(), task.dev["output"].tolist()
    example_sets = [
        answer_examples(
            inputs,
            outputs,
            clusters.pools[j % len(clusters.pools)],
            tt.steps * tt.batch_size,
            random.Random(derive_seed(config.seed, "test-taker-examples", j)),
        )  # fmt: skip
        for j in range(tt.n_adapters)
    ]
    names = [f"t{j}" for j in range(tt.n_adapters)]
    return _train(config, info, dest, TEST_TAKERS, tt, names, example_sets)
