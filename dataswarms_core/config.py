"""The run configuration: one pydantic model per component, nested into :class:`RunConfig`.

A run is configured by a YAML file mirroring :class:`RunConfig` (see ``configs/quickstart.yaml`` and
``configs/paper.yaml``). Field defaults are the paper's sizes (a GPU run); the built-in ``quickstart`` config
shrinks them so a search finishes in minutes on a 2-core CPU.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .pso.config import PSOConfig

BUILTIN_CONFIGS = ("quickstart", "paper")
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    """The base model all adapters sit on."""

    base_model: str = Field(
        "smollm2-135m-instruct",
        description="A built-in name (smollm2-135m-instruct) or a local Hugging Face model folder.",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available.")


class TaskConfig(_Section):
    """The task: real items (``input``, optional ``output``) and a domain phrase."""

    source: str = Field(
        "gsm8k-quickstart",
        description="A built-in task name or a file path/URL: JSON {dev, test}, JSONL, CSV or Parquet.",
    )
    domain: str | None = Field(
        None, description="Domain phrase for prompts, e.g. 'math reasoning'; default: the file's, or generic."
    )
    max_dev_items: int | None = Field(None, ge=1, description="Use at most this many dev items (first ones).")


class LoraSettings(_Section):
    """LoRA configuration shared by every adapter of a swarm (PEFT ``LoraConfig`` names)."""

    r: int = Field(8, ge=1, description="LoRA rank r: lora_A is r × in_features, lora_B out_features × r.")
    lora_alpha: int = Field(16, ge=1, description="Scaling = lora_alpha / r.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        description="Module names that get LoRA factors.",
    )
    lora_dropout: float = Field(0.0, ge=0, lt=1)


class SeedGeneratorConfig(_Section):
    """Seed-generator SFT (DESIGN §1): k-means clusters of dev inputs, one LoRA adapter per cluster."""

    n_generators: int = Field(4, ge=1, description="K: clusters = seed generators = particles.")
    embedding: Literal["minilm", "tfidf"] = Field(
        "minilm", description="Sentence embeddings (all-MiniLM-L6-v2, offline) or TF-IDF for k-means."
    )
    steps: int = Field(200, ge=1, description="Optimiser steps per adapter.")
    batch_size: int = Field(4, ge=1, description="Sequences per step.")
    learning_rate: float = Field(1e-4, gt=0)
    lora: LoraSettings = Field(default_factory=LoraSettings)


class TestTakerConfig(_Section):
    """Test takers: the base model and LoRA adapters trained on input→output pairs of different clusters."""

    include_base: bool = Field(True, description="The base model itself is a test taker.")
    n_adapters: int = Field(2, ge=0, description="LoRA test takers, each on another cluster's pairs.")
    steps: int = Field(100, ge=1)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    lora: LoraSettings = Field(default_factory=LoraSettings)

    @model_validator(mode="after")
    def _at_least_one(self) -> TestTakerConfig:
        if not self.include_base and self.n_adapters == 0:
            raise ValueError(
                "test_takers: include_base is false and n_adapters is 0; need at least one test taker"
            )
        return self


class GenerationConfig(_Section):
    """Item synthesis (DESIGN §2). Paper: 5 shown, 5 written, 40 calls (200 items), 512 new tokens."""

    items_shown: int = Field(5, ge=1, description="Real dev items shown per call.")
    items_written: int = Field(5, ge=1, description="New items asked for per call.")
    calls_per_generator: int = Field(40, ge=1, description="Calls per generator and iteration.")
    max_new_tokens: int = Field(512, ge=8)
    temperature: float = Field(0.7, gt=0)
    top_p: float = Field(0.95, gt=0, le=1)
    batch_size: int = Field(32, ge=1, description="Sequences per generate() call, mixed across adapters.")


class ScoringConfig(_Section):
    """Test takers answer the items; a judge scores each answer in [0, 1]; the objective gives utilities."""

    objective: Literal["difficulty"] = Field("difficulty", description="Objective maximised (DESIGN §4).")
    judge: Literal["expected-score"] = Field("expected-score", description="Judge (DESIGN §3).")
    answer_max_new_tokens: int = Field(256, ge=1, description="Length limit of a test taker's answer.")
    answer_temperature: float = Field(0.0, ge=0, description="0: greedy answers.")
    batch_size: int = Field(32, ge=1, description="Sequences per generate()/forward call.")
    on_empty_generator: Literal["worst", "error"] = Field(
        "worst",
        description=(
            "A generator none of whose output could be parsed into items: 'worst' gives it the objective's "
            "lowest value (counted as empty_generators in metrics and summary), 'error' stops the run."
        ),
    )


class ExportConfig(_Section):
    """Export of the global-best generator and the synthetic data set it samples."""

    calls: int = Field(
        40, ge=1, description="Calls the global-best generator makes for the exported data set."
    )


class StorageConfig(_Section):
    """Where runs are written: a local folder or an fsspec URL (``s3://bucket/prefix``)."""

    root: str = Field("./runs", description="Runs are written to <root>/<run_name>.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec storage options (e.g. s3 endpoint); never written out."
    )


class RunConfig(_Section):
    """A whole Data Swarms search."""

    run_name: str | None = Field(None, description="Default: <task>-<objective>-<UTC time>.")
    seed: int = Field(0, ge=0, description="Master seed; every random draw derives from it.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    seed_generators: SeedGeneratorConfig = Field(default_factory=SeedGeneratorConfig)
    test_takers: TestTakerConfig = Field(default_factory=TestTakerConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    pso: PSOConfig = Field(default_factory=PSOConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @field_validator("run_name")
    @classmethod
    def _run_name(cls, value: str | None) -> str | None:
        if value is not None and not RUN_NAME_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a valid run name: use 1-128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    def public_dict(self) -> dict[str, Any]:
        """The configuration as JSON-able data, without storage options (they may hold credentials)."""
        data = self.model_dump(mode="json")
        data["storage"]["options"] = {k: "***" for k in self.storage.options}
        return data


def config_hash(section: BaseModel | dict[str, Any]) -> str:
    """SHA-256 (hex, 16 chars) of a section's canonical JSON, for cache keys."""
    data = section.model_dump(mode="json") if isinstance(section, BaseModel) else section
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _format_validation_error(origin: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    got = (
        f"; got {first['input']!r}"
        if first["type"] != "missing" and not isinstance(first["input"], dict)
        else ""
    )
    return f"{origin}: {loc}: {first['msg']}{got}{more}"


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {part} is not a section")
    node[parts[-1]] = value


def load_config(
    source: str | Path | None = "quickstart", overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Load a run configuration.

    Args:
        source: ``"quickstart"`` / ``"paper"`` (built-in), a YAML file path, or None for the field defaults.
        overrides: dotted keys to set after loading, e.g. ``{"pso.max_iterations": 3, "seed": 1}``;
            None values are ignored.

    Raises:
        ConfigError: unreadable file, invalid YAML, unknown field or invalid value, naming file and field.
    """
    data: dict[str, Any] = {}
    origin = "defaults"
    if source is not None:
        origin = str(source)
        if str(source) in BUILTIN_CONFIGS:
            text = resources.files("dataswarms_core.configs").joinpath(f"{source}.yaml").read_text()
        else:
            path = Path(source)
            if not path.is_file():
                raise ConfigError(
                    f"{source}: config file not found (give a YAML file or one of {', '.join(BUILTIN_CONFIGS)})"
                )
            text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: invalid YAML ({str(exc).splitlines()[0]})") from exc
        if not isinstance(data, dict):
            raise ConfigError(
                f"{origin}: expected a mapping of sections at the top level, got {type(data).__name__}"
            )
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(origin, exc)) from None
