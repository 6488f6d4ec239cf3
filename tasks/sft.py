"""Seed-generator and test-taker LoRA SFT, cached by Prefect on a hash of everything they depend on."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import AdapterManifest, RunInfo
from dataswarms_core.storage import Store

from ._log import adapters_line, log_info
from ._retry import RETRY

# config and info are excluded from the key: ``cache_key`` already hashes the parts of them that matter
# (data hash, base model fingerprint, SFT settings, seed), so changing e.g. PSO settings reuses adapters.
ADAPTER_CACHE = (INPUTS - "config" - "info") + TASK_SOURCE


@task(
    **RETRY,
    name="train-seed-generators",
    task_run_name="train-seed-generators",
    cache_policy=ADAPTER_CACHE,
    persist_result=True,
)
def train_seed_generators(config: RunConfig, info: RunInfo, cache_key: str, dest_url: str) -> AdapterManifest:
    """Cluster the dev inputs and train one LoRA generator per cluster (docs/method.md §1) into ``dest_url``.
    Returns the adapters' manifest (names → URLs, losses), and logs the losses."""
    manifest = stages.train_seed_generators(config, info, Store(dest_url, config.storage.fsspec_options()))
    log_info(adapters_line(manifest))
    return manifest


@task(
    **RETRY,
    name="train-test-takers",
    task_run_name="train-test-takers",
    cache_policy=ADAPTER_CACHE,
    persist_result=True,
)
def train_test_takers(config: RunConfig, info: RunInfo, cache_key: str, dest_url: str) -> AdapterManifest:
    """Train the LoRA test takers on input→output pairs of different clusters into ``dest_url``.
    Returns the adapters' manifest, and logs the losses."""
    manifest = stages.train_test_takers(config, info, Store(dest_url, config.storage.fsspec_options()))
    log_info(adapters_line(manifest))
    return manifest
