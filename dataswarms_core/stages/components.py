"""The models a stage works with, built from the configuration: the local backend (base model + adapters),
the test takers, the judges and the realistic objective's corpus."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..adapters import read_adapter
from ..backends import LoadedModel, endpoint_backend, load_local_backend
from ..config import RunConfig
from ..data import load_task
from ..judges import Judge, JudgeContext, build_judge
from ..records import AdapterManifest, RunInfo
from ..scoring import TestTaker
from ..seeding import derive_seed
from ..storage import Store

Adapter = tuple[dict[str, Any], dict[str, Any]]  # (adapter_config, tensors)


def load_local(config: RunConfig, info: RunInfo, adapters: Mapping[str, Adapter]) -> LoadedModel:
    """Load the base model once, through the backend ``model.backend`` names, with ``adapters``
    (name → (config, tensors)) attached."""
    return load_local_backend(info.model_path, adapters, config.model, max_loras=config.max_adapters_per_stage())


def read_adapter_url(url: str, storage_options: dict[str, Any]) -> Adapter:
    """Read the PEFT adapter folder at ``url`` → (adapter_config, tensors)."""
    parent, name = url.rstrip("/").rsplit("/", 1)
    return read_adapter(Store(parent, storage_options), name)


@dataclass(frozen=True)
class TestTakers:
    """The test takers of a run and the local models they share (which also serve local judges)."""

    takers: list[TestTaker]
    local: LoadedModel

    @property
    def names(self) -> list[str]:
        """Test-taker names in answer order."""
        return [t.name for t in self.takers]


def build_test_takers(config: RunConfig, info: RunInfo, manifest: AdapterManifest) -> TestTakers:
    """Load the test takers: the base model, trained adapters and extra adapter folders share one local
    backend; each endpoint model gets an OpenAI-compatible backend."""
    options = config.storage.fsspec_options()
    adapters = {name: read_adapter_url(entry.url, options) for name, entry in manifest.adapters.items()}
    for spec in config.test_takers.extra:
        if spec.adapter is not None:
            adapters[spec.name] = read_adapter_url(
                Store(spec.adapter).root, config.storage.options_for(spec.adapter)
            )
    local = load_local(config, info, adapters)
    takers = [TestTaker("base", local.backend)] if config.test_takers.include_base else []
    takers += [TestTaker(name, local.backend, name) for name in manifest.adapters]
    for spec in config.test_takers.extra:
        if spec.adapter is not None:
            takers.append(TestTaker(spec.name, local.backend, spec.name))
        else:
            takers.append(TestTaker(spec.name, endpoint_backend(spec.endpoint, name=spec.name)))
    return TestTakers(takers, local)


def swarm_test_takers(config: RunConfig, info: RunInfo, run: Store, iteration: int) -> TestTakers:
    """The test-taker swarm's particles at ``swarms/test_takers/iter_<iteration>`` as test takers on one local
    backend (Adversarial Swarms, docs/method.md §6), named as the particles (``t0``, ``t1``, ...)."""
    from ..pso import load_swarm_state
    from ..seeding import TEST_TAKER_SWARM
    from .layout import swarm_key

    state = load_swarm_state(run, swarm_key(TEST_TAKER_SWARM, iteration))
    lora = state.metadata["lora_config"]
    local = load_local(config, info, {n: (lora, x) for n, x in zip(state.names, state.positions, strict=True)})
    return TestTakers([TestTaker(n, local.backend, n) for n in state.names], local)


def build_run_judge(config: RunConfig, name: str, local: LoadedModel, domain: str, stage: str) -> Judge:
    """The registered judge ``name`` (``judge.name`` or ``judge.dev_name``) on the run's local models, its
    random stream labelled ``stage`` (docs/method.md §3).

    Raises:
        UnknownNameError: no judge of that name.
    """
    context = JudgeContext(
        settings=config.judge, domain=domain, seed=derive_seed(config.stream_seed, stage), local=local.backend,
        tokenizer=local.tokenizer, batch_size=config.scoring.batch_size,
    )  # fmt: skip
    return build_judge(name, context)


def realistic_corpus(config: RunConfig) -> Any:
    """The BM25 corpus of real user queries (realistic objective)."""
    from ..objectives import BM25Corpus

    corpus = load_task(
        config.scoring.realistic_corpus,
        storage_options=config.storage.options_for(config.scoring.realistic_corpus),
    )
    return BM25Corpus(corpus.dev["input"].tolist(), config.scoring.realistic_neighbours)
