"""The hyper-parameter sweep (dataswarms_core/sweep.py, flows/sweep.py, ``dataswarms sweep``)."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import _free_port
from tiny import tiny_search_config
from typer.testing import CliRunner

from dataswarms_core.errors import ConfigError
from dataswarms_core.records import SweepTrial
from dataswarms_core.sweep import (
    DEFAULT_SPACE,
    Dimension,
    best_config_yaml,
    check_space,
    grid_size,
    load_space,
    new_study,
    sweep_markdown,
    sweep_table,
    trial_config,
)


def test_dimensions_are_checked_and_give_grid_values():
    assert Dimension(key="pso.inertia", low=0.0, high=0.8).grid_values() == [0.0, 0.4, 0.8]
    assert Dimension(key="pso.step_length", low=0.25, high=4.0, log=True).grid_values() == [0.25, 1.0, 4.0]
    assert Dimension(key="pso.patience", low=1, high=4, integer=True).grid_values() == [1, 2, 4]
    assert Dimension(key="x.y", choices=[3, 4], grid=[4]).grid_values() == [4]
    assert grid_size([Dimension(key="a", low=0, high=1), Dimension(key="b", choices=[1, 2])]) == 6
    for bad, message in (
        ({"low": 1.0, "high": 1.0}, "needs low < high"),
        ({"low": 0.0, "high": 1.0, "log": True}, "a log range needs low > 0"),
        ({"low": 0.0, "high": 1.0, "choices": [1]}, "either choices or low and high, not both"),
        ({"choices": []}, "choices is empty"),
        ({"low": 3.2, "high": 3.8, "integer": True}, "no whole number between 3.2 and 3.8"),
    ):
        with pytest.raises(ValueError, match=message):
            Dimension(key="pso.inertia", **bad)
    assert {d.key for d in DEFAULT_SPACE} >= {"pso.inertia", "pso.step_length", "seed_generators.n_generators"}


def test_space_files_and_settings_are_refused_in_one_line(tmp_path):
    cfg = tiny_search_config(tmp_path, tmp_path, None)
    space = tmp_path / "space.yaml"
    for text, message in (
        ("[1, 2]", "expected a mapping of dotted settings to ranges"),
        ("pso.inertia: 0.3\n", "pso.inertia: expected a mapping with low/high or choices"),
        ("pso.inertia: {low: 0.5, high: 0.1}\n", r"pso.inertia: needs low < high \(got 0.5, 0.1\) or choices$"),
        ("pso.inertia: {low: 0, hi: 1}\n", "pso.inertia: hi: Extra inputs are not permitted"),
        ("PSO.x: {low: 0, high: 1}\n", "PSO.x: 'PSO.x': expected a lowercase dotted setting such as pso.inertia"),
        ("a: [unclosed\n", "cannot read the sweep space"),
    ):
        space.write_text(text)
        with pytest.raises(ConfigError, match=f"{space}: {message}") as err:
            load_space(str(space))
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="space.yaml: pso.wobble is not a configuration setting"):
        check_space(cfg, [Dimension(key="pso.wobble", low=0, high=1)], "s", "space.yaml")
    with pytest.raises(ConfigError, match="sweep space: pso is not a configuration setting"):
        check_space(cfg, [Dimension(key="pso", low=0, high=1)], "s")
    with pytest.raises(
        ConfigError, match=r"^space.yaml: pso.step_length = 20.0 refused: pso.step_length: Input should be less than"
    ):
        check_space(cfg, [Dimension(key="pso.step_length", low=0.5, high=20.0)], "s", "space.yaml")
    # an integer range is checked at its whole-number ends: 1.5 → 2 is allowed, 0 generators is not
    check_space(cfg, [Dimension(key="seed_generators.n_generators", low=1.5, high=4, integer=True)], "s")
    with pytest.raises(ConfigError, match="seed_generators.n_generators = 0 refused"):
        check_space(cfg, [Dimension(key="seed_generators.n_generators", low=0, high=4, integer=True)], "s")
    trial = trial_config(cfg, {"pso.inertia": 0.25, "seed_generators.n_generators": 2}, "s", 7)
    assert trial.run_name == "sweep-s-t007" and trial.pso.inertia == 0.25 and trial.seed_generators.n_generators == 2
    assert trial.seed == cfg.seed and trial.pso.social == cfg.pso.social  # only the trial's settings change


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
def test_seeded_samplers_ask_the_same_trials_given_the_same_values(sampler):
    space = [Dimension(key="pso.inertia", low=0.0, high=0.9), Dimension(key="pso.social", choices=[0.1, 0.3, 0.5])]

    def run(seed):
        study, asked = new_study(space, sampler, seed), []
        for _ in range(6):
            trial = study.ask()
            params = {d.key: d.suggest(trial) for d in space}
            asked.append(params)
            study.tell(trial, -((params["pso.inertia"] - 0.3) ** 2) + params["pso.social"])
        return asked

    first = run(4)
    assert run(4) == first
    if sampler != "grid":
        assert run(5) != first
    else:  # every grid point at most once
        assert len({tuple(p.values()) for p in first}) == 6


def test_table_best_settings_and_config_file(tmp_path):
    from dataswarms_core.config_files import load_config

    cfg = tiny_search_config(tmp_path, tmp_path, None)
    trials = [
        SweepTrial(number=0, run_name="sweep-s-t000", params={"pso.inertia": 0.1}, in_search=0.2, value=0.2,
                   state="complete"),
        SweepTrial(number=1, run_name="sweep-s-t001", params={"pso.inertia": 0.7}, in_search=None, value=None,
                   state="failed: RuntimeError: boom"),
        SweepTrial(number=2, run_name="sweep-s-t002", params={"pso.inertia": 0.5}, in_search=0.4, value=0.4,
                   state="complete"),
    ]  # fmt: skip
    table = sweep_table("s", "difficulty", "tpe", 0, "the in-search global best", trials)
    assert (table.best_trial, table.best_params, table.best_value) == (2, {"pso.inertia": 0.5}, 0.4)
    text = sweep_markdown(table)
    assert "| 2 **best** | 0.5 | 0.4 | — | complete |" in text and "| 1 | 0.7 | — | — | failed: RuntimeError: boom |" in text
    best = tmp_path / "best.yaml"
    best.write_text(best_config_yaml(cfg, table))
    loaded = load_config(str(best))
    assert loaded.pso.inertia == 0.5 and loaded.run_name is None
    assert loaded.model_dump() == trial_config(cfg, {"pso.inertia": 0.5}, "s", 2).model_copy(update={"run_name": None}).model_dump()
    with pytest.raises(ValueError, match="no trial has a value"):
        best_config_yaml(cfg, sweep_table("s", "difficulty", "tpe", 0, "m", trials[1:2]))


def test_two_trial_sweep_on_the_tiny_model(prefect_harness, format_model_dir, tmp_path):
    from dataswarms.flows.sweep import data_swarms_sweep

    root = tmp_path / "runs"
    cfg = tiny_search_config(format_model_dir, root, None, **{"pso.max_iterations": 1})
    space = [Dimension(key="pso.inertia", low=0.1, high=0.9), Dimension(key="pso.step_length", choices=[0.5, 2.0])]
    table = data_swarms_sweep(cfg, "tiny", trials=2, sampler="random", space=space, draws=1)
    assert [t.number for t in table.trials] == [0, 1] and table.sampler == "random"
    out = root / "sweeps" / "tiny"
    for t in table.trials:
        run = root / f"sweep-tiny-t{t.number:03d}"
        summary = json.loads((run / "summary.json").read_text())
        stored = yaml.safe_load((run / "config.yaml").read_text())
        assert stored["pso"]["inertia"] == t.params["pso.inertia"] and stored["pso"]["step_length"] == t.params["pso.step_length"]
        assert t.in_search == summary["global_best_utility"]
        remeasured = json.loads((run / "remeasure/remeasure.json").read_text())
        assert t.remeasured == remeasured["mean"] and t.value == t.remeasured  # draws=1: the re-measured value
        assert t.state == ("complete" if t.value is not None else "failed: no value (missing)")
    assert table.trials[0].params != table.trials[1].params
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["best_trial"] == table.best_trial and len(saved["trials"]) == 2
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sweep-tiny-t001" in (out / "sweep.csv").read_text()
    if table.best_params is not None:
        best = yaml.safe_load((out / "best.yaml").read_text())
        assert best["pso"]["inertia"] == table.best_params["pso.inertia"]

    # the same sweep again: the seeded sampler asks the same trials, whose finished runs are reused
    before = (root / "sweep-tiny-t000" / "summary.json").stat().st_mtime_ns
    assert data_swarms_sweep(cfg, "tiny", trials=2, sampler="random", space=space, draws=1) == table
    assert (root / "sweep-tiny-t000" / "summary.json").stat().st_mtime_ns == before
    # another space under the same name would reuse runs made with other settings: refused
    other = [Dimension(key="pso.inertia", low=0.1, high=0.9)]
    with pytest.raises(ConfigError, match=r"the finished run sweep-tiny-t000 differs from this trial in .*pso.inertia: "):
        data_swarms_sweep(cfg.model_copy(update={"seed": 1}), "tiny", trials=1, sampler="random", space=other)


def test_sweep_command_refuses_bad_input_before_any_work(prefect_harness, tmp_path):
    from dataswarms.flows.cli import app

    runner = CliRunner()
    space = tmp_path / "space.yaml"
    space.write_text("pso.inertia: {low: 2, high: 1}\n")
    result = runner.invoke(app, ["sweep", "--space", str(space), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and "needs low < high" in result.output
    result = runner.invoke(app, ["sweep", "--sampler", "annealing"])
    assert result.exit_code == 2 and "--sampler: unknown sweep sampler 'annealing'; known: tpe" in result.output
    space.write_text("seed_generators.n_generators: {low: 3.2, high: 3.8, integer: true}\n")
    result = runner.invoke(app, ["sweep", "--space", str(space)])
    assert result.exit_code == 2 and f"{space}: seed_generators.n_generators: integer: no whole number" in result.output
    space.write_text("pso.step_length: {low: 0.5, high: 50}\n")
    result = runner.invoke(app, ["sweep", "--space", str(space)])
    assert result.exit_code == 2 and f"{space}: pso.step_length = 50.0 refused" in result.output
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # no API, whatever other tests configured
        result = runner.invoke(app, ["sweep", "--deployment", "data-swarms-search/x"])
    assert result.exit_code == 2 and "sweep --deployment needs a running Prefect server" in result.output
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{_free_port()}/api"}):  # nothing listens there
        result = runner.invoke(app, ["sweep", "--deployment", "data-swarms-search/x"])
    assert result.exit_code == 2 and "--deployment: cannot reach the Prefect API at http://127.0.0.1:" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["sweep", "--deployment", "data-swarms-search/x"])  # the harness: no deployments
    assert result.exit_code == 2 and "--deployment data-swarms-search/x: no such deployment on" in result.output
    assert not (tmp_path / "out").exists()
