"""Hyper-parameter sweep of the search's settings (``dataswarms sweep``, docs/method.md §10), with optuna.

A sweep is a list of trials; each trial is an ordinary search run (``sweep-<name>-tNNN``) of the base
configuration with some settings changed (its ``params``: dotted configuration keys → values) and the same
seed, so trials differ only in those settings and share the trained adapters. Its value is the run's global
best utility, or, with ``draws`` > 0, that generator re-measured on fresh samples (docs/method.md §9).

Optuna's samplers are seeded and a finished trial's run is reused, so a sweep run again with the same
arguments asks the same trials in the same order and continues where it stopped: no study storage is needed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .config import RunConfig
from .errors import ConfigError
from .records import SweepTable, SweepTrial
from .registry import Registry
from .report import MISSING, png_bytes

if TYPE_CHECKING:
    import optuna

Value = float | int | str | bool


class Dimension(BaseModel):
    """One searched setting: a float or integer range (``low``, ``high``, optionally ``log``) or ``choices``.

    Attributes:
        key: a dotted configuration key, e.g. ``pso.inertia``.
        low, high: the range (inclusive), ``low < high``; ``log``: sampled on a log scale (``low > 0``).
        integer: whole numbers in the range.
        choices: the values to choose from (instead of a range).
        grid: the values the grid sampler tries; default: the choices, or low, middle and high of the range.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[Value] | None = None
    grid: list[Value] | None = None

    @field_validator("key")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", value):
            raise ValueError(f"{value!r}: expected a lowercase dotted setting such as pso.inertia")
        return value

    @model_validator(mode="after")
    def _kind(self) -> Dimension:
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low and high, not both")
            if not self.choices:
                raise ValueError("choices is empty")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"needs low < high (got {self.low}, {self.high}) or choices")
        elif self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        elif self.integer and math.ceil(self.low) > math.floor(self.high):
            raise ValueError(f"integer: no whole number between {self.low} and {self.high}")
        return self

    def suggest(self, trial: optuna.trial.BaseTrial) -> Value:
        """The trial's value of this setting (optuna ``suggest_categorical|int|float``)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.key, self.choices)
        assert self.low is not None and self.high is not None
        if self.integer:
            return trial.suggest_int(self.key, math.ceil(self.low), math.floor(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def grid_values(self) -> list[Value]:
        """The grid sampler's values: ``grid``, else the choices, else low, middle (geometric on a log range)
        and high."""
        if self.grid is not None:
            return list(self.grid)
        if self.choices is not None:
            return list(self.choices)
        assert self.low is not None and self.high is not None
        mid = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
        values = [self.low, mid, self.high]
        return list(dict.fromkeys(round(v) for v in values)) if self.integer else values


DEFAULT_SPACE: tuple[Dimension, ...] = (
    Dimension(key="pso.inertia", low=0.0, high=0.9),
    Dimension(key="pso.cognitive", low=0.0, high=0.9),
    Dimension(key="pso.social", low=0.0, high=0.9),
    Dimension(key="pso.repel", low=0.0, high=0.5),
    Dimension(key="pso.step_length", low=0.25, high=2.0, log=True),
    Dimension(key="pso.step_length_factor", low=0.5, high=1.0),
    Dimension(key="seed_generators.n_generators", choices=[3, 4, 6]),
)
"""The PSO settings searched by default (docs/method.md §5): weights, repel, step length and its decay, and the
swarm size (the number of seed generators)."""

SAMPLERS: Registry[Callable[[Sequence[Dimension], int], Any]] = Registry("sweep sampler")
"""Optuna samplers by name (``dataswarms sweep --sampler``): ``(space, seed) → optuna sampler``."""


@SAMPLERS.register("tpe", source="optuna.samplers.TPESampler", summary="tree-structured Parzen estimator")
def _tpe(space: Sequence[Dimension], seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, len(space))))


@SAMPLERS.register("random", source="optuna.samplers.RandomSampler", summary="independent uniform draws")
def _random(space: Sequence[Dimension], seed: int) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register(
    "grid", source="optuna.samplers.GridSampler", summary="every combination of the dimensions' grid values"
)
def _grid(space: Sequence[Dimension], seed: int) -> Any:
    import optuna

    return optuna.samplers.GridSampler({d.key: d.grid_values() for d in space}, seed=seed)


def grid_size(space: Sequence[Dimension]) -> int:
    """The number of combinations the grid sampler has (the product of the dimensions' grid sizes)."""
    return math.prod(len(d.grid_values()) for d in space)


def load_space(source: str) -> tuple[Dimension, ...]:
    """Read a search space from a YAML file: a mapping of dotted keys to ``{low, high[, log, integer, grid]}``
    or ``{choices: [...]}``.

    Raises:
        ConfigError: unreadable file, not a mapping, or an invalid dimension (naming the file and key).
    """
    try:
        with open(source, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: cannot read the sweep space ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{source}: expected a mapping of dotted settings to ranges, e.g. 'pso.inertia: {{low: 0, high: 0.9}}'")
    space = []
    for key, spec in data.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"{source}: {key}: expected a mapping with low/high or choices, got {spec!r}")
        try:
            space.append(Dimension(key=str(key), **spec))
        except ValidationError as exc:
            raise ConfigError(f"{source}: {key}: {_first_error(exc)}") from None
    return tuple(space)


def _first_error(exc: ValidationError) -> str:
    """The first validation error in one line: ``field: message`` without pydantic's "Value error, " prefix."""
    err = exc.errors()[0]
    msg = str(err["msg"]).removeprefix("Value error, ")
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {msg}" if where and where != "key" else msg


def trial_config(
    config: RunConfig, params: dict[str, Value], name: str, number: int, origin: str = "sweep space"
) -> RunConfig:
    """The configuration of trial ``number``: ``config`` with ``params`` set and the run name
    ``sweep-<name>-t<number:03d>``.

    Args:
        origin: where the settings come from, for messages (the space file).

    Raises:
        ConfigError: a key that is not a configuration setting, or a value the configuration refuses (naming
            ``origin``, the setting and the value).
    """
    data = config.model_dump(mode="json")
    for dotted, value in params.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"{origin}: {dotted} is not a configuration setting")
            node = node[part]
        if leaf not in node or isinstance(node[leaf], dict):
            raise ConfigError(f"{origin}: {dotted} is not a configuration setting")
        node[leaf] = value
    data["run_name"] = f"sweep-{name}-t{number:03d}"
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        shown = ", ".join(f"{k} = {v!r}" for k, v in params.items())
        raise ConfigError(f"{origin}: {shown} refused: {_first_error(exc)}") from None


def check_space(config: RunConfig, space: Sequence[Dimension], name: str, origin: str = "sweep space") -> None:
    """Refuse, before any work, a space whose keys are not settings or whose ends the configuration refuses
    (each dimension's lowest and highest value, or each choice, set alone).

    Raises:
        ConfigError: naming ``origin`` and the dimension.
    """
    for d in space:
        if d.choices is not None:
            values: list[Value] = list(d.choices)
        else:
            assert d.low is not None and d.high is not None
            values = [math.ceil(d.low), math.floor(d.high)] if d.integer else [d.low, d.high]
        for value in values:
            trial_config(config, {d.key: value}, name, 0, origin)


def new_study(space: Sequence[Dimension], sampler: str, seed: int) -> optuna.Study:
    """An in-memory optuna study maximising the trial values, with the seeded sampler ``sampler``.

    Raises:
        UnknownNameError: no sampler of that name.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize", sampler=SAMPLERS.get(sampler).impl(space, seed))


def sweep_table(
    name: str, objective: str, sampler: str, seed: int, measure: str, trials: list[SweepTrial]
) -> SweepTable:
    """The sweep's table; the best trial is the one with the highest value (the first on a tie; None when no
    trial has a value)."""
    scored = [t for t in trials if t.value is not None]
    best = max(scored, key=lambda t: t.value or 0.0, default=None)  # max keeps the first of equal values
    return SweepTable(
        name=name, objective=objective, sampler=sampler, seed=seed, measure=measure, trials=trials,
        best_trial=None if best is None else best.number, best_params=None if best is None else best.params,
        best_value=None if best is None else best.value,
    )  # fmt: skip


def sweep_markdown(table: SweepTable) -> str:
    """The table as markdown: one row per trial (its settings, in-search best, re-measured value, value used),
    ``—`` where missing, and the best trial."""
    keys = list(dict.fromkeys(k for t in table.trials for k in t.params))

    def cell(v: Any) -> str:
        if v is None:
            return MISSING
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = [
        f"# Sweep {table.name}: objective {table.objective}, sampler {table.sampler}, seed {table.seed}",
        "",
        "| trial | " + " | ".join(keys) + " | in-search best | re-measured | state |",
        "| ---: | " + " | ".join("---:" for _ in keys) + " | ---: | ---: | --- |",
    ]
    for t in table.trials:
        lines.append(
            f"| {t.number}{' **best**' if t.number == table.best_trial else ''} | "
            + " | ".join(cell(t.params.get(k)) for k in keys)
            + f" | {cell(t.in_search)} | {cell(t.remeasured)} | {t.state} |"
        )
    lines += ["", f"Value of a trial: {table.measure}."]
    return "\n".join(lines) + "\n"


def best_config_yaml(config: RunConfig, table: SweepTable) -> str:
    """The base configuration with the best trial's settings, as a YAML file ``dataswarms run -c`` reads (no run
    name). The best trial's comment names the sweep.

    Raises:
        ValueError: no trial has a value.
    """
    if table.best_params is None:
        raise ValueError(f"sweep {table.name}: no trial has a value, so there are no best settings")
    best = trial_config(config, table.best_params, table.name, table.best_trial or 0)
    data = best.model_dump(mode="json", exclude={"run_name"})
    head = (
        f"# Best settings of sweep {table.name} (trial {table.best_trial}, {table.measure} {table.best_value:.4g}):\n"
        + "".join(f"#   {k}: {v}\n" for k, v in table.best_params.items())
    )
    return head + yaml.safe_dump(data, sort_keys=False)


def sweep_plot(table: SweepTable) -> bytes:
    """PNG of each trial's value (a missing one is not drawn, never as a 0) and the best value so far, against
    the trial number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    pts = [(t.number, t.value) for t in table.trials if t.value is not None]
    if pts:
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, "o", label="trial value")
        best, running = [], -math.inf
        for y in ys:
            running = max(running, y)
            best.append(running)
        ax.step(xs, best, where="post", label="best so far")
        ax.legend()
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{table.objective} ({table.measure})")
    ax.set_title(f"sweep {table.name} ({table.sampler})")
    return png_bytes(fig)
