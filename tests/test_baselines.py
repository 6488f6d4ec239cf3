"""Search strategies (docs/method.md §9): hand-checked random points, the base model as zero LoRA B, the
baseline update's records and stops, and a tiny search run by each baseline at the search's budget."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from tiny import tiny_search_config

from dataswarms_core.baselines import SEARCHES, cma_es_weights, mix, random_points, update_baseline
from dataswarms_core.pso import PSOConfig, init_swarm
from dataswarms_core.seeding import derive_seed


def _pos(*values: float) -> dict[str, torch.Tensor]:
    return {"lora_A.weight": torch.tensor(values, dtype=torch.float32), "lora_B.weight": torch.tensor([1.0])}


def test_random_points_are_convex_mixes_plus_a_step_drawn_in_order():
    seeds = [_pos(0.0, 0.0), _pos(1.0, 0.0), _pos(0.0, 2.0)]
    got = random_points(seeds, 2, torch.Generator().manual_seed(7), step=0.5)
    gen = torch.Generator().manual_seed(7)  # the same draws, by hand
    for point in got:
        e = -torch.log(torch.rand(3, generator=gen, dtype=torch.float64))
        w = e / e.sum()
        a = int(torch.randint(0, 3, (1,), generator=gen))
        b = int(torch.randint(0, 2, (1,), generator=gen))
        b = b + 1 if b >= a else b
        assert a != b and float(w.sum()) == pytest.approx(1.0) and bool((w > 0).all())
        mix = [float(w[1]), 2 * float(w[2])]  # Σ w_j s_j for the A factor
        step = [0.5 * (x - y) for x, y in zip(seeds[a]["lora_A.weight"].tolist(), seeds[b]["lora_A.weight"].tolist(), strict=True)]
        assert point["lora_A.weight"].tolist() == pytest.approx([m + s for m, s in zip(mix, step, strict=True)], abs=1e-6)
        assert point["lora_A.weight"].dtype == torch.float32
        assert point["lora_B.weight"].tolist() == pytest.approx([1.0])  # equal seeds: the mix, no step
    with pytest.raises(ValueError, match="at least 2 seed generators"):
        random_points(seeds[:1], 1, torch.Generator(), 1.0)


def test_base_model_strategy_zeroes_every_b_factor_which_is_the_base_model(tiny_model_dir):
    from peft import get_peft_model, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    from dataswarms_core.adapters import lora_config
    from dataswarms_core.config import LoraSettings

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([[1, 5, 9, 14, 3]])
    want = base(ids).logits
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora_config(LoraSettings()))
    trained = {k: torch.randn_like(t) for k, t in model.state_dict().items() if "lora_" in k}
    (zeroed,) = SEARCHES.get("base-model").impl.initial([trained])
    assert all(not t.any() for k, t in zeroed.items() if "lora_B" in k)
    assert all(torch.equal(t, trained[k]) for k, t in zeroed.items() if "lora_A" in k)
    set_peft_model_state_dict(model, {k.replace(".default", ""): t for k, t in zeroed.items()})
    assert torch.allclose(model.eval()(ids).logits, want, atol=1e-6)  # B·A = 0: exactly the base model


def test_update_baseline_records_like_the_search_and_moves_by_its_strategy():
    cfg = PSOConfig(max_iterations=3, step_length=1.0, step_length_factor=0.5)
    seeds = [_pos(0.0, 0.0), _pos(1.0, 0.0), _pos(0.0, 2.0)]
    stay = init_swarm(seeds, cfg, seed=3)
    update_baseline(stay, [0.2, 0.5, 0.1], cfg, "seed-best", seeds)
    assert [p["lora_A.weight"].tolist() for p in stay.positions] == [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]
    assert (stay.global_best_utility, stay.global_best_particle, stay.step_length) == (0.5, 1, 0.5)

    jump = init_swarm(seeds, cfg, seed=3)
    report = update_baseline(jump, [0.2, 0.5, 0.1], cfg, "random", seeds)
    want = random_points(seeds, 3, torch.Generator().manual_seed(derive_seed(3, "random", 0)), 1.0)
    assert report.step_length == 1.0 and jump.step_length == 0.5
    for i, (got, expected, old) in enumerate(zip(jump.positions, want, seeds, strict=True)):
        assert torch.equal(got["lora_A.weight"], expected["lora_A.weight"])
        assert torch.equal(jump.velocities[i]["lora_A.weight"], expected["lora_A.weight"] - old["lora_A.weight"])
    assert jump.personal_best[1]["lora_A.weight"].tolist() == [1.0, 0.0]  # bests are where utilities were measured
    update_baseline(jump, [0.1, 0.1, 0.9], cfg, "random", seeds)
    assert jump.global_best_utility == 0.9 and jump.global_best_iteration == 1
    assert update_baseline(jump, [0.0, 0.0, 0.0], cfg, "random", seeds).stopped == "max_iterations"
    with pytest.raises(ValueError, match="moves by the particle swarm update"):
        update_baseline(init_swarm(seeds, cfg, seed=3), [0.1, 0.2, 0.3], cfg, "pso", seeds)


@pytest.mark.parametrize("search", ["random", "base-model", "prompted", "cma-es"])
def test_a_baseline_runs_the_search_loop_at_the_same_generator_budget(prefect_harness, format_model_dir, tmp_path, search):
    from safetensors.torch import load_file

    from dataswarms.flows.search import data_swarms_search

    cfg = tiny_search_config(format_model_dir, tmp_path / "runs", f"tiny-{search}", search=search)
    summary = data_swarms_search(cfg)
    assert summary.iterations_completed == 2 and summary.global_best_utility is not None
    run = tmp_path / "runs" / f"tiny-{search}"
    g, calls, written = cfg.seed_generators.n_generators, cfg.generation.calls_per_generator, cfg.generation.items_written
    for k in range(2):
        synthesis = json.loads((run / f"iterations/iter_{k:04d}/synthesis.json").read_text())
        assert sum(c["requested"] for c in synthesis["counts"].values()) == g * calls * written  # = the search's
    start = load_file(run / "swarms/generators/iter_0000/tensors.safetensors")
    after = load_file(run / "swarms/generators/iter_0001/tensors.safetensors")
    b_factors = [k for k in start if k.startswith("positions/") and "lora_B" in k]
    if search in ("base-model", "prompted"):
        assert all(not start[k].any() for k in b_factors)
        assert all(torch.equal(start[k], after[k]) for k in start if k.startswith("positions/"))
    else:
        assert any(not torch.equal(start[k], after[k]) for k in start if k.startswith("positions/"))
    assert yaml.safe_load((run / "config.yaml").read_text())["search"] == search


@pytest.mark.filterwarnings("ignore::cma.evolution_strategy.InjectionWarning")  # see cma_es_weights
def test_cma_es_replay_asks_what_an_uninterrupted_optimiser_asks_and_is_seeded():
    import nevergrad as ng
    import numpy as np

    def utility(w):  # a concave bowl with its top at (0.1, 0.7, 0.2)
        return -float(((np.asarray(w) - np.array([0.1, 0.7, 0.2])) ** 2).sum())

    param = ng.p.Array(init=np.full(3, 1 / 3)).set_mutation(sigma=0.4)
    param.random_state = np.random.RandomState(11)
    live = ng.optimizers.ParametrizedCMA(popsize=4)(parametrization=param, budget=None, num_workers=4)
    told, asked = [], []
    for _ in range(5):
        cands = [live.ask() for _ in range(4)]
        asked.append([c.value.tolist() for c in cands])
        told.append([utility(c.value) for c in cands])
        for c, u in zip(cands, told[-1], strict=True):
            live.tell(c, -u)
    for k in range(5):  # replaying k told generations gives generation k as the live optimiser asked it
        assert cma_es_weights(3, 4, told[:k], 0.4, 11) == asked[k]  # the same operations: the same floats
    assert cma_es_weights(3, 4, [], 0.4, 12) != cma_es_weights(3, 4, [], 0.4, 11)
    first = max(told[0])  # CMA-ES climbs: the last generation's best beats the first's
    assert max(told[-1]) > first
    with pytest.raises(ValueError, match="generation 0 has 3 utilities, expected 4"):
        cma_es_weights(3, 4, [[0.1, 0.2, 0.3]], 0.4, 11)


def test_cma_es_strategy_places_particles_at_mixes_of_the_seeds_and_resumes_exactly():
    import math

    cfg = PSOConfig(max_iterations=5, step_length=1.0, step_length_factor=0.5)
    seeds = [_pos(0.0, 0.0), _pos(1.0, 0.0), _pos(0.0, 2.0)]
    state = init_swarm(seeds, cfg, seed=5)
    update_baseline(state, [0.2, 0.5, 0.1], cfg, "cma-es", seeds)
    stream = derive_seed(5, "cma-es")
    want = cma_es_weights(3, 3, [], math.sqrt(2 / 3), stream)  # iteration 0 (the seeds) is never told
    for got, w in zip(state.positions, want, strict=True):
        assert got["lora_A.weight"].tolist() == pytest.approx(mix(seeds, w)["lora_A.weight"].tolist())
        assert got["lora_A.weight"].tolist() == pytest.approx([w[1], 2 * w[2]])
    update_baseline(state, [0.3, 0.9, 0.4], cfg, "cma-es", seeds)
    second = cma_es_weights(3, 3, [[0.3, 0.9, 0.4]], math.sqrt(2 / 3), stream)
    assert state.positions[0]["lora_A.weight"].tolist() == pytest.approx(mix(seeds, second[0])["lora_A.weight"].tolist())

    again = init_swarm(seeds, cfg, seed=5)  # the same seed and utilities: the same swarm
    update_baseline(again, [0.2, 0.5, 0.1], cfg, "cma-es", seeds)
    update_baseline(again, [0.3, 0.9, 0.4], cfg, "cma-es", seeds)
    assert all(torch.equal(a["lora_A.weight"], b["lora_A.weight"]) for a, b in zip(again.positions, state.positions, strict=True))


def test_prompted_strategy_states_the_objective_in_every_generation_prompt():
    from fakes import ScriptedBackend

    from dataswarms_core.objectives import goal
    from dataswarms_core.prompts import generation_messages
    from dataswarms_core.synthesis import sample_items

    assert SEARCHES.get("prompted").impl.states_goal and not SEARCHES.get("base-model").impl.states_goal
    plain = generation_messages(["a", "b"], "math", 2)[0]["content"]
    stated = generation_messages(["a", "b"], "math", 2, goal("difficulty"))[0]["content"]
    assert stated == plain + " " + goal("difficulty") and "harder than the examples" in stated
    assert goal("composite", {"difficulty": 0.2, "separation": 0.8, "novelty": 0.0}) == (
        goal("separation") + " " + goal("difficulty")
    )
    backend = ScriptedBackend("1. What is 2+2?\n2. What is 3+3?")
    sample_items(
        backend, ["q1", "q2", "q3"], "math", ["g0", "g1"], items_shown=2, items_written=2, calls=2,
        max_new_tokens=16, temperature=0.7, top_p=0.9, batch_size=4, run_seed=0, iteration=0,
        goal=goal("separation"),
    )  # fmt: skip
    prompts = [r.messages[0]["content"] for r in backend.requests]
    assert len(prompts) == 4 and all(p.endswith(goal("separation")) for p in prompts)


def test_held_out_test_takers_and_cma_es_are_checked_in_the_configuration(tmp_path):
    from dataswarms_core.stages.remeasure import held_out_config

    with pytest.raises(ValueError, match="held_out_test_takers.include_base: the base model is one of the search"):
        tiny_search_config(tmp_path, tmp_path, "x", held_out_test_takers={"n_adapters": 2})
    with pytest.raises(ValueError, match="held_out_test_takers: separation compares test takers: need at least 2"):
        tiny_search_config(
            tmp_path, tmp_path, "x", held_out_test_takers={"include_base": False, "n_adapters": 1},
            **{"scoring.objective": "separation"},
        )  # fmt: skip
    with pytest.raises(ValueError, match="'cma-es' replays its generations"):
        tiny_search_config(tmp_path, tmp_path, "x", search="cma-es", continue_from=str(tmp_path))
    cfg = tiny_search_config(tmp_path, tmp_path, "x", held_out_test_takers={"include_base": False, "n_adapters": 2})
    held = held_out_config(cfg)
    assert held.test_takers.n_adapters == 2 and not held.test_takers.include_base
    # SFT settings not given are the search's test takers' (the tiny config's 2 steps, not the default 100)
    assert (held.test_takers.steps, held.test_takers.lora) == (cfg.test_takers.steps, cfg.test_takers.lora)
    assert cfg.test_takers.steps != type(cfg.test_takers).model_fields["steps"].default
    given = tiny_search_config(tmp_path, tmp_path, "x", held_out_test_takers={"include_base": False, "steps": 3})
    assert given.held_out_test_takers.steps == 3
    assert held.seed == derive_seed(cfg.seed, "held-out-test-takers") and held.held_out_test_takers is None
