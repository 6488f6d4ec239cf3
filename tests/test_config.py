"""Run configuration: built-ins, YAML files, overrides and errors."""

import pytest
import yaml

from dataswarms_core.config import RunConfig, config_hash
from dataswarms_core.config_files import load_config
from dataswarms_core.errors import ConfigError


def test_builtin_configs_and_paper_defaults():
    quick = load_config("quickstart")
    assert quick.pso.max_iterations == 3 and quick.generation.items_written == 3
    paper = load_config("paper")
    assert (
        paper.generation.items_shown,
        paper.generation.items_written,
        paper.generation.calls_per_generator,
    ) == (5, 5, 40)
    pso = RunConfig().pso
    assert (pso.inertia, pso.cognitive, pso.social, pso.repel) == (0.4, 0.3, 0.3, 0.3)
    assert (
        pso.step_length,
        pso.step_length_factor,
        pso.min_step_length,
        pso.patience,
        pso.max_iterations,
    ) == (1.0, 0.95, 0.1, 10, 200)


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 3\npso:\n  inertia: 0.2\ngeneration: {items_written: 4}\n")
    cfg = load_config(str(path), {"pso.max_iterations": 7, "seed": None, "run_name": "my-run_1"})
    assert (cfg.seed, cfg.pso.inertia, cfg.pso.max_iterations, cfg.generation.items_written) == (3, 0.2, 7, 4)
    assert cfg.run_name == "my-run_1"
    assert config_hash(cfg) == config_hash(
        load_config(str(path), {"pso.max_iterations": 7, "run_name": "my-run_1"})
    )


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        (
            "pso:\n  inertia: -1\n",
            None,
            r"c.yaml: pso.inertia: Input should be greater than or equal to 0; got -1",
        ),
        ("psoo: {}\n", None, "c.yaml: psoo: Extra inputs are not permitted"),
        ("seed: [1\n", None, "c.yaml: invalid YAML"),
        ("- 1\n", None, "expected a mapping of sections"),
        ("", {"run_name": "../etc"}, "not a valid run name"),
        ("", {"run_name": "a b"}, "not a valid run name"),
        ("", {"run_name": "a/b"}, "not a valid run name"),
        ("", {"run_name": "a?b#c"}, "not a valid run name"),
        ("", {"run_name": "a%20b"}, "not a valid run name"),
        ("", {"run_name": ".hidden"}, "not a valid run name"),
        ("test_takers: {include_base: false, n_adapters: 0}\n", None, "need at least one"),
        (
            "scoring: {objective: consistency, consistency_sets: 3}\ngeneration: {calls_per_generator: 2}\n",
            None,
            "consistency needs generation.calls_per_generator >= scoring.consistency_sets",
        ),
        (
            "judge: {endpoint: {base_url: 'http://x/v1', model: m}}\n",
            None,
            "judge.name 'expected-score' needs token probabilities, which judge.endpoint cannot give; "
            "use one of: generative",
        ),
        ("judge: {name: reference}\n", None, "judge.name 'reference' needs reference answers"),
        (
            "judge: {name: banana}\n",
            None,
            "judge.name: .*unknown judge 'banana'; known: expected-score, generative, reference",
        ),
        ("judge: {dev_name: banana}\n", None, "judge.dev_name: .*unknown judge 'banana'"),
        ("scoring: {judge: generative}\n", None, "c.yaml: scoring.judge moved to judge.name$"),
        (
            "scoring: {judge_retries: 3, dev_judge: reference}\n",
            None,
            "scoring.dev_judge moved to judge.dev_name; scoring.judge_retries moved to judge.retries",
        ),
        ("scoring: {judge_endpoint: null}\n", None, "scoring.judge_endpoint moved to judge.endpoint"),
        ("scoring: {judge_max_new_tokens: 8}\n", None, "scoring.judge_max_new_tokens moved to judge.max_new"),
        (
            "model: {backend: tgi}\n",
            None,
            "model.backend: .*unknown local backend 'tgi'; known local backends: hf, vllm",
        ),
        ("model: {backend: openai}\n", None, "'openai' is an endpoint backend; known local backends: hf, vllm"),
        (
            "model: {backend: vllm}\nseed_generators: {lora: {r: 1024}}\n",
            None,
            r"seed_generators.lora.r = 1024 is larger than the vLLM engine allows \(max_lora_rank 512, vLLM largest\)",
        ),
        (
            "scoring: {objective: composite, composite_weights: {banana: 1}}\n",
            None,
            r"scoring.composite_weights: .*unknown objective\(s\) \['banana'\]; known: difficulty, sep",
        ),
        (
            "scoring: {objective: composite, composite_weights: {difficulty: 0}}\n",
            None,
            r"c.yaml: scoring.composite_weights: no weight > 0 \(difficulty: 0\); the composite objective needs",
        ),
        (
            "scoring: {objective: banana}\n",
            None,
            "scoring.objective: .*unknown objective 'banana'; known: difficulty, separation, novelty, "
            "consistency, realistic, composite",
        ),
        ("test_takers: {extra: [{name: x}]}\n", None, "give exactly one of 'adapter' or 'endpoint'"),
        ("test_takers: {extra: [{name: t0, adapter: /a}]}\n", None, r"names \['t0'\] repeat or clash"),
        (
            "test_takers: {include_base: false, n_adapters: 1}\nscoring: {objective: separation}\n",
            None,
            "need at least 2, got 1",
        ),
        (
            "mode: adversarial\ntest_takers: {n_adapters: 1}\n",
            None,
            "c.yaml: adversarial mode: test_takers.n_adapters is the number of test-taker particles; a swarm "
            "needs at least 2, got 1$",
        ),
        (
            "mode: adversarial\nscoring: {objective: novelty}\n",
            None,
            r"adversarial mode scores generators by difficulty against the test-taker swarm \(docs/method.md "
            r"§6\); scoring.objective is 'novelty', expected 'difficulty'$",
        ),
        (
            "mode: adversarial\ntest_takers: {extra: [{name: x, adapter: /a}]}\n",
            None,
            "adversarial mode: test_takers.extra is not supported",
        ),
        (
            "mode: adversarial\nadversarial: {pso: {social: 0, repel: 0, initial_velocity: zero}}\n",
            None,
            "adversarial.pso: social 0, repel 0 and inertia 0.4 with initial_velocity 'zero' leave only the "
            "cognitive term",
        ),
        ("mode: duel\n", None, "mode: Input should be 'data-swarms' or 'adversarial'"),
        ("adversarial: {replacement_probability: 1.5}\n", None, "adversarial.replacement_probability"),
        ("adversarial: {pool: sometimes}\n", None, "adversarial.pool: Input should be 'adversarial' or 'static'"),
        ("adversarial: {pool_size: 0}\n", None, "adversarial.pool_size"),
    ],
)
def test_bad_configs_get_one_line_errors(tmp_path, text, overrides, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(str(path), overrides)
    assert "\n" not in str(info.value)


def test_unreadable_config_files(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"model:\n  base_model: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text \(byte 0xe9"):
        load_config(str(bad))
    twice = tmp_path / "twice.yaml"
    twice.write_text("seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match="key 'seed' appears twice"):
        load_config(str(twice))
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(str(tmp_path))
    infinite = tmp_path / "inf.yaml"
    infinite.write_text("pso: {step_length: .inf}\n")
    with pytest.raises(ConfigError, match="pso.step_length"):
        load_config(str(infinite))
    with pytest.raises(ConfigError, match="base_url"):
        load_config(
            None, {"test_takers.extra": [{"name": "e", "endpoint": {"base_url": "not-a-url", "model": "m"}}]}
        )


def test_yaml_values_python_cannot_build_are_config_errors(tmp_path):
    """A 5000-digit number (over Python's int/str limit) or an impossible date: one line, not a ValueError
    traceback."""
    path = tmp_path / "c.yaml"
    path.write_text("seed: " + "1" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"c.yaml: invalid YAML value \(Exceeds the limit \(4300 digits\)"):
        load_config(str(path))
    path.write_text("run_name: 2020-13-45\n")
    with pytest.raises(ConfigError, match=r"c.yaml: invalid YAML value \(month must be in 1..12\)$"):
        load_config(str(path))


def test_missing_config_file():
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config("nope.yaml")


def test_components_of_each_objective():
    assert load_config("quickstart", {"scoring.objective": "novelty"}).scoring.components == ["novelty"]
    composite = load_config("quickstart", {"scoring.objective": "composite"}).scoring
    assert composite.components == ["difficulty", "separation", "novelty"]
    for name in ("difficulty", "separation", "novelty", "consistency", "realistic", "composite"):
        load_config("quickstart", {"scoring.objective": name})  # the quickstart accepts every objective


def test_judge_section_and_backend_defaults():
    for name in ("quickstart", "paper"):
        cfg = load_config(name)
        assert (cfg.judge.name, cfg.judge.dev_name, cfg.judge.endpoint) == (
            "expected-score",
            "reference",
            None,
        )
        assert (cfg.judge.retries, cfg.judge.max_new_tokens, cfg.model.backend) == (2, 16, "hf")
    endpoint = {"base_url": "http://127.0.0.1:8000/v1", "model": "judge"}
    cfg = load_config("quickstart", {"judge.name": "generative", "judge.endpoint": endpoint})
    assert cfg.judge.endpoint.model == "judge"
    assert "judge" not in RunConfig().public_dict()["scoring"]


def test_sft_settings_are_shared_with_each_sections_defaults():
    from dataswarms_core.config import SeedGeneratorConfig, SFTSettings, TestTakerConfig

    sg, tt = SeedGeneratorConfig(), TestTakerConfig()
    assert isinstance(sg, SFTSettings) and isinstance(tt, SFTSettings)
    assert (sg.steps, sg.batch_size, sg.learning_rate) == (200, 4, 1e-4)
    assert (tt.steps, tt.batch_size, tt.learning_rate) == (100, 8, 1e-4)
    # The YAML keys and their order are what they were before the settings were shared.
    assert list(sg.model_dump()) == [
        "n_generators",
        "embedding",
        "steps",
        "batch_size",
        "learning_rate",
        "lora",
    ]
    assert list(tt.model_dump()) == [
        "include_base", "n_adapters", "steps", "batch_size", "learning_rate", "lora", "extra",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        TestTakerConfig(steps=0)
    quick = load_config("quickstart")
    assert (quick.seed_generators.steps, quick.test_takers.steps, quick.test_takers.batch_size) == (4, 6, 4)


def test_public_dict_hides_storage_options():
    cfg = RunConfig.model_validate({"storage": {"root": "s3://b/p", "options": {"secret": "hunter2"}}})
    assert cfg.public_dict()["storage"]["options"] == {"secret": "***"}


# -- searches that cannot search (issue "Inputs from outside that break it", kind 6) -------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # One particle: x = p = g = w and v = 0 after the first iteration, so every term is zero.
        (
            {"seed_generators.n_generators": 1},
            "^command line: seed_generators.n_generators: a swarm of 1 particle never moves: every term of the "
            "PSO update is zero; use at least 2 seed generators; got 1$",
        ),
        ({"seed_generators.n_generators": 0}, "n_generators: 0 particles is no swarm: .*; got 0$"),
        ({"seed_generators.n_generators": -3}, "n_generators: -3 particles is no swarm"),
        # Coefficients summing to 0: draw_weights cannot normalise them.
        (
            {"pso.inertia": 0, "pso.cognitive": 0, "pso.social": 0, "pso.repel": 0},
            r"quickstart: pso: inertia 0, cognitive 0, social 0 and repel 0: the coefficients are normalised "
            r"to sum to 1, so inertia \+ cognitive \+ social \(\+ repel\) must be > 0",
        ),
        (
            {"pso.inertia": 0, "pso.cognitive": 0, "pso.social": 0, "pso.repel_term": False},
            r"social 0 and repel 0.3 \(repel_term off: unused\): .*must be > 0",
        ),
        # Only the cognitive term (p - x) can act: it is zero for a particle that never moved.
        (
            {"pso.inertia": 0, "pso.social": 0, "pso.repel": 0},
            r"quickstart: pso: social 0, repel 0 and inertia 0 leave only the cognitive term \(cognitive "
            r"0.3\), which is zero .* so no particle ever moves; set pso.social > 0",
        ),
        (
            {"pso.initial_velocity": "zero", "pso.social": 0, "pso.repel_term": False},
            r"pso: social 0, repel 0.3 with repel_term off and inertia 0.4 with initial_velocity 'zero' "
            "leave only the cognitive term",
        ),
        # λ: zero from the start, or underflowing to 0 before the last move.
        ({"pso.step_length": 0, "pso.min_step_length": 0}, "pso.step_length: Input should be greater than 0; got 0"),
        (
            {"pso.min_step_length": 0, "pso.step_length_factor": 1e-200, "pso.max_iterations": 4},
            "pso.min_step_length: 0 with step_length 1 and step_length_factor 1e-200 lets λ underflow to 0 "
            "before the last of max_iterations 4",
        ),
        ({"pso.step_length_factor": 0}, "pso.step_length_factor: Input should be greater than 0; got 0"),
        # Stopping before anything is recorded, and restarts that pin a particle to its personal best.
        ({"pso.patience": 0}, "pso.patience: Input should be greater than or equal to 1; got 0"),
        ({"pso.max_iterations": 0}, "command line: pso.max_iterations: .*greater than or equal to 1; got 0"),
        ({"pso.restart_patience": 0}, "pso.restart_patience: Input should be greater than or equal to 1"),
        (
            {"pso.restart_patience": 1, "pso.restart_cooldown": 0},
            "quickstart: pso.restart_patience: 1 with restart_cooldown 0 sends a particle back to its "
            "personal best, with zero velocity, on every iteration",
        ),
    ],
)  # fmt: skip
def test_searches_that_cannot_move_are_refused_up_front(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config("quickstart", overrides)
    assert "\n" not in str(info.value) and "Value error" not in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"seed_generators.n_generators": 2},
        {"pso.max_iterations": 1},  # evaluate-only: records utilities and stops without moving
        {"pso.inertia": 0, "pso.cognitive": 0, "pso.repel": 0},  # social only
        {"pso.inertia": 0, "pso.cognitive": 0, "pso.social": 0},  # repel only
        {"pso.social": 0, "pso.repel": 0},  # inertia on the random initial velocity, then cognitive
        {"pso.cognitive": 0, "pso.social": 0, "pso.repel_term": False},  # inertia only: a straight line
        {"pso.min_step_length": 0, "pso.max_iterations": 200},  # λ decays but stays > 0
        {"pso.min_step_length": 0, "pso.step_length_factor": 1e-200, "pso.max_iterations": 3},  # 2 moves
        {"pso.restart_patience": 1, "pso.restart_cooldown": 1},
        {"pso.restart_patience": None, "pso.restart_cooldown": 0},
        {"pso.patience": 1},
    ],
)
def test_searches_that_can_move_are_accepted(overrides):
    load_config("quickstart", overrides)


# -- numbers out of range (kind 10) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # --seed 1180591620717411303424 was accepted, then could not be written to Parquet (int64).
        (
            {"seed": 1180591620717411303424},
            r"^command line: seed: out of range: a seed must be 0 <= seed < 2\*\*63 \(run files store it as a "
            r"64-bit integer\); got 1180591620717411303424$",
        ),
        ({"seed": 2**63}, "seed: out of range: .*; got 9223372036854775808$"),
        ({"seed": -1}, "seed: out of range: .*; got -1$"),
        ({"seed": 1e30}, "seed: out of range: .*; got 1e\\+30$"),  # YAML 1.0e+30
        ({"seed": 10**400}, "seed: out of range: .*; got <an integer of 401 digits>$"),  # > any float
        ({"seed": 10**5000}, "seed: out of range: .*; got <an integer of about 5001 digits>$"),  # > str()'s limit
        ({"seed": float("inf")}, "seed: Input should be a finite number; got inf$"),
        ({"seed": 1.5}, "seed: Input should be a valid integer, got a number with a fractional part; got 1.5"),
        # A negative composite weight: the weight and its value, not "for at least one objective".
        (
            {"scoring.objective": "composite", "scoring.composite_weights": {"difficulty": 1, "novelty": -0.2}},
            "^command line: scoring.composite_weights.novelty: Input should be greater than or equal to 0; got -0.2$",
        ),
        (
            {"scoring.composite_weights": {"separation": -1}},  # wrong even while another objective is used
            "scoring.composite_weights.separation: Input should be greater than or equal to 0; got -1$",
        ),
        ({"scoring.composite_weights": {"novelty": float("nan")}}, "novelty: Input should be a finite number; got nan"),
        ({"scoring.composite_weights": {"novelty": float("inf")}}, "novelty: Input should be a finite number; got inf"),
        ({"scoring.composite_weights": {"novelty": 1e9}}, r"novelty: Input should be less than or equal to 1000000"),
        (
            {"scoring.objective": "composite", "scoring.composite_weights": {}},
            r"scoring.composite_weights: no weight > 0 \(none\)",
        ),
        (
            {"scoring.objective": "composite", "scoring.composite_weights": {"difficulty": 0, "novelty": 0}},
            r"scoring.composite_weights: no weight > 0 \(difficulty: 0, novelty: 0\)",
        ),
        # Temperatures, probabilities, learning rates, counts and token limits: each field's own range.
        ({"generation.temperature": 0}, "generation.temperature: Input should be greater than 0; got 0$"),
        ({"generation.temperature": 11}, "generation.temperature: Input should be less than or equal to 10; got 11"),
        ({"scoring.answer_temperature": -0.1}, "scoring.answer_temperature: .*greater than or equal to 0; got -0.1"),
        ({"generation.top_p": 0}, "generation.top_p: Input should be greater than 0; got 0$"),
        ({"generation.top_p": 1.5}, "generation.top_p: Input should be less than or equal to 1; got 1.5"),
        ({"seed_generators.lora.lora_dropout": 1}, "lora_dropout: Input should be less than 1; got 1$"),
        ({"seed_generators.learning_rate": 0}, "seed_generators.learning_rate: Input should be greater than 0"),
        ({"test_takers.learning_rate": float("nan")}, "test_takers.learning_rate: Input should be a finite number"),
        ({"test_takers.learning_rate": 3}, "test_takers.learning_rate: Input should be less than or equal to 1; got 3"),
        ({"seed_generators.steps": 0}, "seed_generators.steps: .*greater than or equal to 1; got 0"),
        ({"seed_generators.steps": 10**30}, "seed_generators.steps: Input should be less than or equal to 10000000"),
        ({"test_takers.batch_size": 0}, "test_takers.batch_size: .*greater than or equal to 1; got 0"),
        ({"seed_generators.lora.r": 0}, "seed_generators.lora.r: .*greater than or equal to 1"),
        ({"test_takers.lora.lora_alpha": 10**6}, "test_takers.lora.lora_alpha: .*less than or equal to 65536"),
        ({"seed_generators.n_generators": 5000}, "n_generators: Input should be less than or equal to 1024; got 5000"),
        ({"test_takers.n_adapters": -1}, "test_takers.n_adapters: .*greater than or equal to 0; got -1"),
        ({"task.max_dev_items": 0}, "task.max_dev_items: .*greater than or equal to 1; got 0"),
        ({"generation.items_shown": 0}, "generation.items_shown: .*greater than or equal to 1"),
        ({"generation.items_written": 10**4}, "generation.items_written: .*less than or equal to 1000"),
        ({"generation.calls_per_generator": 0}, "generation.calls_per_generator: .*greater than or equal to 1"),
        ({"generation.max_new_tokens": 4}, "generation.max_new_tokens: .*greater than or equal to 8; got 4"),
        ({"generation.max_new_tokens": 2**70}, "generation.max_new_tokens: .*less than or equal to 1000000"),
        ({"generation.batch_size": 0}, "generation.batch_size: .*greater than or equal to 1; got 0"),
        ({"scoring.consistency_sets": 1}, "scoring.consistency_sets: .*greater than or equal to 2; got 1"),
        ({"scoring.novelty_dev_items": 0}, "scoring.novelty_dev_items: .*greater than or equal to 1"),
        ({"scoring.realistic_neighbours": 0}, "scoring.realistic_neighbours: .*greater than or equal to 1"),
        ({"scoring.answer_max_new_tokens": 0}, "scoring.answer_max_new_tokens: .*greater than or equal to 1"),
        ({"scoring.batch_size": 10**6}, "scoring.batch_size: .*less than or equal to 65536"),
        ({"judge.retries": -1}, "judge.retries: .*greater than or equal to 0; got -1"),
        ({"judge.max_new_tokens": 1}, "judge.max_new_tokens: .*greater than or equal to 2; got 1"),
        ({"export.items": 0}, "export.items: .*greater than or equal to 1; got 0"),
        ({"judge.endpoint": {"base_url": "http://x/v1", "model": "m", "timeout": 0}}, "judge.endpoint.timeout: .*greater than 0"),
        ({"judge.endpoint": {"base_url": "http://x/v1", "model": "m", "timeout": 1e300}}, "timeout: .*less than or equal to 86400"),
        ({"judge.endpoint": {"base_url": "http://x/v1", "model": "m", "max_retries": -1}}, "max_retries: .*greater than or equal to 0"),
        ({"judge.endpoint": {"base_url": "http://x/v1", "model": "m", "concurrency": 0}}, "concurrency: .*greater than or equal to 1"),
        ({"pso.inertia": -0.1}, "pso.inertia: Input should be greater than or equal to 0; got -0.1"),
        ({"pso.social": 1e300}, "pso.social: Input should be less than or equal to 1000000"),
        ({"pso.cognitive": float("inf")}, "pso.cognitive: Input should be a finite number; got inf"),
        ({"pso.step_length": 11}, "pso.step_length: Input should be less than or equal to 10; got 11"),
        ({"pso.step_length_factor": 1.5}, "pso.step_length_factor: .*less than or equal to 1; got 1.5"),
        ({"pso.min_step_length": -0.1}, "pso.min_step_length: .*greater than or equal to 0; got -0.1"),
        ({"pso.min_step_length": 2}, r"pso.min_step_length \(2.0\) must be <= pso.step_length \(1.0\)"),
        ({"pso.max_iterations": 10**7}, "pso.max_iterations: .*less than or equal to 1000000"),
        ({"pso.restart_cooldown": -1}, "pso.restart_cooldown: .*greater than or equal to 0; got -1"),
    ],
)  # fmt: skip
def test_numbers_out_of_range_name_the_field_and_value(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config("quickstart", overrides)
    assert "\n" not in str(info.value) and "Value error" not in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"seed": 2**63 - 1},
        {"seed": 0},
        {"scoring.objective": "composite", "scoring.composite_weights": {"difficulty": 1, "novelty": 0}},
        {"generation.top_p": 1, "generation.temperature": 10, "scoring.answer_temperature": 0},
        {"seed_generators.learning_rate": 1, "seed_generators.lora.lora_dropout": 0.999},
        {"test_takers.n_adapters": 0},
        {"pso.step_length": 10, "pso.step_length_factor": 1, "pso.min_step_length": 10},
    ],
)
def test_numbers_at_the_ends_of_their_ranges_are_accepted(overrides):
    load_config("quickstart", overrides)


def test_a_seed_out_of_range_in_a_file_blames_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1180591620717411303424\n")
    with pytest.raises(ConfigError, match=rf"^{path}: seed: out of range: .*; got 1180591620717411303424$"):
        load_config(str(path))


def _numeric_properties(schema, defs, path=""):
    """Yield (dotted path, property schema) for every integer/number in a JSON schema (dict values: ``*``)."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    for option in schema.get("anyOf", []):
        yield from _numeric_properties(option, defs, path)
    if schema.get("type") in ("integer", "number"):
        yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from _numeric_properties(prop, defs, f"{path}.{name}".lstrip("."))
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _numeric_properties(schema["additionalProperties"], defs, f"{path}.*")
    if isinstance(schema.get("items"), dict):
        yield from _numeric_properties(schema["items"], defs, f"{path}[]")


def test_every_numeric_field_states_its_range_in_the_schema():
    """A numeric field added without a range fails here: each has a lower and an upper bound in the schema."""
    schema = RunConfig.model_json_schema()
    fields = dict(_numeric_properties(schema, schema.get("$defs", {})))
    assert len(fields) >= 45, sorted(fields)
    unbounded = [
        path
        for path, prop in fields.items()
        if not ({"minimum", "exclusiveMinimum"} & set(prop) and {"maximum", "exclusiveMaximum"} & set(prop))
    ]
    assert unbounded == []
    assert (fields["seed"]["minimum"], fields["seed"]["exclusiveMaximum"]) == (0, 2**63)
    assert fields["seed_generators.n_generators"]["minimum"] == 2
    assert fields["scoring.composite_weights.*"]["minimum"] == 0
    assert (fields["generation.top_p"]["exclusiveMinimum"], fields["generation.top_p"]["maximum"]) == (0, 1)


@pytest.mark.parametrize(
    ("benchmark", "message"),
    [
        ({"name": "a/b"}, "'a/b' is not a valid benchmark name"),
        ({"name": "b", "schedules": [{"cron": "0 3 * *"}]}, "cron '0 3 \\* \\*': expected 5 fields"),
        ({"name": "b", "schedules": [{"cron": "0 3 * * 1", "interval_seconds": 60}]}, "exactly one of cron"),
        ({"name": "b", "schedules": [{}]}, "exactly one of cron"),
        ({"name": "b", "schedules": [{"interval_seconds": 0}]}, "greater than 0"),
    ],
)
def test_bad_benchmark_sections_are_refused_in_one_line(tmp_path, benchmark, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"benchmark": benchmark}))
    with pytest.raises(ConfigError, match=message):
        load_config(str(path))


def test_a_benchmark_section_with_schedules_loads():
    cfg = load_config(
        "quickstart",
        {"benchmark.name": "b", "benchmark.models": ["m"], "benchmark.schedules": [{"cron": "0 3 * * 1"}, {"interval_seconds": 3600, "active": False}]},
    )
    assert cfg.benchmark.schedules[0].cron == "0 3 * * 1" and cfg.benchmark.schedules[1].active is False


def test_a_file_extending_a_builtin_is_merged_over_it(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("extends: quickstart\npso: {max_iterations: 7}\nbenchmark: {name: b, models: [m]}\n")
    cfg, quick = load_config(str(path)), load_config("quickstart")
    assert cfg.pso.max_iterations == 7 and cfg.pso.inertia == quick.pso.inertia  # merged key by key
    assert cfg.generation == quick.generation and cfg.benchmark.models == ["m"]
    path.write_text("extends: nope\n")
    with pytest.raises(ConfigError, match=rf"^{path}: extends: 'nope' is not a built-in configuration"):
        load_config(str(path))
