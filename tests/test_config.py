"""Run configuration: built-ins, YAML files, overrides and errors."""

import pytest

from dataswarms_core.config import RunConfig, config_hash, load_config
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
        ("scoring: {judge: generative}\n", None, "c.yaml: scoring: scoring.judge moved to judge.name$"),
        (
            "scoring: {judge_retries: 3, dev_judge: reference}\n",
            None,
            "scoring.dev_judge moved to judge.dev_name; scoring.judge_retries moved to judge.retries",
        ),
        ("scoring: {judge_endpoint: null}\n", None, "scoring.judge_endpoint moved to judge.endpoint"),
        ("scoring: {judge_max_new_tokens: 8}\n", None, "scoring.judge_max_new_tokens moved to judge.max_new"),
        (
            "model: {backend: vllm}\n",
            None,
            "model.backend: .*unknown local backend 'vllm'; known local backends: hf",
        ),
        ("model: {backend: openai}\n", None, "'openai' is an endpoint backend; known local backends: hf"),
        (
            "scoring: {objective: composite, composite_weights: {banana: 1}}\n",
            None,
            r"scoring.composite_weights: .*unknown objective\(s\) \['banana'\]; known: difficulty, sep",
        ),
        (
            "scoring: {objective: composite, composite_weights: {difficulty: 0}}\n",
            None,
            "the weights sum to 0",
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
