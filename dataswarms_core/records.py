"""Typed records: the documented schema of every file a run writes, and of what the layers pass each other.

Every JSON file of a run folder is one frozen pydantic model here, with a ``format_version``. Reading a file
of another version raises :class:`~dataswarms_core.errors.FormatError` naming the file and both versions
(files without the field are version 1: the one-swarm layout of dataswarms 0.1). Rows of JSON Lines and
Parquet files are models too (:class:`ItemRow`, :class:`ReplyRow`, :class:`AnswerRow`).

| file (under the run root)                      | record                  | written by stage |
| ---------------------------------------------- | ----------------------- | ---------------- |
| ``run.json``                                   | :class:`RunInfo`        | setup            |
| ``checkpoint.json``                            | :class:`CheckpointPointer` | pso (last of each iteration) |
| ``progress.json``                              | :class:`Progress`       | every stage      |
| ``reference_scores.json``                      | :class:`ReferenceScores` | scoring (novelty) |
| ``iterations/iter_NNNN/synthesis.json``        | :class:`SynthesisReport` | synthesis       |
| ``iterations/iter_NNNN/<swarm>/scoring.json``  | :class:`ScoringReport`  | scoring          |
| ``iterations/iter_NNNN/<swarm>/pso.json``      | :class:`SwarmStepReport` | pso             |
| ``summary.json``                               | :class:`RunSummary`     | export           |
| ``remeasure/remeasure.json``                   | :class:`RemeasureReport` | remeasure       |
| ``_cache/<kind>/<key>/manifest.json``          | :class:`AdapterManifest` | sft             |

One module on purpose (a little over 300 lines): the schema of every file a run writes, in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import FormatError, StorageError
from .storage import Store

FORMAT_VERSION = 2
"""Version of every record written by this dataswarms (1: the one-swarm layout of dataswarms 0.1)."""

R = TypeVar("R", bound="Record")


class Row(BaseModel):
    """A row of a JSON Lines / Parquet file (frozen; unknown fields refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Record(BaseModel):
    """A JSON file of a run, with its format version; :meth:`read` checks the version before anything else."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    FORMAT: ClassVar[int] = FORMAT_VERSION
    format_version: int = FORMAT_VERSION

    @classmethod
    def read(cls: type[R], store: Store, key: str) -> R:
        """Read and validate ``key`` of ``store``.

        Raises:
            FormatError: the file has another format version (message names the file and both versions).
            StorageError: the file is missing, not JSON, or does not match the schema (naming file and field).
        """
        data = store.read_json(key)
        return cls.from_data(data, store.url(key))

    @classmethod
    def from_data(cls: type[R], data: Any, origin: str) -> R:
        """Validate already-parsed JSON ``data`` read from ``origin`` (see :meth:`read`)."""
        if not isinstance(data, dict):
            raise StorageError(f"{origin}: expected a JSON object, got {type(data).__name__}")
        version = data.get("format_version", 1)
        if version != cls.FORMAT:
            hint = " (the one-swarm layout of dataswarms 0.1)" if version == 1 else ""
            raise FormatError(
                f"{origin}: format version {version}{hint}, this dataswarms reads version {cls.FORMAT}; "
                "finish that run with the dataswarms that wrote it, or start a new run"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise StorageError(f"{origin}: not a valid {cls.__name__}: {loc}: {first['msg']}") from None

    def write(self, store: Store, key: str) -> str:
        """Write the record as JSON to ``key`` of ``store`` (atomically on local storage); return its URL."""
        return store.write_json(key, self.model_dump(mode="json"))


# -- setup and SFT -------------------------------------------------------------------------------------------
class RunInfo(Record):
    """``run.json``: what a run's configuration resolved to when it started (and on each resume)."""

    run_name: str
    run_url: str = Field(description="The run folder's URL.")
    model_path: str = Field(description="This machine's local folder of the base model.")
    model_fingerprint: str = Field(description="Hash of the base model's config and weights.")
    task_name: str
    task_hash: str = Field(description="Hash of the task file's content.")
    domain: str
    n_dev: int = Field(description="Dev items used (distinct, not excluded).")
    n_test: int
    dev_duplicates: int = Field(0, description="Dev items dropped as exact repeats of earlier ones.")
    dev_excluded: list[int] = Field(
        default_factory=list, description="Positions of dev items left out as too long (task.long_items: exclude)."
    )
    config_hash: str
    created: str = Field(description="UTC time, ISO 8601.")
    flow_run_id: str | None = None
    resumes: int = Field(0, ge=0, description="How often the run was resumed.")
    forced_changes: list[str] = Field(default_factory=list, description="Changes accepted with --force.")


class AdapterEntry(Row):
    """One trained adapter of a manifest: where it is and how its SFT went."""

    url: str
    loss_first: float
    loss_last: float
    steps: int
    seconds: float


class AdapterManifest(Record):
    """``manifest.json`` of a folder of trained adapters (written last: a folder with it is complete)."""

    kind: str = Field(description="seed_generators or test_takers.")
    adapters: dict[str, AdapterEntry] = Field(default_factory=dict)


# -- checkpoint and progress ---------------------------------------------------------------------------------
class CheckpointPointer(Record):
    """``checkpoint.json``: the newest complete checkpoint, one swarm folder per named swarm."""

    iteration: int = Field(ge=0, description="The iteration to evaluate next.")
    swarms: dict[str, str] = Field(description="Swarm name → its checkpoint key at ``iteration``.")
    stopped: str | None = Field(None, description="None while running, else patience / max_iterations.")
    written: str = Field(description="UTC time, ISO 8601.")
    pool: str | None = Field(
        None, description="Adversarial Swarms: the key of the pool folder ready at ``iteration``; else None."
    )


class Progress(Record):
    """``progress.json``: the stage in progress (read by the command line's progress display)."""

    stage: str
    iteration: int | None = None
    max_iterations: int | None = None
    detail: str | None = None
    utilities: list[float] | None = None


# -- per iteration -------------------------------------------------------------------------------------------
class ItemRow(Row):
    """A generated item (``items.jsonl``, the export's ``synthetic.jsonl``)."""

    generator: str
    iteration: int
    call: int = Field(ge=0, description="Which call of the generator wrote it.")
    index: int = Field(ge=0, description="Position among the generator's kept items.")
    item: str
    seed: int = Field(description="The run seed.")


class ReplyRow(Row):
    """A generator call's raw reply (``replies.jsonl``), with how many items were parsed and missing."""

    generator: str
    call: int
    reply: str
    truncated: bool = Field(description="The reply stopped at the token limit.")
    items: int
    missing: int


class AnswerRow(Row):
    """A test taker's answer to an item and its judge score (``answers.parquet``)."""

    iteration: int
    generator: str
    call: int
    index: int
    test_taker: str
    query: str
    response: str | None = Field(description="The answer (may be empty); None when the answer failed.")
    score: float | None = Field(description="In [0, 1]; None when the judgement failed (never replaced).")
    judge_detail: str = Field(description="The judge's diagnostics as JSON (e.g. mass, attempts).")
    answer_failure: str | None = Field(
        default=None,
        description=(
            "Why the test taker gave no answer ('<kind>: <detail>', e.g. 'no_choices: ...', 'content_filter: "
            "...', 'request_failed: ...'); None for an answer. Such a row is never judged nor scored."
        ),
    )


class GeneratorCounts(Row):
    """Per generator: what was asked for and what came back from its calls (docs/method.md §2).

    Attributes:
        requested: calls × items_written.
        items: unique items kept.
        parse_failures: requested items that could not be parsed from the replies.
        duplicates: exact duplicates dropped.
        extra: items beyond items_written in a reply, dropped.
        empty_replies: replies with no parsable item at all.
        answers_dropped: "Answer:" / "Solution:" lines dropped from replies (answers never leak into items).
        trailing_dropped: unnumbered lines after an item's end (sign-offs), dropped.
        truncated_dropped: last items cut off at the token limit, dropped (they count as parse failures).
        copies: parsed, unique items dropped as near-duplicates of a shown, dev or test item or of an earlier
            item (:class:`CopyRow`; docs/method.md §2, "Copies"); not in ``items``.
    """

    requested: int = 0
    items: int = 0
    parse_failures: int = 0
    duplicates: int = 0
    extra: int = 0
    empty_replies: int = 0
    answers_dropped: int = 0
    trailing_dropped: int = 0
    truncated_dropped: int = 0
    copies: int = 0


class CopyRow(Row):
    """A generated item left out as a copy (``iterations/iter_NNNN/copies.jsonl``, the package's
    ``copies.jsonl``), with the closest text it copies (docs/method.md §2, "Copies")."""

    generator: str
    iteration: int
    call: int = Field(ge=0)
    item: str
    kind: str = Field(description="What it copies: 'shown', 'dev', 'test' or 'items' (an earlier item).")
    closest: str = Field(description="The text it is closest to.")
    closest_index: int | None = Field(
        description="Row of the dev/test split (kind dev, test, shown), or position among the iteration's "
        "kept items (kind items)."
    )
    overlap: float = Field(ge=0.0, le=1.0, description="Word n-gram containment of the item in ``closest``.")
    cosine: float | None = Field(description="Embedding cosine with ``closest``; None when not computed.")


class SynthesisReport(Record):
    """``synthesis.json``: what the generators wrote at one iteration."""

    iteration: int
    counts: dict[str, GeneratorCounts]
    items: int
    parse_failures: int
    seconds: float


class ScoringReport(Record):
    """``<swarm>/scoring.json``: the score matrix m (generators × test takers) and the swarm's utilities."""

    swarm: str
    iteration: int
    objective: str
    judge: str
    generators: list[str]
    test_takers: list[str]
    score_matrix: list[list[float | None]] = Field(description="(G, T) means; None where nothing was judged.")
    utilities: list[float] = Field(description="(G,) the objective, one per particle.")
    components: dict[str, list[float]] = Field(description="Every objective computed, (G,) each.")
    undefined: dict[str, list[str]]
    empty_generators: list[str]
    missing_utilities: list[str] = Field(
        default_factory=list,
        description=(
            "Generators whose utility is undefined (no items, or an objective it needs undefined for them): "
            "shown as missing in reports; the swarm update recorded the objective's lowest value."
        ),
    )
    judge_failures: int
    judge_failures_per_generator: dict[str, int]
    judge_failures_per_test_taker: dict[str, int]
    answers: int
    mean_judge_mass: float | None
    seconds: float
    answer_failures: int = Field(
        0, description="Answers that failed at the test taker (never judged; not among judge_failures)."
    )
    answer_failures_per_generator: dict[str, int] = Field(default_factory=dict)
    answer_failures_per_test_taker: dict[str, int] = Field(default_factory=dict)
    answer_failure_kinds: dict[str, int] = Field(
        default_factory=dict,
        description="Failed answers per kind (no_choices, content_filter, refusal, ...).",
    )


class PoolEntry(Row):
    """An entry of the Adversarial Swarms pool (``pools/iter_NNNN/pool.jsonl``): a real dev item or a
    generated item, with its provenance (docs/method.md §6)."""

    item: str
    output: str | None = Field(None, description="The reference answer of a real dev item; None if generated.")
    source: Literal["dev", "generated"]
    dev_index: int | None = Field(None, description="Position in the run's dev split (real items).")
    item_id: str | None = Field(None, description="Generated items: ``ds-`` + 16 hex digits of SHA-256.")
    generator: str | None = Field(None, description="Generated items: the generator (particle) that wrote it.")
    iteration: int | None = Field(
        None, description="Generated items: the iteration whose generators (swarms/generators/iter_N) wrote it."
    )
    call: int | None = None
    entered: int | None = Field(None, description="Generated items: the iteration it entered the pool.")


class PoolReport(Record):
    """``pools/iter_NNNN/pool.json``: how the pool ready at iteration N came about (docs/method.md §6).

    The pool of iteration k is the pool of ``pools/iter_k`` after the replacement draw of iteration k, which is
    written as ``pools/iter_{k+1}``: the pool the test takers of iteration k are scored on.
    """

    iteration: int = Field(description="N: this pool is ready at iteration N (scored at iteration N - 1).")
    mode: Literal["adversarial", "static"]
    size: int
    replacement_probability: float
    seed: int | None = Field(description="Seed of the replacement draw (None for the initial pool).")
    generated_available: int = Field(description="Generated items the replacements were drawn from.")
    replaced: list[int] = Field(description="Positions replaced by a generated item in this draw.")
    unfilled: list[int] = Field(
        default_factory=list,
        description="Positions drawn for replacement but kept, as fewer generated items were available.",
    )
    generated: int = Field(description="Generated entries in the pool after the draw.")
    generated_share: float = Field(description="generated / size, in [0, 1].")


class PoolScoringReport(Record):
    """``iterations/iter_NNNN/test_takers/scoring.json``: every test-taker particle's mean judge score on the
    pool, its utility (docs/method.md §6)."""

    swarm: str
    iteration: int
    judge: str
    test_takers: list[str]
    utilities: list[float] = Field(description="(T,) mean judge score on the pool, in [0, 1].")
    judged: dict[str, int] = Field(description="Pool answers judged, per test taker.")
    judge_failures: dict[str, int]
    answer_failures: dict[str, int]
    pool_size: int
    generated_share: float
    seconds: float


class HeldOutReport(Record):
    """``iterations/iter_NNNN/test_takers/held_out.json``: the iteration's best test taker (highest pool score)
    on held-out real test items: one point of the generalisation curve (docs/method.md §6).

    Two scores: ``held_out_score`` by the judge of the pool (``judge.name``, without references), so that it
    compares with ``pool_score``; ``held_out_accuracy`` by the dev judge (``judge.dev_name``) against the
    reference answers. Either is None (missing, not 0) when no answer could be judged.
    """

    iteration: int
    test_taker: str
    pool_score: float = Field(description="Its mean judge score on the pool, in [0, 1].")
    held_out_score: float | None = Field(description="Mean judge score on the held-out items, in [0, 1].")
    held_out_accuracy: float | None = Field(description="Mean dev-judge score against references, in [0, 1].")
    items: int
    judge: str
    dev_judge: str
    judged: int = Field(description="Answers the judge scored.")
    judge_failures: int
    dev_judged: int = Field(description="Answers the dev judge scored.")
    dev_judge_failures: int
    answer_failures: int
    seconds: float


class ReferenceScores(Record):
    """``reference_scores.json``: each test taker's mean score on real dev items (novelty's q)."""

    test_takers: list[str]
    scores: dict[str, float]
    judge: str
    items: int
    judge_failures: dict[str, int]
    seconds: float


class SwarmStepReport(Record):
    """``<swarm>/pso.json``: what one swarm update did (docs/method.md §5; see ``pso.UpdateReport``)."""

    swarm: str
    iteration: int
    utilities: list[float]
    personal_best_improved: list[bool]
    global_best_improved: bool
    global_worst_changed: bool
    step_length: float | None = Field(description="λ used for the move; None when the swarm stopped.")
    weights: list[tuple[float, float, float, float]]
    restarted: list[int]
    stopped: str | None
    global_best_utility: float
    global_best_particle: str
    global_worst_utility: float
    personal_best_utility: list[float | None]
    next_step_length: float
    checkpoint: str = Field(description="URL of the checkpoint written for the next iteration.")
    seconds: float


class AdapterOrigin(Record):
    """``dataswarms.json`` beside an exported adapter: which base model and search made it.

    The adapter's ``base_model_name_or_path`` is the model's portable name (a Hugging Face id where known);
    ``model_fingerprint`` says which local weights it was trained on (``models.model_fingerprint``).
    """

    base_model: str = Field(description="The run's model.base_model setting.")
    base_model_name_or_path: str = Field(description="The portable name written into adapter_config.json.")
    model_fingerprint: str
    run_name: str
    config_hash: str
    swarm: str
    particle: str = Field(description="The particle that held the global best.")
    iteration: int = Field(description="The iteration at which it was evaluated.")
    utility: float = Field(description="Its utility (the global best).")


# -- export --------------------------------------------------------------------------------------------------
class PackageCounts(Row):
    """How many items a package asked for, wrote and dropped, and why.

    Attributes:
        asked: ``export.items``, the target.
        written: items in the package (at most ``asked``).
        calls: calls the generator made (first round plus extra).
        extra_calls: calls beyond the first ``ceil(asked / items_written)``; at most ``max_extra_calls``.
        requested: calls × items_written.
        parse_failures, duplicates, copies: requested items lost to each cause (see GeneratorCounts).
        surplus: kept items beyond the target, left out (the last round's overshoot).
        shortfall: why fewer than ``asked`` were written (None when the target was met).
    """

    asked: int
    written: int
    calls: int
    extra_calls: int
    max_extra_calls: int
    requested: int
    parse_failures: int
    duplicates: int
    copies: int
    surplus: int
    shortfall: str | None = None


class CurvePoint(Row):
    """One iteration of the generalisation curve of an adversarial run (docs/method.md §6).

    Attributes:
        iteration: k.
        test_taker: the iteration's best test taker (highest pool score).
        pool_score: its mean judge score on the pool, in [0, 1].
        held_out_score: its mean judge score (the pool's judge) on the held-out real test items, in [0, 1];
            None when none was judged.
        held_out_accuracy: its mean dev-judge score against the reference answers there, in [0, 1]; None when
            none was judged.
        generated_share: share of generated entries in the pool it was scored on, in [0, 1].
        replaced: pool entries replaced at this iteration.
    """

    iteration: int
    test_taker: str
    pool_score: float
    held_out_score: float | None
    held_out_accuracy: float | None
    generated_share: float
    replaced: int


class AdversarialSummary(Row):
    """The test-taker swarm and the pool of an adversarial run (``summary.json``'s ``adversarial``)."""

    pool: Literal["adversarial", "static"]
    pool_size: int
    replacement_probability: float
    held_out_items: int
    test_takers: list[str]
    utility_history: list[dict[str, float]] = Field(
        description="Per iteration, each test taker's utility (mean judge score on the pool)."
    )
    global_best_utility: float
    global_best_particle: str
    global_best_iteration: int
    stopped: str | None = Field(
        None, description="Why the test-taker swarm stopped (the run ends when either swarm stops)."
    )
    step_length_history: list[float | None]
    curve: list[CurvePoint]
    generated_items: int = Field(description="Distinct generated items that entered the pool.")
    judge_failures: int = Field(description="Failed judgements of pool answers, over all iterations.")
    answer_failures: int
    held_out_judge_failures: int
    seconds: dict[str, float] = Field(description="pool scoring, held-out and pool update seconds, summed.")


class RunOutputs(Row):
    """URLs of everything a finished search wrote (the adversarial ones are None in data-swarms mode)."""

    run: str
    summary: str
    config: str
    package: str = Field(description="The benchmark package folder (packages/iter_NNNN).")
    global_best_adapter: str
    items_jsonl: str
    items_parquet: str
    dataset_card: str
    metrics_parquet: str
    metrics_csv: str
    utilities_plot: str
    report: str
    last_checkpoint: str
    test_taker_adapter: str | None = Field(None, description="Adversarial: the test-taker global best.")
    test_taker_metrics_csv: str | None = None
    generalisation_csv: str | None = None
    generalisation_plot: str | None = None
    pool_items: str | None = Field(None, description="Adversarial: generated items that entered the pool.")


class StageSeconds(Row):
    """Seconds spent per stage, summed over iterations."""

    synthesis: float
    scoring: float
    pso: float


class RunSummary(Record):
    """``summary.json``: a finished search (returned by the flow and printed by the command line)."""

    run_name: str
    mode: str = "data-swarms"
    swarm: str
    seed: int
    base_model: str
    task: str
    objective: str
    judge: str
    generators: list[str]
    test_takers: list[str]
    iterations_completed: int
    stopped: str | None = Field(
        description="Why the search stopped: the generator swarm's patience / max_iterations; in adversarial mode "
        "\"test_takers: ...\" when the test-taker swarm stopped it."
    )
    global_best_utility: float
    global_best_particle: str
    global_best_iteration: int
    global_worst_utility: float
    utility_history: list[dict[str, float]] = Field(
        description="Per iteration, each particle's utility as the swarm update recorded it (lowest value where missing)."
    )
    missing_utilities: list[list[str]] = Field(
        default_factory=list, description="Per iteration, the generators whose utility is missing."
    )
    component_history: list[dict[str, dict[str, float]]]
    objective_undefined: list[dict[str, list[str]]]
    reference_scores: dict[str, float] | None
    score_matrices: list[list[list[float | None]]]
    step_length_history: list[float | None]
    restarts: list[list[str]]
    parse_failures: int
    judge_failures: int
    judge_failures_per_generator: dict[str, int]
    judge_failures_per_test_taker: dict[str, int]
    empty_generators: int
    items_per_iteration: list[int]
    export_items: int = Field(description="Items in the benchmark package.")
    package_version: str
    package_counts: PackageCounts
    seconds: StageSeconds
    wall_seconds: float
    resumes: int
    config_hash: str
    outputs: RunOutputs
    adversarial: AdversarialSummary | None = Field(None, description="Adversarial mode: the second swarm.")


class RemeasureReport(Record):
    """``remeasure/remeasure.json``: a run's global best re-measured on fresh samples (docs/method.md §9)."""

    run_name: str
    search: str = Field(description="The run's search strategy (pso or a baseline).")
    generator: str = Field(description="The global-best particle re-measured.")
    checkpoint_iteration: int
    in_search_utility: float | None = Field(description="Its utility as the search measured it (a maximum).")
    seeds: list[int] = Field(description="Seed of each draw: derive_seed(stream seed, 'remeasure', r).")
    utilities: list[float | None] = Field(description="Per draw, its utility; None where undefined (missing).")
    missing: int = Field(description="Draws with no utility (no parsable item, or the objective undefined).")
    mean: float | None
    ci_low: float | None = Field(description="Student-t 95 % interval over draws (None with < 2 values).")
    ci_high: float | None
    held_out_test_takers: list[str] = Field(
        default_factory=list, description="The held-out test takers (held_out_test_takers); empty: none."
    )
    held_out_utilities: list[float | None] = Field(
        default_factory=list, description="Per draw, the utility against the held-out test takers; None: missing."
    )
    held_out_missing: int = 0
    held_out_mean: float | None = None
    held_out_ci_low: float | None = None
    held_out_ci_high: float | None = None
    seconds: float = Field(
        description="Work time: the draws' synthesis and scoring seconds (and the held-out reference scores'), "
        "summed from their reports, so a re-run that reuses the draws reports the same."
    )


class RunBudget(Row):
    """What a run spent (docs/method.md §9): generator calls, items kept, test-taker answers and failures."""

    generator_calls: int
    items: int
    answers: int
    answer_failures: int
    judge_failures: int


class ComparisonRow(Row):
    """A strategy's line of the comparison: in-search and re-measured values over seeds, and its budget."""

    search: str
    seeds: list[int]
    in_search: float | None
    in_search_low: float | None
    in_search_high: float | None
    remeasured: float | None
    remeasured_low: float | None
    remeasured_high: float | None
    remeasured_per_seed: list[float | None]
    missing_runs: int = Field(description="Runs none of whose re-measurement draws had a utility.")
    held_out: float | None = Field(None, description="Re-measured against the held-out test takers (mean).")
    held_out_low: float | None = None
    held_out_high: float | None = None
    held_out_per_seed: list[float | None] = Field(default_factory=list)
    generator_calls: int
    items: int
    answers: int
    judge_failures: int


class ComparisonRun(Row):
    """One run of a comparison (a strategy at a seed): what it chose, its values and its wall time."""

    search: str
    seed: int
    run_name: str
    generator: str = Field(description="The chosen generator (the run's global best particle).")
    iteration: int = Field(ge=0, description="The iteration at which it was the global best.")
    in_search: float | None = Field(description="Its utility as the search measured it (a maximum).")
    remeasured: list[float | None] = Field(description="Per re-measurement draw, its utility; None: missing.")
    held_out: list[float | None] = Field(
        default_factory=list, description="Per draw, against the held-out test takers; empty: none configured."
    )
    missing_utilities: int = Field(ge=0, description="Generator × iteration utilities the search had missing.")
    utilities: int = Field(ge=0, description="Generator × iteration utilities in all (generators × iterations).")
    items_per_iteration: list[int]
    search_seconds: float = Field(description="The run's wall time (summary.json), resumes included.")
    remeasure_seconds: float = Field(description="The re-measurement's work time (remeasure.json).")


class ComparisonTable(Record):
    """``comparisons/<name>/baselines.json``: the search against its baselines (docs/method.md §9)."""

    task: str
    objective: str
    rows: list[ComparisonRow]
    runs: list[ComparisonRun] = Field(default_factory=list, description="Every run, seed by seed.")


class SweepTrial(Row):
    """A trial of a sweep (``dataswarms sweep``): its settings, run and value."""

    number: int = Field(ge=0)
    run_name: str
    params: dict[str, float | int | str | bool] = Field(description="Dotted configuration key → value.")
    in_search: float | None = Field(description="The run's global best utility; None: missing.")
    remeasured: float | None = Field(None, description="Its re-measured mean (with draws > 0); None: missing.")
    value: float | None = Field(description="The value told to the sampler; None: the trial failed or is missing.")
    state: str = Field(description="complete, or failed with the reason.")


class SweepTable(Record):
    """``sweeps/<name>/sweep.json``: every trial of a sweep and the best one (docs/method.md §10)."""

    name: str
    objective: str
    sampler: str
    seed: int
    measure: str = Field(description="What a trial's value is: the in-search best or the re-measured mean.")
    trials: list[SweepTrial]
    best_trial: int | None
    best_params: dict[str, float | int | str | bool] | None
    best_value: float | None


# -- the benchmark package (docs/method.md §7) ---------------------------------------------------------------
class BenchmarkItem(Row):
    """An item of a benchmark package (``items.jsonl`` / ``items.parquet``) with its provenance."""

    id: str = Field(description="Stable id: 'ds-' + the first 16 hex digits of the item text's SHA-256.")
    item: str
    generator: str = Field(description="The particle that wrote it (the global best).")
    iteration: int = Field(description="The iteration the generator's position was evaluated at.")
    call: int = Field(ge=0)
    index: int = Field(ge=0, description="Position among the package's items.")
    seed: int = Field(description="The run seed.")
    run_name: str
    config_hash: str
    objective: str
    base_model: str = Field(description="The base model's canonical name (portable).")
    base_model_fingerprint: str = Field(description="Hash of the base model's config and weights.")
    reference_answer: str | None = Field(
        None, description="The reference model's answer (model-written, not a human label); None without."
    )
    reference_answer_by: str | None = Field(None, description="'model-written: <model spec>' when answered.")
    reference_answer_failure: str | None = Field(
        None, description="Why the reference model gave no answer; None otherwise."
    )


class BenchmarkManifest(Record):
    """``package.json`` of a benchmark package ``<run>/packages/iter_NNNN/``: what it is, where it came from,
    its counts and files. ``version`` changes whenever the items do (a hash of ``items.jsonl``)."""

    name: str = Field(description="The run name.")
    version: str = Field(description="First 12 hex digits of the SHA-256 of items.jsonl.")
    created: str = Field(description="UTC time, ISO 8601.")
    run_name: str
    run_url: str
    config_hash: str
    checkpoint_iteration: int = Field(description="Iterations completed at the checkpoint exported.")
    generator: str = Field(description="The global-best particle.")
    generator_iteration: int = Field(description="The iteration its position was evaluated at.")
    utility: float = Field(description="Its utility (the global best's).")
    task: str
    task_source: str
    task_hash: str
    task_licence: str
    domain: str
    objective: str
    judge: str
    dev_judge: str
    base_model: str = Field(description="Canonical name (portable).")
    base_model_fingerprint: str
    seed: int
    counts: PackageCounts
    answers: str = Field(description="'reference-model' or 'none'.")
    reference_model: str | None = None
    reference_answer_failures: int = 0
    test_items: int = Field(description="Real test items in test.jsonl (0: no rank comparison).")
    copies_excluded: int
    files: dict[str, str] = Field(description="Role → path relative to the package folder.")


# -- evaluation and leaderboard ------------------------------------------------------------------------------
class ModelEvaluation(Record):
    """``evaluations/<model_key>/result.json`` of a package: one model's answers judged (the cache unit of
    ``dataswarms evaluate``: the same model, benchmark version, judge and answer settings give the same key).

    ``scores`` / ``test_scores`` hold one judge score per item in package order, None where the model's
    answer or the judgement failed (missing is missing, never 0)."""

    model: str = Field(description="Label shown in the leaderboard.")
    spec: str = Field(description="The model spec as given.")
    model_key: str
    benchmark_version: str
    judge: str
    items: int
    answered: int = Field(description="Items the model gave an answer to.")
    answer_failures: int
    judge_failures: int
    scores: list[float | None]
    test_items: int = 0
    test_answered: int = 0
    test_answer_failures: int = 0
    test_judge_failures: int = 0
    test_scores: list[float | None] = Field(default_factory=list)
    seconds: float


class LeaderboardRow(Row):
    """A model's line of the leaderboard: mean judge score on the package's items with a bootstrap 95 %
    interval (over items; None when fewer than 2 scored items), counts, and the same on real test items."""

    rank: int = Field(description="1 = best mean on the package's items; models without a mean come last.")
    model: str
    spec: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    items: int
    answered: int
    answer_failures: int
    judge_failures: int
    test_mean: float | None = None
    test_ci_low: float | None = None
    test_ci_high: float | None = None
    test_rank: int | None = None
    cached: bool = Field(False, description="Reused from an earlier evaluation of the same version.")


class Leaderboard(Record):
    """``leaderboard.json``: the models of one ``dataswarms evaluate`` command on one package version (their
    results computed or reused from ``evaluations/``), ranked, with Kendall's τ between
    the ranking on the package and on the real test items (scipy.stats.kendalltau, tau-b)."""

    benchmark: str
    benchmark_version: str
    judge: str
    items: int
    test_items: int
    bootstrap_resamples: int
    confidence: float
    rows: list[LeaderboardRow]
    kendall_tau: float | None = Field(description="None with fewer than 2 models having both means.")
    kendall_p: float | None
    files: dict[str, str] = Field(default_factory=dict, description="Role → URL of the written outputs.")
