"""The run configuration: one pydantic model per component, nested into :class:`RunConfig`.

A run is configured by a YAML file mirroring :class:`RunConfig` (see ``configs/quickstart.yaml`` and
``configs/paper.yaml``). Field defaults are the paper's sizes (a GPU run); the built-in ``quickstart`` config
shrinks them so a search finishes in minutes on a 2-core CPU.

This module is longer than the others on purpose: it holds one concern, the configuration schema, one section
class per YAML section in the order of the file, so a reader finds every field, default and check in one
place. Reading a YAML file into it (with one-line errors) is :mod:`dataswarms_core.config_files`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .backends import BACKENDS, local_backend_names
from .judges import JUDGES
from .objectives import COMPOSITE, OBJECTIVES, objective_needs
from .pso.config import PSOConfig
from .seeding import derive_seed

MASK = "***"  # what storage option values become in JSON output
SEED_LIMIT = 2**63  # seeds are stored as Parquet/NumPy int64
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _checked_name(value: str | None, what: str) -> str | None:
    """A run or benchmark name is a folder name that is safe in URLs (:data:`RUN_NAME_PATTERN`)."""
    if value is not None and not RUN_NAME_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a valid {what}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class VLLMSettings(_Section):
    """Engine settings of the ``vllm`` backend (``model.vllm``); ignored by the ``hf`` backend."""

    gpu_memory_utilization: float = Field(
        0.85, gt=0, le=1, description="Share of the GPU's memory vLLM may take (weights, KV cache, adapters)."
    )
    max_model_len: int | None = Field(
        None, ge=16, le=10**7, description="Context length the engine reserves; default: the model's."
    )
    max_loras: int | None = Field(
        None, ge=1, le=1024,
        description="Adapters resident on the GPU per batch; default: the most any stage serves (the larger swarm).",
    )  # fmt: skip
    max_lora_rank: int | None = Field(
        None, ge=1, le=512, description="The engine's max_lora_rank; default: the smallest vLLM value ≥ lora.r."
    )
    enforce_eager: bool = Field(False, description="Skip CUDA graph capture (faster start, slower decoding).")


class ModelConfig(_Section):
    """The base model all adapters sit on."""

    base_model: str = Field(
        "smollm2-135m-instruct",
        min_length=1,
        description=(
            "A built-in name (smollm2-135m-instruct), a local Hugging Face model folder, or a Hugging Face "
            "Hub id (org/name: from the HF cache, downloaded once when online)."
        ),
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available.")
    backend: str = Field(
        "hf", description="Local generation backend (a registered one of kind 'local', see backends.py): hf or vllm."
    )
    vllm: VLLMSettings = Field(default_factory=VLLMSettings)

    @field_validator("backend")
    @classmethod
    def _local_backend(cls, value: str) -> str:
        local = local_backend_names()
        if value not in local:
            kind = BACKENDS.get(value).extra.get("kind") if value in BACKENDS else None
            what = f"{value!r} is an {kind} backend" if kind else f"unknown local backend {value!r}"
            raise ValueError(f"{what}; known local backends: {', '.join(local)}")
        return value


class TaskConfig(_Section):
    """The task: real items (``input``, optional ``output``) and a domain phrase."""

    source: str = Field(
        "gsm8k-quickstart",
        description="A built-in task name or a file path/URL: JSON {dev, test}, JSONL, CSV or Parquet.",
    )
    domain: str | None = Field(
        None, description="Domain phrase for prompts, e.g. 'math reasoning'; default: the file's, or generic."
    )
    max_dev_items: int | None = Field(
        None, ge=1, le=10**9, description="Use at most this many dev items (first ones); 1 to 10^9."
    )
    licence: str | None = Field(
        None,
        description="The task data's licence, for the package's dataset card; default: the file's "
        "'license' field, else its 'source' text, else 'not stated'.",
    )
    long_items: Literal["refuse", "exclude"] = Field(
        "refuse",
        description=(
            "Dev items longer than the prompts leave room for in the model's context: 'refuse' the run up "
            "front, or 'exclude' them (counted in run.json)."
        ),
    )


class LoraSettings(_Section):
    """LoRA configuration shared by every adapter of a swarm (PEFT ``LoraConfig`` names)."""

    r: int = Field(
        8,
        ge=1,
        le=4096,
        description="LoRA rank r (1 to 4096): lora_A is r × in_features, lora_B out_features × r.",
    )
    lora_alpha: int = Field(16, ge=1, le=65536, description="Scaling = lora_alpha / r (1 to 65536).")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        description="Module names that get LoRA factors.",
    )
    lora_dropout: float = Field(
        0.0, ge=0, lt=1, description="Dropout probability on the LoRA input, in [0, 1)."
    )


_Steps = Annotated[int, Field(ge=1, le=10**7, description="Optimiser steps per adapter (1 to 10^7).")]
_BatchSize = Annotated[int, Field(ge=1, le=65536, description="Sequences per optimiser step (1 to 65536).")]
_GenerateBatch = Annotated[int, Field(ge=1, le=65536)]  # sequences per generate()/forward call
_NewTokens = Annotated[int, Field(le=10**6)]  # a token limit: at most 10^6 (with a section's own minimum)


class SFTSettings(_Section):
    """Supervised LoRA fine-tuning (docs/method.md §1), shared by seed generators and test takers: causal-LM
    loss on the reply only. Defaults here are the seed generators'; a section may override them."""

    steps: _Steps = 200
    batch_size: _BatchSize = 4
    learning_rate: float = Field(1e-4, gt=0, le=1, description="AdamW learning rate, in (0, 1] and finite.")
    lora: LoraSettings = Field(default_factory=LoraSettings)


# Pydantic orders fields by reversed MRO: a section lists its own choices in a base named after SFTSettings
# (``class X(SFTSettings, _XChoices)``), so its YAML dump keeps them before the SFT settings.
class _SeedGeneratorChoices(_Section):
    n_generators: int = Field(
        4,
        ge=2,
        le=1024,
        description="K: clusters = seed generators = particles; 2 to 1024 (a swarm of 1 never moves).",
    )
    embedding: Literal["minilm", "tfidf"] = Field(
        "minilm", description="Sentence embeddings (all-MiniLM-L6-v2, offline) or TF-IDF for k-means."
    )

    @field_validator("n_generators", mode="before")
    @classmethod
    def _a_swarm(cls, value: Any) -> Any:
        # Before the ge=2 constraint, to say why (docs/method.md §5): with one particle x = p = g = w and
        # v = 0 after the first iteration, so every term of the update is zero.
        if isinstance(value, int) and not isinstance(value, bool) and value < 2:
            what = "a swarm of 1 particle never moves" if value == 1 else f"{value} particles is no swarm"
            raise PydanticCustomError(
                "swarm_size",
                f"{what}: every term of the PSO update is zero; use at least 2 seed generators",
            )
        return value


class SeedGeneratorConfig(SFTSettings, _SeedGeneratorChoices):
    """Seed-generator SFT (docs/method.md §1): k-means clusters of dev inputs, one LoRA adapter per cluster."""


class EndpointConfig(_Section):
    """An OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp server, transformers serve)."""

    base_url: str = Field(..., pattern=r"^https?://[^\s/]+", description="e.g. http://127.0.0.1:8000/v1")
    model: str = Field(..., min_length=1, description="Model name sent with each request.")
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the API key (the key is never logged)."
    )
    timeout: float = Field(60.0, gt=0, le=86400, description="Seconds per request, in (0, 86400].")
    max_retries: int = Field(
        3, ge=0, le=100, description="Client retries with exponential backoff on transient errors (0 to 100)."
    )
    concurrency: int = Field(4, ge=1, le=1024, description="Requests in flight at once (1 to 1024).")


class TestTakerSpec(_Section):
    """An extra test taker: the base model with a PEFT adapter folder, or an endpoint model."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    adapter: str | None = Field(
        None, description="A PEFT adapter folder (local path or URL) on the base model."
    )
    endpoint: EndpointConfig | None = Field(None, description="An OpenAI-compatible endpoint model.")

    @model_validator(mode="after")
    def _one_kind(self) -> TestTakerSpec:
        if (self.adapter is None) == (self.endpoint is None):
            raise ValueError(f"test taker {self.name}: give exactly one of 'adapter' or 'endpoint'")
        return self


class _TestTakerChoices(_Section):
    include_base: bool = Field(True, description="The base model itself is a test taker (named 'base').")
    n_adapters: int = Field(
        2, ge=0, le=1024, description="LoRA test takers t0.., each on another cluster's pairs (0 to 1024)."
    )


class TestTakerConfig(SFTSettings, _TestTakerChoices):
    """Test takers: the base model, LoRA adapters trained on input→output pairs of different clusters, and
    any extra adapter folders or endpoint models."""

    steps: _Steps = 100
    batch_size: _BatchSize = 8
    extra: list[TestTakerSpec] = Field(
        default_factory=list, description="Adapter folders and endpoint models."
    )

    @model_validator(mode="after")
    def _at_least_one(self) -> TestTakerConfig:
        if not self.include_base and self.n_adapters == 0 and not self.extra:
            raise ValueError(
                "test_takers: no base model, no adapters and no extra test takers; need at least one"
            )
        reserved = {"base", *(f"t{j}" for j in range(self.n_adapters))}
        names = [t.name for t in self.extra]
        clash = sorted({n for n in names if n in reserved or names.count(n) > 1})
        if clash:
            raise ValueError(
                f"test_takers.extra: names {clash} repeat or clash with base/t0..t{self.n_adapters - 1}"
            )
        return self


class GenerationConfig(_Section):
    """Item synthesis (docs/method.md §2). Paper: 5 shown, 5 written, 40 calls (200 items), 512 new tokens."""

    items_shown: int = Field(5, ge=1, le=1000, description="Real dev items shown per call (1 to 1000).")
    items_written: int = Field(5, ge=1, le=1000, description="New items asked for per call (1 to 1000).")
    calls_per_generator: int = Field(
        40, ge=1, le=10**6, description="Calls per generator and iteration (1 to 10^6)."
    )
    max_new_tokens: _NewTokens = Field(512, ge=8, description="Reply length limit (8 to 10^6 tokens).")
    temperature: float = Field(0.7, gt=0, le=10, description="Sampling temperature, in (0, 10].")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling probability mass, in (0, 1].")
    batch_size: _GenerateBatch = Field(
        32, description="Sequences per generate() call, mixed across adapters (1 to 65536)."
    )


_MOVED_TO_JUDGE = {
    "judge": "name",
    "dev_judge": "dev_name",
    "judge_endpoint": "endpoint",
    "judge_retries": "retries",
    "judge_max_new_tokens": "max_new_tokens",
}


_Weight = Annotated[float, Field(ge=0, le=1e6, description="A composite weight: finite, 0 to 10^6.")]


class ScoringConfig(_Section):
    """Test takers answer the items; a judge scores each answer in [0, 1]; the objective gives utilities."""

    objective: str = Field(
        "difficulty",
        description="Objective maximised (docs/method.md §4): a registered objective or 'composite'.",
    )
    composite_weights: dict[str, _Weight] = Field(
        default_factory=lambda: {"difficulty": 0.6, "separation": 0.2, "novelty": 0.2},
        description=(
            "Weights of the composite objective (the authors': 0.6 / 0.2 / 0.2): each finite, 0 to 10^6, at "
            "least one > 0."
        ),
    )
    normalise: bool = Field(
        False,
        description=(
            "Composite: min–max normalise each objective across the current swarm before weighting. The "
            "utilities are then relative to this iteration's swarm, so personal/global bests compare values "
            "on shifting scales; off (the authors' fixed weighted sum) keeps them comparable."
        ),
    )
    consistency_sets: int = Field(
        4, ge=2, le=1000, description="R: independent item sets per generator (consistency); 2 to 1000."
    )
    novelty_dev_items: int = Field(
        50,
        ge=1,
        le=10**6,
        description="Real dev items the test takers answer once per run (novelty); 1 to 10^6.",
    )
    realistic_corpus: str = Field(
        "user-queries-sample",
        description="Corpus of real user queries (built-in name or JSONL/CSV/... file).",
    )
    realistic_neighbours: int = Field(
        5, ge=1, le=10**4, description="k nearest corpus queries averaged per item (1 to 10^4)."
    )
    answer_max_new_tokens: _NewTokens = Field(
        256, ge=1, description="Length limit of a test taker's answer (1 to 10^6 tokens)."
    )
    answer_temperature: float = Field(0.0, ge=0, le=10, description="In [0, 10]; 0: greedy answers.")
    batch_size: _GenerateBatch = Field(32, description="Sequences per generate()/forward call (1 to 65536).")
    on_empty_generator: Literal["worst", "error"] = Field(
        "worst",
        description=(
            "A generator none of whose output could be parsed into items: 'worst' gives it the objective's "
            "lowest value (counted as empty_generators in metrics and summary), 'error' stops the run."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        moved = [k for k in _MOVED_TO_JUDGE if isinstance(data, dict) and k in data]
        if moved:
            raise PydanticCustomError(
                "moved_key",
                "; ".join(f"scoring.{k} moved to judge.{_MOVED_TO_JUDGE[k]}" for k in moved),
            )
        return data

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, value: str) -> str:
        if value != COMPOSITE and value not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {value!r}; known: {', '.join([*OBJECTIVES.names(), COMPOSITE])}"
            )
        return value

    @field_validator("composite_weights")
    @classmethod
    def _known_components(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [k for k in value if k not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objective(s) {unknown}; known: {', '.join(OBJECTIVES.names())}")
        return value

    @model_validator(mode="after")
    def _check(self) -> ScoringConfig:
        # Each weight is checked on its own (>= 0, finite, <= 1e6: the field's type); here only the set.
        if self.objective == COMPOSITE and not any(w > 0 for w in self.composite_weights.values()):
            given = ", ".join(f"{k}: {w:g}" for k, w in self.composite_weights.items()) or "none"
            raise ValueError(
                f"scoring.composite_weights: no weight > 0 ({given}); the composite objective needs at "
                "least one objective with a weight > 0"
            )
        return self

    @property
    def components(self) -> list[str]:
        """The objectives whose values a run needs: the composite's weighted ones (in registration order),
        or the objective."""
        if self.objective == COMPOSITE:
            return [k for k in OBJECTIVES.names() if k in self.composite_weights]
        return [self.objective]


class JudgeConfig(_Section):
    """The judges (docs/method.md §3): one for generated items, one for real dev items (novelty's reference
    scores). Names are registered judges (``judges.JUDGES``)."""

    name: str = Field("expected-score", description="Judge of generated items.")
    dev_name: str = Field(
        "reference",
        description="Judge of real dev items (novelty's reference scores); 'reference' compares with output.",
    )
    endpoint: EndpointConfig | None = Field(
        None,
        description="Judge with an endpoint model instead of the base model (judges without token probs).",
    )
    retries: int = Field(
        2,
        ge=0,
        le=100,
        description="Generative judge: extra attempts for a reply without a score (0 to 100).",
    )
    max_new_tokens: _NewTokens = Field(
        16, ge=2, description="Generative judge: reply length limit (2 to 10^6 tokens)."
    )

    @field_validator("name", "dev_name")
    @classmethod
    def _known(cls, value: str) -> str:
        JUDGES.get(value)  # UnknownNameError (a ValueError) lists the known judges
        return value

    @model_validator(mode="after")
    def _check(self) -> JudgeConfig:
        # Generated items carry no reference answers; an endpoint gives no token probabilities.
        needs = JUDGES.get(self.name).needs
        for need, problem in (
            (
                "reference_answers",
                "needs reference answers, which generated items lack (use it as judge.dev_name)",
            ),
            ("token_probs", "needs token probabilities, which judge.endpoint cannot give"),
        ):
            if need in needs and (need == "reference_answers" or self.endpoint is not None):
                usable = [e.name for e in JUDGES if not {"reference_answers", need} & e.needs]
                raise ValueError(f"judge.name {self.name!r} {problem}; use one of: {', '.join(usable)}")
        return self


class CopyConfig(_Section):
    """Copy detection (docs/method.md §2, "Copies"): a generated item that near-duplicates a real item the
    generator was shown, a dev or test item of the task, or an earlier item of the same iteration is a copy,
    not synthetic data. Copies are counted per generator, left out of the objective and of the package.

    An item is a copy when either measure reaches its threshold against some reference text:

    - word n-gram overlap: the share of the item's word ``ngram``-grams that occur in the reference
      (containment, in [0, 1]);
    - embedding cosine between all-MiniLM-L6-v2 sentence embeddings (in [-1, 1]).
    """

    enabled: bool = Field(True, description="Detect copies (false: every parsed item is kept, as in the paper).")
    ngram: int = Field(3, ge=1, le=20, description="Word n-gram length for the overlap measure (1 to 20).")
    overlap_threshold: float = Field(
        0.7, gt=0.0, le=1.0, description="An overlap at or above this marks a copy (0 < t <= 1)."
    )
    embedding_threshold: float | None = Field(
        0.9,
        gt=-1.0,
        le=1.0,
        description="A cosine at or above this marks a copy (-1 < t <= 1); null: n-gram overlap only.",
    )
    against: list[Literal["shown", "dev", "test", "items"]] = Field(
        default_factory=lambda: ["shown", "dev", "test", "items"],
        min_length=1,
        description="What an item is compared with: the items shown in its call, the task's dev and test "
        "items, earlier items of the same iteration.",
    )


class ExportConfig(_Section):
    """The benchmark package: items sampled from the global-best generator, a dataset card, the adapter and
    harness task files (docs/method.md §7)."""

    items: int = Field(
        200,
        ge=1,
        le=10**7,
        description="Target number of items in the package (1 to 10^7); the global best makes "
        "ceil(items / generation.items_written) calls, then more (at most max_extra_calls) until the target "
        "is met.",
    )
    max_extra_calls: int = Field(
        40,
        ge=0,
        le=10**7,
        description="Calls allowed beyond the first ceil(items / items_written) to replace unparsable, "
        "duplicate and copied items (0 to 10^7).",
    )
    answers: Literal["reference-model", "none"] = Field(
        "none",
        description="'reference-model': each item gets the answer of export.reference_model, marked as "
        "model-written (the harness task files need them); 'none': no answers.",
    )
    reference_model: str | None = Field(
        None,
        description="The model that writes reference answers, as a model spec (see `dataswarms evaluate "
        "--help`); default: the base model.",
    )
    @model_validator(mode="before")
    @classmethod
    def _moved_calls(cls, data: Any) -> Any:
        if isinstance(data, dict) and "calls" in data:
            raise ValueError(
                "export.calls was replaced by export.items (the number of items: calls × "
                "generation.items_written) and export.max_extra_calls"
            )
        return data

    test_items: int = Field(
        50,
        ge=0,
        le=10**6,
        description="Real test items of the task copied into the package for the rank comparison of "
        "`dataswarms evaluate` (0 to 10^6; fewer when the task has fewer; 0: none).",
    )


class AdversarialConfig(_Section):
    """Adversarial Swarms (docs/method.md §6; ``mode: adversarial``): the LoRA test takers
    (``test_takers.n_adapters`` of them, trained on different clusters) are a second swarm. Each iteration the
    generators are scored by difficulty against the current test-taker swarm and move; the moved generators
    write items, each entry of a pool of real dev items is replaced with probability
    ``replacement_probability`` by one of them; each test taker's utility is its mean judge score on the
    pool, and the test-taker swarm moves. The generalisation curve is the held-out score of each iteration's
    best test taker on real test items.

    In this mode the generators are scored against the test-taker swarm only: ``test_takers.include_base``
    does not apply, and ``test_takers.extra`` is refused.
    """

    pool: Literal["adversarial", "static"] = Field(
        "adversarial",
        description="'adversarial': generated items replace pool entries; 'static': the control, the pool "
        "stays the real dev items.",
    )
    pool_size: int = Field(
        200, ge=1, le=10**6, description="Real dev items in the pool (the first ones; 1 to 10^6)."
    )
    replacement_probability: float = Field(
        0.2, ge=0, le=1, description="p: each pool entry is replaced by a generated item with probability p."
    )
    test_items: int = Field(
        200,
        ge=1,
        le=10**6,
        description="Held-out real test items (the first ones; fewer when the task has fewer) on which each "
        "iteration's best test taker is scored (1 to 10^6).",
    )
    pso: PSOConfig = Field(
        default_factory=PSOConfig,
        description="PSO settings of the test-taker swarm; the run ends when either swarm stops (its "
        "patience, or the smaller of pso.max_iterations and adversarial.pso.max_iterations).",
    )


class StorageConfig(_Section):
    """Where runs are written: a local folder or an fsspec URL (``s3://bucket/prefix``).

    S3 goes through s3fs. Credentials come from the standard AWS environment variables
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``) or from
    ``options`` (``key`` / ``secret``); they are never logged, written to ``config.yaml`` or
    ``summary.json``, nor stored in Prefect.
    """

    root: str = Field("./runs", min_length=1, description="Runs are written to <root>/<run_name>.")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000.")
    region: str | None = Field(None, description="S3 region name.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="More fsspec storage options; never written out (may hold credentials).",
    )

    @field_serializer("options", when_used="json")
    def _mask_options(self, options: dict[str, Any]) -> dict[str, str]:
        # JSON output (Prefect's stored flow parameters, config.yaml) never carries option values.
        return dict.fromkeys(options, MASK)

    def fsspec_options(self) -> dict[str, Any]:
        """Options for ``fsspec`` / ``Store``: ``options`` (masked values dropped) plus the endpoint and
        region for S3 URLs."""
        opts = {k: v for k, v in self.options.items() if v != MASK}
        if self.root.startswith(("s3://", "s3a://")) and (self.endpoint_url or self.region):
            client = dict(opts.get("client_kwargs", {}))
            if self.endpoint_url:
                client["endpoint_url"] = self.endpoint_url
            if self.region:
                client["region_name"] = self.region
            opts["client_kwargs"] = client
        return opts

    def options_for(self, url: str) -> dict[str, Any]:
        """Storage options for reading ``url``: :meth:`fsspec_options` when it is on the same kind of storage
        as ``root``; for another S3 URL only the endpoint and region; otherwise none (a local task file next
        to an S3 run root is read without S3 options)."""

        def protocol(u: str) -> str:
            return u.split("://", 1)[0] if "://" in u else "file"

        if protocol(url) == protocol(self.root):
            return self.fsspec_options()
        if protocol(url) in ("s3", "s3a") and (self.endpoint_url or self.region):
            client = {"endpoint_url": self.endpoint_url, "region_name": self.region}
            return {"client_kwargs": {k: v for k, v in client.items() if v}}
        return {}

    def public_options(self) -> dict[str, Any]:
        """The options without secrets: only the endpoint and region (for places that persist them)."""
        opts: dict[str, Any] = {}
        client = {
            k: v
            for k, v in self.fsspec_options().get("client_kwargs", {}).items()
            if k in ("endpoint_url", "region_name")
        }
        if client:
            opts["client_kwargs"] = client
        return opts


class ScheduleSettings(_Section):
    """One schedule of a benchmark's refresh deployment (``benchmark.schedules``): a cron line or an interval."""

    cron: str | None = Field(None, description="Cron line, e.g. '0 3 * * 1' (03:00 every Monday).")
    interval_seconds: float | None = Field(
        None, gt=0, le=366 * 86400, description="Seconds between runs (0 < s <= one year)."
    )
    timezone: str = Field("UTC", description="IANA time zone of the cron line.")
    active: bool = Field(True, description="False: the schedule is created paused (resume it in the UI).")

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSettings:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("set exactly one of cron and interval_seconds")
        if self.cron is not None and len(self.cron.split()) not in (5, 6):
            raise ValueError(f"cron {self.cron!r}: expected 5 fields (minute hour day month weekday)")
        return self


class BenchmarkConfig(_Section):
    """A named benchmark that is refreshed on a schedule (``dataswarms refresh``, ``dataswarms deploy``).

    Each refresh continues the search from the previous refresh's final swarm, writes the next version of the
    benchmark package under ``<storage.root>/benchmarks/<name>/vNNNN``, evaluates ``models`` on it and
    publishes the leaderboard with its change against the previous version.
    """

    name: str | None = Field(None, description="Benchmark name (letters, digits, '.', '_', '-').")
    models: list[str] = Field(
        default_factory=list,
        description="Model specs evaluated on every version ([LABEL=]MODEL, MODEL+ADAPTER, NAME@URL).",
    )
    schedules: list[ScheduleSettings] = Field(
        default_factory=list, description="Schedules of the refresh deployment (dataswarms deploy)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _checked_name(value, "benchmark name")


class RunConfig(_Section):
    """A whole Data Swarms search."""

    run_name: str | None = Field(None, description="Default: <task>-<objective>-<UTC time>.")
    mode: Literal["data-swarms", "adversarial"] = Field(
        "data-swarms",
        description="'data-swarms': a generator swarm against fixed test takers (docs/method.md §1-5); "
        "'adversarial': generators and test takers co-evolve (§6, the adversarial section).",
    )
    seed: int = Field(
        0,
        ge=0,
        lt=SEED_LIMIT,
        description="Master seed, 0 <= seed < 2**63 (run files store it as a 64-bit integer); every random "
        "draw derives from it.",
    )
    search: str = Field(
        "pso",
        description="How the generators are searched: 'pso' (the method), or a baseline at equal budget: "
        "'seed-best', 'base-model', 'prompted', 'random', 'cma-es' (docs/method.md §9).",
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    seed_generators: SeedGeneratorConfig = Field(default_factory=SeedGeneratorConfig)
    test_takers: TestTakerConfig = Field(default_factory=TestTakerConfig)
    held_out_test_takers: TestTakerConfig | None = Field(
        None,
        description="Test takers the search never sees, used only when a chosen generator is re-measured "
        "(dataswarms compare, docs/method.md §9): adapters trained like test_takers' from the seed "
        "derive_seed(seed, 'held-out-test-takers'), plus extra adapter folders or endpoint models; the base "
        "model may not be one when test_takers includes it. SFT settings not given here are test_takers'.",
    )
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    pso: PSOConfig = Field(default_factory=PSOConfig)
    copies: CopyConfig = Field(default_factory=CopyConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    adversarial: AdversarialConfig = Field(default_factory=AdversarialConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig)
    refresh: int = Field(
        0,
        ge=0,
        le=999_999,
        description="Refresh number, set by the refresh flow (0: a plain search). It enters every random stream "
        "of the search (stream_seed), so each refresh writes new items.",
    )
    continue_from: str | None = Field(
        None,
        description="Run folder (path or URL) whose newest generator-swarm checkpoint is this run's initial "
        "swarm; set by the refresh flow to the previous refresh's run.",
    )

    @model_validator(mode="before")
    @classmethod
    def _held_out_sft_from_test_takers(cls, data: Any) -> Any:
        # held_out_test_takers trains like test_takers: its SFT settings not given are test_takers' (so a
        # quickstart's held-out adapters take the quickstart's few steps, not the section defaults)
        if isinstance(data, dict) and isinstance(data.get("held_out_test_takers"), dict):
            takers = data.get("test_takers")
            if isinstance(takers, TestTakerConfig):
                takers = takers.model_dump()
            if isinstance(takers, dict):
                inherited = {k: v for k, v in takers.items() if k in SFTSettings.model_fields}
                data = {**data, "held_out_test_takers": {**inherited, **data["held_out_test_takers"]}}
        return data

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_range(cls, value: Any) -> Any:
        # Before the ge/lt constraints, to say why: derive_seed accepts any int, Parquet's int64 does not.
        whole = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
        if whole and not isinstance(value, bool) and not 0 <= value < SEED_LIMIT:
            raise PydanticCustomError(
                "seed_range",
                "out of range: a seed must be 0 <= seed < 2**63 (run files store it as a 64-bit integer)",
            )
        return value

    @field_validator("run_name")
    @classmethod
    def _run_name(cls, value: str | None) -> str | None:
        return _checked_name(value, "run name")

    @field_validator("search")
    @classmethod
    def _known_search(cls, value: str) -> str:
        from .baselines import SEARCHES

        SEARCHES.get(value)  # UnknownNameError names the known strategies
        return value

    @model_validator(mode="after")
    def _cross_check(self) -> RunConfig:
        components = self.scoring.components
        needs = objective_needs(components)

        def needing(need: str, verb: str) -> str:  # "consistency needs", "separation and novelty need"
            names = [n for n in components if need in OBJECTIVES.get(n).needs]
            return f"{' and '.join(names)} {verb}{'s' if len(names) == 1 else ''}"

        if "item_sets" in needs and self.generation.calls_per_generator < self.scoring.consistency_sets:
            raise ValueError(
                f"{needing('item_sets', 'need')} generation.calls_per_generator >= scoring.consistency_sets "
                f"({self.generation.calls_per_generator} < {self.scoring.consistency_sets}): each item set comes from its own calls"
            )
        takers = (
            int(self.test_takers.include_base) + self.test_takers.n_adapters + len(self.test_takers.extra)
        )
        if "test_takers>=2" in needs and takers < 2:
            raise ValueError(
                f"{needing('test_takers>=2', 'compare')} test takers: need at least 2, got {takers}"
            )
        held = self.held_out_test_takers
        if held is not None:
            if held.include_base and self.test_takers.include_base:
                raise ValueError(
                    "held_out_test_takers.include_base: the base model is one of the search's test takers; set "
                    "it to false (held-out test takers are models the search never saw)"
                )
            count = int(held.include_base) + held.n_adapters + len(held.extra)
            if "test_takers>=2" in needs and count < 2:
                raise ValueError(
                    f"held_out_test_takers: {needing('test_takers>=2', 'compare')} test takers: need at least 2, "
                    f"got {count}"
                )
        if self.search == "cma-es" and self.continue_from is not None:
            raise ValueError(
                "search: 'cma-es' replays its generations from the run's own utilities and cannot continue "
                "another run's swarm (continue_from); use 'pso' or another baseline"
            )
        self._swarm_can_move(self.pso, "pso")
        if self.mode == "adversarial":
            self._adversarial_check()
        if self.model.backend == "vllm":
            self._vllm_check()
        if self.search != "pso" and self.mode == "adversarial":
            raise ValueError(
                f"search: the baselines ({self.search!r}) replace the generator search of mode 'data-swarms'; "
                "adversarial mode searches both swarms with PSO"
            )
        if self.continue_from is not None and self.mode == "adversarial":
            raise ValueError(
                "continue_from: continuing a previous run's swarm is supported in mode 'data-swarms' only "
                "(an adversarial run also carries a test-taker swarm and a pool)"
            )
        return self

    def max_adapters_per_stage(self) -> int:
        """The most adapters one stage serves at once: the generator swarm, or the test takers' adapters
        (trained ones plus extra adapter folders). Sizes the vLLM engine's ``max_loras``."""
        extra = sum(1 for t in self.test_takers.extra if t.adapter is not None)
        return max(self.seed_generators.n_generators, self.test_takers.n_adapters + extra, 1)

    def _vllm_check(self) -> None:
        """The ``vllm`` backend serves LoRA ranks up to the engine's ``max_lora_rank`` (at most 512)."""
        from .vllm_backend import SUPPORTED_LORA_RANKS

        limit = self.model.vllm.max_lora_rank or SUPPORTED_LORA_RANKS[-1]
        for where, lora in (("seed_generators.lora", self.seed_generators.lora), ("test_takers.lora", self.test_takers.lora)):
            if lora.r > limit:
                raise ValueError(
                    f"{where}.r = {lora.r} is larger than the vLLM engine allows (max_lora_rank {limit}"
                    f"{'' if self.model.vllm.max_lora_rank else ', vLLM largest'}); lower the rank or raise "
                    "model.vllm.max_lora_rank"
                )
        if self.model.vllm.max_loras is not None and self.model.vllm.max_loras < self.max_adapters_per_stage():
            raise ValueError(
                f"model.vllm.max_loras = {self.model.vllm.max_loras} is smaller than the {self.max_adapters_per_stage()} "
                "adapters a stage serves in one batch (the larger swarm); raise it or leave it unset"
            )

    def _adversarial_check(self) -> None:
        """What adversarial mode needs (docs/method.md §6): a test-taker swarm of at least 2 particles, the
        difficulty objective, no extra test takers, and test-taker PSO weights that can move a particle."""
        n = self.test_takers.n_adapters
        if n < 2:
            raise ValueError(
                f"adversarial mode: test_takers.n_adapters is the number of test-taker particles; a swarm "
                f"needs at least 2, got {n}"
            )
        if self.scoring.objective != "difficulty":
            raise ValueError(
                f"adversarial mode scores generators by difficulty against the test-taker swarm "
                f"(docs/method.md §6); scoring.objective is {self.scoring.objective!r}, expected 'difficulty'"
            )
        if self.test_takers.extra:
            raise ValueError(
                "adversarial mode: test_takers.extra is not supported; the generators are scored against the "
                "test-taker swarm only"
            )
        self._swarm_can_move(self.adversarial.pso, "adversarial.pso")

    @staticmethod
    def _swarm_can_move(pso: PSOConfig, where: str) -> None:
        """Refuse PSO weights under which no particle ever moves (docs/method.md §5). A particle starts at
        its personal best (recorded at iteration 0) and only leaves it through the social term (g − x), the
        repel term (x − w) or inertia on a nonzero initial velocity; without those, v stays 0 and p = x, so
        the cognitive term (p − x) is zero too. (PSOConfig alone refuses only weights summing to 0: the
        update itself is still defined for the others, and unit tests of it use them.)"""
        repel = pso.repel if pso.repel_term else 0.0
        inertia_moves = pso.inertia > 0 and pso.initial_velocity == "random"
        if pso.social > 0 or repel > 0 or inertia_moves:
            return
        repel_part = f"repel {pso.repel:g}" + (
            " with repel_term off" if pso.repel and not pso.repel_term else ""
        )
        inertia_part = f"inertia {pso.inertia:g}" + (" with initial_velocity 'zero'" if pso.inertia else "")
        raise ValueError(
            f"{where}: social 0, {repel_part} and {inertia_part} leave only the cognitive term "
            f"(cognitive {pso.cognitive:g}), which is zero because a particle that never moved stands at its "
            f"personal best, so no particle ever moves; set {where}.social > 0 (or {where}.repel > 0 with "
            f"repel_term on, or {where}.inertia > 0 with initial_velocity 'random')"
        )

    @property
    def stream_seed(self) -> int:
        """The seed every random stream of the search derives from: ``seed`` for a plain search (refresh 0),
        ``derive_seed(seed, "refresh", refresh)`` for refresh r ≥ 1, so each refresh samples new items.

        Adapter training (seed generators, test takers, their clustering) keeps ``seed``: the trained adapters
        are the benchmark's fixed starting point and test takers, reused from the cache by every refresh.
        """
        if self.refresh == 0:
            return self.seed
        return derive_seed(self.seed, "refresh", self.refresh)

    @property
    def max_iterations(self) -> int:
        """The run's iteration limit: ``pso.max_iterations``; in adversarial mode the smaller of it and
        ``adversarial.pso.max_iterations`` (the run ends when either swarm stops)."""
        if self.mode == "adversarial":
            return min(self.pso.max_iterations, self.adversarial.pso.max_iterations)
        return self.pso.max_iterations

    def public_dict(self) -> dict[str, Any]:
        """The configuration as JSON-able data, without storage options (they may hold credentials)."""
        data = self.model_dump(mode="json")
        data["storage"]["options"] = dict.fromkeys(self.storage.options, MASK)
        return data


def config_hash(section: BaseModel | dict[str, Any]) -> str:
    """SHA-256 (hex, 16 chars) of a section's canonical JSON, for cache keys."""
    data = section.model_dump(mode="json") if isinstance(section, BaseModel) else section
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
