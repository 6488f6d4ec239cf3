"""Benchmark refresh (``dataswarms refresh``, docs/method.md §8): the versions of a named benchmark and how its
leaderboard moves.

A benchmark named ``B`` (``benchmark.name``) lives under ``<storage.root>/benchmarks/B/``::

    benchmark.json           BenchmarkIndex: every finished version (written last by each refresh)
    v0001/, v0002/, ...      one benchmark package per refresh (items, adapter, card, run_config.yaml),
                             with evaluations/ and leaderboard/ (leaderboard.* and change.json|csv|md)

Refresh r runs the search ``B-rNNNN`` (an ordinary run folder under ``storage.root``) with ``refresh = r`` in
its configuration, so every random stream of the search differs from the other refreshes'
(:attr:`~dataswarms_core.config.RunConfig.stream_seed`), and, from r = 2 on, ``continue_from`` = the previous
refresh's run, whose final swarm is the new search's initial swarm
(:func:`~dataswarms_core.pso.continue_swarm`). Its package becomes ``vNNNN``; the registered models
(``benchmark.models``) are evaluated on it and the leaderboard is compared with the previous version's
(:func:`leaderboard_change`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from .config import RunConfig
from .errors import ConfigError
from .records import BenchmarkManifest, Leaderboard, Record, Row
from .storage import Store, copy_folder, join

BENCHMARKS_DIR = "benchmarks"
INDEX = "benchmark.json"
CHANGE = "change"  # change.json|csv|md in the version's leaderboard folder


class BenchmarkVersion(Row):
    """One finished refresh of a benchmark (a row of ``benchmark.json``)."""

    version: int = Field(ge=1, description="1, 2, ...: the refresh number.")
    folder: str = Field(description="The version's folder name, e.g. 'v0002'.")
    run_name: str = Field(description="The search run that wrote it (B-rNNNN).")
    run_url: str
    package_version: str = Field(description="Hash of the items (BenchmarkManifest.version).")
    items: int = Field(description="Items in the package.")
    global_best_utility: float | None = Field(description="The search's global best (None: none recorded).")
    models: list[str] = Field(description="Model labels on the leaderboard, best first.")
    created: str = Field(description="UTC time, ISO 8601.")
    flow_run_id: str | None = None


class BenchmarkIndex(Record):
    """``benchmark.json``: a benchmark's finished versions, oldest first."""

    name: str
    versions: list[BenchmarkVersion] = Field(default_factory=list)


class RankMove(Row):
    """A model's line of a leaderboard change.

    ``rank_move`` = previous rank − rank (positive: the model moved up); ``delta`` = mean − previous mean on
    each version's own items (None when either mean is missing). ``status`` is ``new`` (not on the previous
    leaderboard), ``dropped`` (only there; rank and mean are None) or ``kept``.
    """

    model: str
    status: Literal["new", "kept", "dropped"]
    rank: int | None
    previous_rank: int | None
    rank_move: int | None
    mean: float | None
    previous_mean: float | None
    delta: float | None


class LeaderboardChange(Record):
    """``leaderboard/change.json`` of version ``version``: every model's rank move and score delta against
    ``previous_version`` (None for the first version: every model is new)."""

    benchmark: str
    version: int
    previous_version: int | None
    rows: list[RankMove]


@dataclass(frozen=True)
class RefreshPlan:
    """What refresh ``refresh`` of benchmark ``benchmark`` writes and reads.

    Attributes:
        benchmark: the benchmark's name.
        refresh: this refresh's number r ≥ 1 (= its version).
        config: the search's configuration (run name ``B-rNNNN``, ``refresh = r``, ``continue_from``).
        benchmark_url: ``<storage.root>/benchmarks/B``.
        version_folder: ``vNNNN``.
        previous: the previous version's index row (None for the first refresh).
    """

    benchmark: str
    refresh: int
    config: RunConfig
    benchmark_url: str
    version_folder: str
    previous: BenchmarkVersion | None

    @property
    def version_url(self) -> str:
        """URL of this version's folder."""
        return join(self.benchmark_url, self.version_folder)


def version_folder(version: int) -> str:
    """Folder name of a version: ``v0001``, ``v0002``, ..."""
    return f"v{version:04d}"


def benchmark_store(config: RunConfig) -> Store:
    """The store of ``config.benchmark.name``: ``<storage.root>/benchmarks/<name>``.

    Raises:
        ConfigError: ``benchmark.name`` is not set.
    """
    name = config.benchmark.name
    if not name:
        raise ConfigError(
            "benchmark.name: a refresh needs the benchmark's name (letters, digits, '.', '_', '-')"
        )
    return Store(join(config.storage.root, BENCHMARKS_DIR, name), config.storage.fsspec_options())


def read_index(store: Store, name: str) -> BenchmarkIndex:
    """The benchmark's ``benchmark.json``, or an empty index before its first finished refresh.

    Raises:
        StorageError, FormatError: the file exists but is not a valid index (naming the file and field).
    """
    if not store.exists(INDEX):
        return BenchmarkIndex(name=name)
    index = BenchmarkIndex.read(store, INDEX)
    if index.name != name:
        raise ConfigError(f"{store.url(INDEX)}: belongs to benchmark {index.name!r}, expected {name!r}")
    return index


def plan_refresh(config: RunConfig) -> RefreshPlan:
    """Plan the next refresh of ``config.benchmark``: number r = finished versions + 1, and the search's
    configuration. A refresh that failed part-way has not written its index row, so planning again (a retry)
    gives the same r, run name and folders, and the refresh resumes where it stopped.

    Raises:
        ConfigError: no ``benchmark.name``, no ``benchmark.models`` (or two with one label), ``mode`` is not
            ``data-swarms``, or the index belongs to another benchmark.
        ModelError: a model of ``benchmark.models`` is missing (checked before any work).
    """
    store = benchmark_store(config)
    name = config.benchmark.name or ""
    if not config.benchmark.models:
        raise ConfigError(f"benchmark.models: benchmark {name!r} lists no model to evaluate on each version")
    if config.mode != "data-swarms":
        raise ConfigError(f"mode: a benchmark refresh runs mode 'data-swarms', got {config.mode!r}")
    from .model_spec import parse_model_spec
    from .stages.evaluate import check_specs

    specs = [parse_model_spec(m) for m in config.benchmark.models]
    check_specs(specs, config.storage.fsspec_options(), where="benchmark.models")
    index = read_index(store, name)
    r = len(index.versions) + 1
    previous = index.versions[-1] if index.versions else None
    search = config.model_copy(
        update={
            "run_name": f"{name}-r{r:04d}",
            "refresh": r,
            "continue_from": previous.run_url if previous else None,
        }
    )
    return RefreshPlan(
        name, r, RunConfig.model_validate(search.model_dump()), store.root, version_folder(r), previous
    )


def leaderboard_change(
    benchmark: str,
    version: int,
    current: Leaderboard,
    previous: Leaderboard | None,
    previous_version: int | None,
) -> LeaderboardChange:
    """Compare version ``version``'s leaderboard with the previous version's, model by model (matched by label).

    Rows follow the current ranking; models only on the previous leaderboard come last, in their old order.

    Args:
        current: the new version's leaderboard.
        previous: the previous version's (None for the first version: every model is ``new``).

    Returns:
        A :class:`LeaderboardChange`; ``rank_move`` and ``delta`` as defined on :class:`RankMove`.
    """
    before = {r.model: r for r in previous.rows} if previous is not None else {}
    rows = []
    for r in current.rows:
        old = before.get(r.model)
        rows.append(
            RankMove(
                model=r.model,
                status="kept" if old is not None else "new",
                rank=r.rank,
                previous_rank=old.rank if old else None,
                rank_move=old.rank - r.rank if old else None,
                mean=r.mean,
                previous_mean=old.mean if old else None,
                delta=r.mean - old.mean if old and r.mean is not None and old.mean is not None else None,
            )
        )
    now = {r.model for r in current.rows}
    for old in previous.rows if previous is not None else []:
        if old.model not in now:
            rows.append(
                RankMove(
                    model=old.model,
                    status="dropped",
                    rank=None,
                    previous_rank=old.rank,
                    rank_move=None,
                    mean=None,
                    previous_mean=old.mean,
                    delta=None,
                )  # fmt: skip
            )
    return LeaderboardChange(
        benchmark=benchmark, version=version, previous_version=previous_version, rows=rows
    )


def _cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _move(row: RankMove) -> str:
    if row.status != "kept":
        return row.status
    if row.rank_move == 0:
        return "="
    return f"▲{row.rank_move}" if row.rank_move and row.rank_move > 0 else f"▼{-(row.rank_move or 0)}"


def change_markdown(change: LeaderboardChange) -> str:
    """The change as a markdown table (rank, move, model, mean, previous mean, delta); missing values are ``—``."""
    against = (
        f"against {version_folder(change.previous_version)}"
        if change.previous_version is not None
        else "(first version: no previous leaderboard)"
    )
    lines = [
        f"# {change.benchmark} {version_folder(change.version)}: leaderboard change {against}",
        "",
        "| rank | move | model | mean | previous mean | delta |",
        "| ---: | :---: | --- | ---: | ---: | ---: |",
    ]
    for r in change.rows:
        rank = "—" if r.rank is None else str(r.rank)
        lines.append(
            f"| {rank} | {_move(r)} | {r.model} | {_cell(r.mean)} | {_cell(r.previous_mean)} | {_cell(r.delta, True)} |"
        )
    lines.append("")
    lines.append(
        "Means are each version's mean judge score on its own items; a delta compares two different item sets."
    )
    return "\n".join(lines) + "\n"


def write_change(change: LeaderboardChange, folder: Store) -> dict[str, str]:
    """Write ``change.json``, ``change.csv`` and ``change.md`` into ``folder``; return role → URL."""
    import pandas as pd

    rows = [r.model_dump() for r in change.rows]
    frame = pd.DataFrame(rows, columns=list(RankMove.model_fields))
    return {
        "csv": folder.write_csv(f"{CHANGE}.csv", frame),
        "markdown": folder.write_text(f"{CHANGE}.md", change_markdown(change)),
        "json": change.write(folder, f"{CHANGE}.json"),
    }


def publish_version(plan: RefreshPlan, package_url: str, options: dict | None = None) -> BenchmarkManifest:
    """Copy the search's benchmark package (``<run>/packages/iter_NNNN``) to the version folder, its
    ``package.json`` last, so a folder with a manifest is complete; a version folder already holding the same
    items (a retried refresh) is kept as it is, with its stored evaluations.

    Returns:
        The version's :class:`~dataswarms_core.records.BenchmarkManifest`.

    Raises:
        StorageError: the package has no ``package.json``.
    """
    from .stages.package import EVALUATIONS, MANIFEST

    opts = plan.config.storage.fsspec_options() if options is None else options
    source = Store(package_url, plan.config.storage.options_for(package_url))
    manifest = BenchmarkManifest.read(source, MANIFEST)
    target = Store(plan.version_url, opts)
    if target.exists(MANIFEST) and BenchmarkManifest.read(target, MANIFEST).version == manifest.version:
        return manifest
    target.remove(MANIFEST)
    copy_folder(source, "", target, "", exclude=(MANIFEST, EVALUATIONS))
    target.write_bytes(MANIFEST, source.read_bytes(MANIFEST))
    return manifest


def record_version(plan: RefreshPlan, row: BenchmarkVersion) -> BenchmarkIndex:
    """Append ``row`` to ``benchmark.json`` (the refresh's last write: from then on the version is finished).
    Recording the same version again (a retried refresh that already finished) replaces its row."""
    store = Store(plan.benchmark_url, plan.config.storage.fsspec_options())
    index = read_index(store, plan.benchmark)
    versions = [v for v in index.versions if v.version != row.version] + [row]
    index = BenchmarkIndex(name=plan.benchmark, versions=sorted(versions, key=lambda v: v.version))
    index.write(store, INDEX)
    return index
