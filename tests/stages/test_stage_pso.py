"""Stage ``pso`` called directly (no Prefect): the initial swarms and one swarm update."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny import hand_made_manifest, tiny_search_config

from dataswarms_core import stages
from dataswarms_core.pso import init_swarm, load_swarm_state, update_swarm
from dataswarms_core.records import AdapterManifest, PoolScoringReport, ScoringReport, SwarmStepReport
from dataswarms_core.seeding import derive_seed
from dataswarms_core.stages.layout import swarm_iter_key, swarm_key

NAMES = ["g0", "g1", "g2", "g3"]
UTILITIES = [0.2, 0.9, 0.5, 0.1]  # g1 best, g3 worst


def _positions(manifest: AdapterManifest) -> list[dict[str, torch.Tensor]]:
    from dataswarms_core.stages.components import read_adapter_url

    return [read_adapter_url(e.url, {})[1] for e in manifest.adapters.values()]


def _scoring(swarm: str, utilities: list[float]) -> ScoringReport:
    n = len(utilities)
    return ScoringReport(
        swarm=swarm, iteration=0, objective="difficulty", judge="expected-score", generators=NAMES[:n],
        test_takers=["base"], score_matrix=[[1 - u] for u in utilities], utilities=utilities,
        components={"difficulty": utilities}, undefined={}, empty_generators=[], judge_failures=0,
        judge_failures_per_generator=dict.fromkeys(NAMES[:n], 0), judge_failures_per_test_taker={"base": 0},
        answers=n, mean_judge_mass=None, seconds=0.0,
    )  # fmt: skip


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _expected_random_velocities(positions, seed, labels):
    """v_i = x_j − x_i with j drawn as documented (docs/method.md §5), from derive_seed(seed, *labels)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, *labels))
    n, out = len(positions), []
    for i in range(n):
        j = int(torch.randint(0, n - 1, (1,), generator=gen))
        j = j + 1 if j >= i else j
        out.append({k: positions[j][k] - positions[i][k] for k in positions[i]})
    return out


@pytest.fixture(scope="module")
def swarm_run(tiny_model_dir, tmp_path_factory):
    """A run store with one generator swarm initialised from four hand-made adapters (no SFT, no prepare_run:
    init_swarms only reads the manifest's adapters)."""
    root = tmp_path_factory.mktemp("pso")
    cfg = tiny_search_config(tiny_model_dir, root, "pso-run")
    manifest = hand_made_manifest(cfg, tiny_model_dir, NAMES)
    run = stages.run_store(cfg)
    pointer = stages.init_swarms(cfg, run, {"generators": manifest})
    return cfg, run, manifest, pointer


def test_init_swarms_writes_the_checkpoint_and_pointer(swarm_run):
    cfg, run, manifest, pointer = swarm_run
    assert pointer.iteration == 0 and pointer.stopped is None
    assert pointer.swarms == {"generators": "swarms/generators/iter_0000"}
    assert stages.read_checkpoint_pointer(run) == pointer
    folder = Path(run.url("swarms/generators/iter_0000"))
    assert sorted(p.name for p in folder.iterdir()) == ["state.json", "tensors.safetensors"]
    state = load_swarm_state(run, swarm_key("generators", 0))
    assert state.swarm == "generators" and state.names == NAMES and state.iteration == 0
    assert state.seed == cfg.seed and state.step_length == cfg.pso.step_length
    positions = _positions(manifest)
    assert all(_same(x, p) for x, p in zip(state.positions, positions, strict=True))
    assert all(_same(p, x) for p, x in zip(state.personal_best, positions, strict=True))
    assert state.personal_best_utility == [None] * 4 and state.global_best is None
    adapter_config = json.loads(Path(manifest.adapters["g0"].url, "adapter_config.json").read_text())
    assert state.metadata["lora_config"] == {**adapter_config, "target_modules": ["q_proj", "v_proj"]}


def test_init_swarms_again_returns_the_existing_pointer(swarm_run):
    cfg, run, manifest, pointer = swarm_run
    tensors = Path(run.url("swarms/generators/iter_0000/tensors.safetensors"))
    mtime = tensors.stat().st_mtime_ns
    again = stages.init_swarms(cfg, run, {"generators": manifest, "test_takers": manifest})
    assert again == pointer  # same iteration, swarms and time written
    assert tensors.stat().st_mtime_ns == mtime
    assert not run.exists("swarms/test_takers")


def test_pso_step_records_utilities_and_moves_the_swarm(swarm_run):
    cfg, run, manifest, pointer = swarm_run
    _scoring("generators", UTILITIES).write(run, swarm_iter_key(0, "generators", "scoring.json"))
    before = load_swarm_state(run, swarm_key("generators", 0))

    report = stages.pso_step(cfg, run, 0, "generators")

    assert SwarmStepReport.read(run, "iterations/iter_0000/generators/pso.json") == report
    assert report.swarm == "generators" and report.iteration == 0 and report.utilities == UTILITIES
    assert report.global_best_particle == "g1" and report.global_best_utility == 0.9
    assert report.global_worst_utility == 0.1
    assert report.personal_best_utility == UTILITIES and report.personal_best_improved == [True] * 4
    assert report.global_best_improved and report.stopped is None
    assert report.step_length == 1.0 and report.next_step_length == pytest.approx(0.95)
    assert len(report.weights) == 4 and all(sum(w) == pytest.approx(1.0) for w in report.weights)
    assert report.checkpoint == run.url("swarms/generators/iter_0001")
    assert stages.read_checkpoint_pointer(run) == pointer  # the flow writes the pointer, not the step

    after = load_swarm_state(run, swarm_key("generators", 1))
    assert after.iteration == 1 and after.global_best_particle == 1 and after.global_best_iteration == 0
    assert _same(after.global_best, _positions(manifest)[1])  # g = g1's position when it was evaluated
    assert _same(after.global_worst, _positions(manifest)[3])
    # The checkpoint is exactly the documented update of the iteration-0 state with these utilities.
    update_swarm(before, UTILITIES, cfg.pso)
    for got, want in zip(after.positions, before.positions, strict=True):
        assert _same(got, want)
    assert not _same(after.positions[0], _positions(manifest)[0])  # the particles moved


def test_named_swarms_have_their_own_random_streams(swarm_run):
    cfg, _, manifest, _ = swarm_run
    assert cfg.pso.initial_velocity == "random"
    run = stages.run_store(cfg.model_copy(update={"run_name": "two-swarms"}))
    pointer = stages.init_swarms(cfg, run, {"generators": manifest, "test_takers": manifest})
    assert pointer.swarms == {
        "generators": "swarms/generators/iter_0000",
        "test_takers": "swarms/test_takers/iter_0000",
    }
    gens = load_swarm_state(run, swarm_key("generators", 0))
    takers = load_swarm_state(run, swarm_key("test_takers", 0))
    assert takers.swarm == "test_takers" and all(
        _same(a, b) for a, b in zip(gens.positions, takers.positions, strict=True)
    )
    # Same positions, other random stream: the velocities differ.
    assert not all(_same(a, b) for a, b in zip(gens.velocities, takers.velocities, strict=True))
    positions = _positions(manifest)
    # The generator swarm keeps the one-swarm layout's stream ("pso-init"); other swarms add their name.
    want_gens = _expected_random_velocities(positions, cfg.seed, ("pso-init",))
    want_takers = _expected_random_velocities(positions, cfg.seed, ("pso-init", "test_takers"))
    assert all(_same(a, b) for a, b in zip(gens.velocities, want_gens, strict=True))
    assert all(_same(a, b) for a, b in zip(takers.velocities, want_takers, strict=True))
    default = init_swarm(positions, cfg.pso, cfg.seed, names=NAMES)  # default swarm name
    assert all(_same(a, b) for a, b in zip(gens.velocities, default.velocities, strict=True))

    # One step of each swarm with the same utilities draws other PSO factors.
    _scoring("generators", UTILITIES).write(run, swarm_iter_key(0, "generators", "scoring.json"))
    names = NAMES[: len(UTILITIES)]
    PoolScoringReport(
        swarm="test_takers", iteration=0, judge="expected-score", test_takers=names, utilities=UTILITIES,
        judged=dict.fromkeys(names, 4), judge_failures=dict.fromkeys(names, 0),
        answer_failures=dict.fromkeys(names, 0), pool_size=4, generated_share=0.25, seconds=0.0,
    ).write(run, swarm_iter_key(0, "test_takers", "scoring.json"))  # fmt: skip
    step_g = stages.pso_step(cfg, run, 0, "generators")
    step_t = stages.pso_step(cfg, run, 0, "test_takers")
    assert step_t.swarm == "test_takers" and step_t.global_best_particle == "g1"
    assert step_t.checkpoint == run.url("swarms/test_takers/iter_0001")
    assert run.exists("iterations/iter_0000/test_takers/pso.json")
    assert step_g.weights != step_t.weights
