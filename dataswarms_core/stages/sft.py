"""Training stage: the seed generators (one LoRA adapter per cluster of dev inputs, docs/method.md §1) and the
LoRA test takers (input→output pairs of different clusters).

Each set is planned first (:func:`plan_adapters`: the exact training examples of every adapter) and cached in
``_cache/<kind>/<key>/`` where the key hashes those examples and every setting of the training, so two runs
share trained adapters only when they would train the same ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RunConfig, SFTSettings, config_hash
from ..errors import DataError, StorageError
from ..records import FORMAT_VERSION, AdapterManifest, RunInfo
from ..seeding import derive_seed
from ..sft import answer_examples, cluster_inputs, embed, generator_examples, train_adapters
from ..stop import check_stop
from ..storage import Store
from .layout import write_progress
from .setup import load_run_task

MANIFEST = "manifest.json"
SEED_GENERATORS = "seed_generators"
TEST_TAKERS = "test_takers"


@dataclass(frozen=True)
class AdapterPlan:
    """What training a kind of adapters will do.

    Attributes:
        kind: ``seed_generators`` or ``test_takers``.
        names: adapter names (``g0..``, ``t0..``).
        example_sets: per adapter, its exact training conversations (prompt/completion).
        key: the cache key: a hash of the examples and every training setting (see :func:`plan_adapters`).
        cluster_sizes, topped_up: the k-means clusters behind the examples (empty without adapters).
    """

    kind: str
    names: list[str]
    example_sets: list[list[dict[str, Any]]]
    key: str
    cluster_sizes: list[int]
    topped_up: list[bool]


@functools.lru_cache(maxsize=4)
def _embeddings(inputs: tuple[str, ...], method: str) -> Any:
    """The dev inputs' embeddings, computed once per process for the plans of both kinds (and their retries)."""
    vectors = embed(list(inputs), method)
    vectors.setflags(write=False)
    return vectors


def _sft_settings(config: RunConfig, kind: str) -> SFTSettings:
    section = config.seed_generators if kind == SEED_GENERATORS else config.test_takers
    return SFTSettings.model_validate(section.model_dump(include=set(SFTSettings.model_fields)))


def plan_adapters(config: RunConfig, info: RunInfo, kind: str) -> AdapterPlan:
    """Cluster the dev inputs and build every adapter's training examples (seeded, deterministic).

    The key hashes: the examples themselves, the SFT settings (steps, batch size, learning rate, LoRA), the
    adapter names, the run seed (each adapter's SFT seed derives from it), the base model's fingerprint and
    name (written into the adapter config), dtype and device, and the format version.

    Raises:
        DataError: test takers are asked for but the dev items carry no ``output``; too few dev items.
    """
    task = load_run_task(config, info)
    sg, gen = config.seed_generators, config.generation
    sft = _sft_settings(config, kind)
    n = sg.n_generators if kind == SEED_GENERATORS else config.test_takers.n_adapters
    names = [f"g{i}" for i in range(n)] if kind == SEED_GENERATORS else [f"t{j}" for j in range(n)]
    example_sets: list[list[dict[str, Any]]] = []
    sizes: list[int] = []
    topped: list[bool] = []
    if n:
        if kind == TEST_TAKERS and task.dev["output"].isna().all():
            raise DataError(
                f"{config.task.source}: test_takers.n_adapters > 0 needs an 'output' (reference answer) in dev items"
            )
        inputs = task.dev["input"].tolist()
        vectors = _embeddings(tuple(inputs), sg.embedding)
        clusters = cluster_inputs(vectors, sg.n_generators, config.seed, gen.items_shown + gen.items_written)
        sizes, topped = [clusters.labels.count(c) for c in range(sg.n_generators)], clusters.topped_up
        count = sft.steps * sft.batch_size
        if kind == SEED_GENERATORS:
            example_sets = [
                generator_examples(
                    inputs, pool, count, gen.items_shown, gen.items_written, task.domain,
                    random.Random(derive_seed(config.seed, "seed-generator-examples", i)),
                )  # fmt: skip
                for i, pool in enumerate(clusters.pools)
            ]
        else:
            outputs = task.dev["output"].tolist()
            example_sets = [
                answer_examples(
                    inputs, outputs, clusters.pools[j % len(clusters.pools)], count,
                    random.Random(derive_seed(config.seed, "test-taker-examples", j)),
                )  # fmt: skip
                for j in range(n)
            ]
    examples_hash = hashlib.sha256(json.dumps(example_sets, sort_keys=True).encode()).hexdigest()
    key = config_hash(
        {
            "format": FORMAT_VERSION,  # adapters cached by another format version are not reused
            "kind": kind,
            "names": names,
            "examples": examples_hash,
            "sft": sft.model_dump(mode="json"),
            "seed": config.seed,
            "model": info.model_fingerprint,
            "base_model_name": config.model.base_model,
            "dtype": config.model.dtype,
            "device": config.model.device,
        }
    )
    return AdapterPlan(kind, names, example_sets, key, sizes, topped)


def adapters_cache_key(config: RunConfig, info: RunInfo, kind: str) -> str:
    """The cache key of a kind of trained adapters (:attr:`AdapterPlan.key`)."""
    return plan_adapters(config, info, kind).key


def train_planned(config: RunConfig, info: RunInfo, kind: str, dest: Store) -> AdapterManifest:
    """Train the adapters of :func:`plan_adapters` into ``dest`` (``_cache/<kind>/<key>``), writing
    ``clusters.json``, one PEFT folder per adapter and ``manifest.json`` last.

    Returns:
        The manifest. When ``dest`` already holds a complete set (its manifest), that manifest is returned and
        nothing is trained: ``dest`` is named by the plan's key, so its content is what training would give.

    Raises:
        StorageError: ``dest`` is not named by the plan's key (the plan changed under it).
    """
    check_stop()  # a stop requested while a library swallowed the interrupt ends the run here
    if dest.exists(MANIFEST):
        return AdapterManifest.read(dest, MANIFEST)
    plan = plan_adapters(config, info, kind)
    if dest.root.rstrip("/").rsplit("/", 1)[-1] != plan.key:
        raise StorageError(f"{dest.root}: not the cache folder of these {kind} (key {plan.key})")
    if not plan.names:
        manifest = AdapterManifest(kind=kind)
        manifest.write(dest, MANIFEST)
        return manifest
    dest.write_json("clusters.json", {"sizes": plan.cluster_sizes, "topped_up": plan.topped_up})
    progress = "seed-generators" if kind == SEED_GENERATORS else "test-takers"
    return train_adapters(
        kind, plan.names, plan.example_sets, dest, model_path=Path(info.model_path), sft=_sft_settings(config, kind),
        seed=config.seed, dtype=config.model.dtype, device=config.model.device,
        base_model_name=config.model.base_model,
        on_start=lambda name, i, n: write_progress(config, progress, detail=f"{name} ({i + 1}/{n})"),
    )  # fmt: skip


def train_seed_generators(config: RunConfig, info: RunInfo, dest: Store) -> AdapterManifest:
    """Cluster the dev inputs and train one generator adapter per cluster into ``dest`` (docs/method.md §1);
    see :func:`train_planned`."""
    return train_planned(config, info, SEED_GENERATORS, dest)


def train_test_takers(config: RunConfig, info: RunInfo, dest: Store) -> AdapterManifest:
    """Train ``test_takers.n_adapters`` LoRA test takers, adapter j on the input→output pairs of cluster j
    (mod K), into ``dest``; with zero adapters the manifest lists none. See :func:`train_planned`.

    Raises:
        DataError: adapters are asked for but the dev items carry no ``output``.
    """
    return train_planned(config, info, TEST_TAKERS, dest)
