"""Benchmark package: the items a checkpoint's global best writes, its card, adapter and harness task files."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import BenchmarkManifest, RunInfo
from dataswarms_core.stages.package import package_key, write_package
from dataswarms_core.storage import Store

from ._retry import RETRY


def artifact_key(name: str) -> str:
    """A Prefect artifact key from a name: lowercase letters, digits and dashes, at most 80 characters."""
    return "".join(c if c.isalnum() else "-" for c in name.lower())[:80]


@task(**RETRY, name="write-package", task_run_name="write-package")
def package_run(config: RunConfig, info: RunInfo, iteration: int | None = None) -> BenchmarkManifest:
    """Write ``packages/iter_NNNN`` for the checkpoint after ``iteration`` completed iterations (default: the
    newest); publish the dataset card as a markdown artifact. Returns the manifest."""
    run = stages.run_store(config)
    manifest = write_package(config, info, run, iteration)
    publish_card(run, manifest.name, manifest.checkpoint_iteration, manifest.version)
    return manifest


def publish_card(run: Store, name: str, iteration: int, version: str) -> None:
    """Publish the dataset card of ``packages/iter_NNNN`` (without its YAML front matter) as a markdown
    artifact ``<run name>-package``."""
    card = run.child(package_key(iteration)).read_text("README.md")
    create_markdown_artifact(
        key=f"{artifact_key(name)}-package",
        markdown=card.split("\n---\n", 1)[-1],
        description=f"Benchmark package {name} (version {version})",
    )
