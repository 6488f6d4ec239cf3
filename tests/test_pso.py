"""The swarm update of docs/method.md §5, checked against hand-worked numbers."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dataswarms_core.errors import InvalidParticleError, InvalidUtilityError
from dataswarms_core.pso import (
    PSOConfig,
    continue_swarm,
    draw_weights,
    init_swarm,
    load_swarm_state,
    save_swarm_state,
    update_swarm,
)
from dataswarms_core.pso import update as pso_update
from dataswarms_core.seeding import derive_seed
from dataswarms_core.storage import Store


def _pos(*values: float) -> dict[str, torch.Tensor]:
    return {"w": torch.tensor(values, dtype=torch.float64)}


def _vec(state, role: str, i: int) -> list[float]:
    return getattr(state, role)[i]["w"].tolist()


def test_two_updates_without_randomness_match_hand_computation():
    """Coefficients φ = (0.4, 0.2, 0.2, 0.2) sum to 1, so a = φ. λ₀ = 1, factor 0.5.

    Start: x0=(1,0) x1=(0,2) x2=(4,4); v0=(1,1) v1=(0,0) v2=(-2,0).
    Update 1, u=(0.5, 0.9, 0.1): p_i = x_i, g = x1 = (0,2), w = x2 = (4,4).
      v0 = .4(1,1) + .2(0) + .2((0,2)-(1,0)) + .2((1,0)-(4,4)) = (.4,.4)+(-.2,.4)+(-.6,-.8) = (-.4, 0)
      x0 = (1,0) + 1·(-.4,0) = (.6, 0)
      v1 = .2((0,2)-(4,4)) = (-.8,-.4);            x1 = (-.8, 1.6)
      v2 = .4(-2,0) + .2((0,2)-(4,4)) = (-1.6,-.4); x2 = (2.4, 3.6)
      λ → .5
    Update 2, u=(0.7, 0.3, 0.05): p0 = (.6,0) (improved), p1 = (0,2), p2 = (4,4); g stays (0,2) (0.7 < 0.9);
    w = x2 = (2.4,3.6) (0.05 < 0.1).
      v0 = .4(-.4,0) + 0 + .2((0,2)-(.6,0)) + .2((.6,0)-(2.4,3.6)) = (-.64,-.32); x0 = (.6,0)+.5v0 = (.28,-.16)
      v1 = .4(-.8,-.4) + .2(.8,.4) + .2(.8,.4) + .2((-.8,1.6)-(2.4,3.6)) = (-.64,-.4); x1 = (-1.12, 1.4)
      v2 = .4(-1.6,-.4) + .2((4,4)-(2.4,3.6)) + .2((0,2)-(2.4,3.6)) + 0 = (-.8,-.4); x2 = (2.0, 3.4)
      λ → max(.25, .1) = .25
    """
    cfg = PSOConfig(
        inertia=0.4, cognitive=0.2, social=0.2, repel=0.2, weight_randomness=False, initial_velocity="zero",
        step_length=1.0, step_length_factor=0.5, min_step_length=0.1, restart_patience=None,
    )  # fmt: skip
    state = init_swarm([_pos(1, 0), _pos(0, 2), _pos(4, 4)], cfg, seed=0)
    state.velocities = [_pos(1, 1), _pos(0, 0), _pos(-2, 0)]

    r1 = update_swarm(state, [0.5, 0.9, 0.1], cfg)
    assert r1.weights == [pytest.approx((0.4, 0.2, 0.2, 0.2))] * 3
    assert r1.step_length == 1.0
    assert _vec(state, "velocities", 0) == pytest.approx([-0.4, 0.0])
    assert _vec(state, "positions", 0) == pytest.approx([0.6, 0.0])
    assert _vec(state, "positions", 1) == pytest.approx([-0.8, 1.6])
    assert _vec(state, "positions", 2) == pytest.approx([2.4, 3.6])
    assert state.global_best["w"].tolist() == [0.0, 2.0]
    assert state.global_worst["w"].tolist() == [4.0, 4.0]
    assert state.step_length == 0.5

    r2 = update_swarm(state, [0.7, 0.3, 0.05], cfg)
    assert r2.personal_best_improved == [True, False, False]
    assert not r2.global_best_improved and r2.global_worst_changed
    assert _vec(state, "personal_best", 0) == pytest.approx([0.6, 0.0])
    assert _vec(state, "velocities", 0) == pytest.approx([-0.64, -0.32])
    assert _vec(state, "velocities", 1) == pytest.approx([-0.64, -0.4])
    assert _vec(state, "velocities", 2) == pytest.approx([-0.8, -0.4])
    assert _vec(state, "positions", 0) == pytest.approx([0.28, -0.16])
    assert _vec(state, "positions", 1) == pytest.approx([-1.12, 1.4])
    assert _vec(state, "positions", 2) == pytest.approx([2.0, 3.4])
    assert state.global_best_utility == 0.9 and state.global_worst_utility == 0.05
    assert state.step_length == 0.25
    assert state.step_length_history == [1.0, 0.5]


def test_randomised_update_matches_recomputation_from_drawn_factors():
    cfg = PSOConfig(restart_patience=None)  # authors' defaults, randomness on, random initial velocity
    xs = [
        {"a": torch.randn(3, 2, generator=torch.Generator().manual_seed(i)), "b": torch.randn(4)}
        for i in range(3)
    ]
    state = init_swarm(xs, cfg, seed=11)
    before = copy.deepcopy(state)
    report = update_swarm(state, [0.2, 0.6, 0.4], cfg)

    gen = torch.Generator().manual_seed(derive_seed(11, "pso", 0))
    r = torch.rand(3, 4, generator=gen, dtype=torch.float64)
    a = r * torch.tensor([0.4, 0.3, 0.3, 0.3], dtype=torch.float64)
    a = a / a.sum(dim=1, keepdim=True)
    assert torch.allclose(torch.tensor(report.weights, dtype=torch.float64), a)
    g, w = before.positions[1], before.positions[0]  # argmax / argmin of the utilities
    for i in range(3):
        av, ap, ag, aw = a[i].tolist()
        for k in ("a", "b"):
            x, v = before.positions[i][k], before.velocities[i][k]
            v_new = av * v + ap * (x - x) + ag * (g[k] - x) + aw * (x - w[k])
            assert torch.allclose(state.velocities[i][k], v_new, atol=1e-5)
            assert torch.allclose(state.positions[i][k], x + 1.0 * v_new, atol=1e-5)
            assert state.positions[i][k].dtype == torch.float32  # the adapters' dtype is kept


def test_random_initial_velocity_points_to_another_particle():
    xs = [_pos(float(i), 0.0) for i in range(4)]
    state = init_swarm(xs, PSOConfig(), seed=3)
    for i in range(4):
        target = [
            x + v for x, v in zip(_vec(state, "positions", i), _vec(state, "velocities", i), strict=True)
        ]
        assert target in [[float(j), 0.0] for j in range(4) if j != i]
    zero = init_swarm(xs, PSOConfig(initial_velocity="zero"), seed=3)
    assert all(v["w"].abs().sum() == 0 for v in zero.velocities)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_step_length_decays_once_per_iteration_whatever_the_swarm_size(n: int):
    cfg = PSOConfig(
        step_length=0.9, step_length_factor=0.8, min_step_length=0.3, restart_patience=None, patience=100
    )
    state = init_swarm([_pos(float(i), 1.0) for i in range(n)], cfg, seed=0)
    for k in range(1, 8):
        update_swarm(state, [float(k + i) for i in range(n)], cfg)
        assert state.step_length == pytest.approx(max(0.9 * 0.8**k, 0.3), rel=1e-12)
    assert state.step_length_history[:3] == pytest.approx([0.9, 0.72, 0.576])


def test_restart_fires_after_patience_then_cools_down():
    """restart_patience 2, cool-down 3. Particle 0's best is set at iteration 0 and never improves:
    stale = 1, 2 after iterations 1, 2 → restart at 2; cool-down blocks 3, 4, 5; fires again at 6."""
    cfg = PSOConfig(restart_patience=2, restart_cooldown=3, patience=100, weight_randomness=False)
    state = init_swarm([_pos(1.0, 1.0), _pos(3.0, -1.0)], cfg, seed=0)
    p0 = state.positions[0]["w"].clone()
    for k in range(8):
        report = update_swarm(state, [1.0 if k == 0 else 0.5, float(k)], cfg)
        if k == 2:
            assert report.restarted == [0]
            assert torch.equal(state.positions[0]["w"], p0)  # back at its personal best
            assert state.velocities[0]["w"].abs().sum() == 0
    assert state.restart_history == [[], [], [0], [], [], [], [0], []]


def test_stops_after_patience_iterations_without_global_best_improvement():
    cfg = PSOConfig(patience=3, restart_patience=None)
    state = init_swarm([_pos(0.0, 1.0), _pos(1.0, 0.0)], cfg, seed=0)
    reports = [update_swarm(state, [0.9, 0.1], cfg)]
    while not reports[-1].stopped:
        reports.append(update_swarm(state, [0.5, 0.5], cfg))
    assert [r.stopped for r in reports] == [None, None, None, "patience"]
    assert reports[-1].step_length is None  # no move on the stopping iteration
    with pytest.raises(RuntimeError, match="already stopped"):
        update_swarm(state, [0.1, 0.1], cfg)


def test_stops_at_max_iterations():
    cfg = PSOConfig(max_iterations=2)
    state = init_swarm([_pos(0.0, 1.0), _pos(1.0, 0.0)], cfg, seed=0)
    assert update_swarm(state, [0.1, 0.2], cfg).stopped is None
    assert update_swarm(state, [0.3, 0.4], cfg).stopped == "max_iterations"
    assert state.iteration == 2


def test_continue_swarm_keeps_where_particles_stand_and_forgets_what_was_measured():
    cfg = PSOConfig(max_iterations=2, step_length_factor=0.5)
    state = init_swarm([_pos(0.0, 1.0), _pos(1.0, 0.0)], cfg, seed=0)
    update_swarm(state, [0.1, 0.2], cfg)
    update_swarm(state, [0.3, 0.4], cfg)
    assert state.stopped == "max_iterations"
    new = continue_swarm(state, seed=99, metadata={"continued_from": {"run": "r1"}})
    assert [_vec(new, "positions", i) for i in range(2)] == [_vec(state, "positions", i) for i in range(2)]
    assert [_vec(new, "velocities", i) for i in range(2)] == [_vec(state, "velocities", i) for i in range(2)]
    assert [_vec(new, "personal_best", i) for i in range(2)] == [_vec(state, "positions", i) for i in range(2)]
    assert new.step_length == state.step_length == 0.5  # one move at 1.0, then 1.0 × 0.5
    assert (new.iteration, new.stopped, new.seed, new.global_best, new.global_best_utility) == (0, None, 99, None, None)
    assert new.personal_best_utility == [None, None] and new.utility_history == [[], []]
    assert new.metadata["continued_from"] == {"run": "r1"} and new.names == state.names
    new.positions[0]["w"] += 1.0  # a copy: the previous search's state is untouched
    assert _vec(state, "positions", 0) != _vec(new, "positions", 0)
    assert update_swarm(new, [0.5, 0.6], cfg).stopped is None  # the continued swarm moves again


def _run(state, cfg, utilities):
    for u in utilities:
        update_swarm(state, u, cfg)
    return state


def _assert_same_state(a, b):
    for role in ("positions", "velocities", "personal_best"):
        for pa, pb in zip(getattr(a, role), getattr(b, role), strict=True):
            assert all(torch.equal(pa[k], pb[k]) for k in pa)
    for role in ("global_best", "global_worst"):
        assert all(torch.equal(getattr(a, role)[k], getattr(b, role)[k]) for k in getattr(a, role))
    for name in ("utility_history", "personal_best_utility", "stale", "cooldown", "step_length", "iteration",
                 "step_length_history", "restart_history", "global_best_utility", "global_worst_utility"):  # fmt: skip
        assert getattr(a, name) == getattr(b, name), name


def test_save_load_continue_is_bit_identical(tmp_path):
    cfg = PSOConfig(restart_patience=2, patience=50)
    xs = [
        {"lora_A": torch.randn(2, 5, generator=torch.Generator().manual_seed(i)), "lora_B": torch.randn(5, 2)}
        for i in range(3)
    ]
    utilities = [
        [0.1, 0.5, 0.3],
        [0.2, 0.4, 0.35],
        [0.15, 0.45, 0.2],
        [0.3, 0.1, 0.25],
        [0.05, 0.6, 0.3],
        [0.2, 0.2, 0.2],
    ]
    straight = _run(init_swarm(xs, cfg, seed=5), cfg, utilities)

    half = _run(init_swarm(xs, cfg, seed=5), cfg, utilities[:3])
    store = Store(str(tmp_path / "ckpt"))
    save_swarm_state(half, store, "swarm/iter_0003")
    resumed = _run(load_swarm_state(store, "swarm/iter_0003"), cfg, utilities[3:])
    _assert_same_state(straight, resumed)


def test_invalid_utilities_and_particles_are_refused_with_names():
    cfg = PSOConfig()
    state = init_swarm([_pos(0.0, 1.0), _pos(1.0, 0.0)], cfg, seed=0, names=["alpha", "beta"])
    with pytest.raises(InvalidUtilityError, match="particle beta: utility is nan"):
        update_swarm(state, [0.1, float("nan")], cfg)
    with pytest.raises(InvalidUtilityError, match="particle alpha: utility is missing"):
        update_swarm(state, [None, 0.1], cfg)
    with pytest.raises(InvalidUtilityError, match="got 1 utilities for 2"):
        update_swarm(state, [0.1], cfg)
    assert state.iteration == 0 and state.utility_history == [[], []]  # nothing recorded
    with pytest.raises(InvalidParticleError, match="tensor keys differ"):
        init_swarm([{"a": torch.zeros(2)}, {"b": torch.zeros(2)}], cfg, seed=0)
    with pytest.raises(InvalidParticleError, match=r"tensor a has shape \(3,\)"):
        init_swarm([{"a": torch.zeros(2)}, {"a": torch.zeros(3)}], cfg, seed=0)


def test_position_that_overflows_names_the_tensor():
    cfg = PSOConfig(weight_randomness=False, initial_velocity="zero", restart_patience=None)
    state = init_swarm([{"lora_B": torch.tensor([3e38])}, {"lora_B": torch.tensor([-3e38])}], cfg, seed=0)
    with pytest.raises(InvalidParticleError, match="tensor lora_B became NaN/inf"):
        update_swarm(state, [0.9, 0.1], cfg)


def test_config_rejects_all_zero_coefficients():
    with pytest.raises(ValueError, match="must be > 0"):
        PSOConfig(inertia=0, cognitive=0, social=0, repel=0)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=6),
    utility=st.floats(-1e6, 1e6, allow_nan=False),
    seed=st.integers(0, 2**31),
    randomness=st.booleans(),
)
def test_lone_particle_at_its_bests_with_zero_velocity_does_not_move(values, utility, seed, randomness):
    cfg = PSOConfig(initial_velocity="zero", weight_randomness=randomness)
    x = {"w": torch.tensor(values, dtype=torch.float64)}
    state = init_swarm([x], cfg, seed=seed)
    update_swarm(state, [utility], cfg)
    assert torch.equal(state.positions[0]["w"], x["w"])


@settings(max_examples=60, deadline=None)
@given(
    phi=st.tuples(*[st.floats(0, 5)] * 4).filter(lambda p: sum(p[:3]) > 1e-6),
    randomness=st.booleans(),
    repel=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_weights_always_sum_to_one(phi, randomness, repel, seed):
    cfg = PSOConfig(
        inertia=phi[0],
        cognitive=phi[1],
        social=phi[2],
        repel=phi[3],
        weight_randomness=randomness,
        repel_term=repel,
    )
    a = draw_weights(cfg, torch.Generator().manual_seed(seed), 7)
    assert torch.allclose(a.sum(dim=1), torch.ones(7, dtype=torch.float64))
    assert bool((a >= 0).all())
    if not repel:
        assert bool((a[:, 3] == 0).all())


def test_update_without_repel_term():
    """repel_term off: φ = (0.4, 0.2, 0.2, 0.2) gives a = (0.4, 0.2, 0.2, 0)/0.8 = (0.5, 0.25, 0.25, 0).
    x0=(1,0), v0=(1,1), g=x1=(0,2):  v0 = .5(1,1) + .25((0,2)-(1,0)) = (.25, 1);  x0 = (1.25, 1).
    x2=(4,4), v2=(-2,0):             v2 = .5(-2,0) + .25((0,2)-(4,4)) = (-2,-.5); x2 = (2, 3.5)."""
    cfg = PSOConfig(
        inertia=0.4, cognitive=0.2, social=0.2, repel=0.2, repel_term=False, weight_randomness=False,
        initial_velocity="zero", restart_patience=None,
    )  # fmt: skip
    state = init_swarm([_pos(1, 0), _pos(0, 2), _pos(4, 4)], cfg, seed=0)
    state.velocities = [_pos(1, 1), _pos(0, 0), _pos(-2, 0)]
    report = update_swarm(state, [0.5, 0.9, 0.1], cfg)
    assert report.weights == [pytest.approx((0.5, 0.25, 0.25, 0.0))] * 3
    assert _vec(state, "positions", 0) == pytest.approx([1.25, 1.0])
    assert _vec(state, "positions", 1) == pytest.approx([0.0, 2.0])  # at its personal and global best
    assert _vec(state, "positions", 2) == pytest.approx([2.0, 3.5])


def test_swarm_checkpoint_on_s3(s3_bucket):
    """The whole state goes through fsspec: written to and read back from S3 (moto server)."""
    _, options = s3_bucket
    cfg = PSOConfig()
    state = _run(init_swarm([_pos(1, 2), _pos(3, 4)], cfg, seed=9), cfg, [[0.1, 0.2], [0.3, 0.05]])
    store = Store("s3://dataswarms-test/run", options)
    save_swarm_state(state, store, "swarm/iter_0002")
    assert store.list("swarm/iter_0002") == ["state.json", "tensors.safetensors"]
    _assert_same_state(state, load_swarm_state(store, "swarm/iter_0002"))


def _move_reference(x, v, p, g, w, a, step):
    """The move as written before it was blocked: one foreach op per term over the whole tensors of all keys,
    each difference formed first (lists of tensors; returns new lists). In bfloat16 a foreach op with a scalar
    rounds differently from ``Tensor.mul``, so the reference keeps the foreach ops."""
    a_v, a_p, a_g, a_w = a
    x, v = [t.clone() for t in x], [t.clone() for t in v]
    torch._foreach_mul_(v, a_v)
    torch._foreach_add_(v, torch._foreach_sub(p, x), alpha=a_p)
    torch._foreach_add_(v, torch._foreach_sub(g, x), alpha=a_g)
    if a_w:
        torch._foreach_add_(v, torch._foreach_sub(x, w), alpha=a_w)
    torch._foreach_add_(x, v, alpha=step)
    return x, v


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("block", [None, 1000])  # None: the module's block size; 1000 cuts every tensor
@pytest.mark.parametrize("a_w", [0.2, 0.0])
def test_move_is_bit_identical_to_the_whole_tensor_formula(dtype, block, a_w, monkeypatch):
    """The blocked move (cache-sized pieces, small tensors grouped) gives exactly the whole-tensor result:
    tensors smaller and larger than a block (with a ragged end), a non-contiguous one, and a key at its
    personal best (the cognitive term is exactly zero)."""
    if block is not None:
        monkeypatch.setattr(pso_update, "_MOVE_BLOCK", block)
    gen = torch.Generator().manual_seed(7)
    shapes = {"a": (3,), "b": (8, 576), "c": (576, 8), "d": (pso_update._MOVE_BLOCK * 2 + 37,), "e": (5, 7)}

    def point() -> dict[str, torch.Tensor]:
        out = {k: torch.randn(s, generator=gen).to(dtype) for k, s in shapes.items()}
        out["t"] = torch.randn(700, 300, generator=gen).to(dtype).t()  # non-contiguous, > 1000 values
        return out

    cfg = PSOConfig(restart_patience=None)
    state = init_swarm([point()], cfg, seed=0)
    state.velocities = [point()]
    state.personal_best = [point()]
    state.personal_best[0]["c"] = state.positions[0]["c"].clone()
    state.global_best, state.global_worst = point(), point()
    before = copy.deepcopy(state)
    keys = list(before.positions[0])
    roles = (
        state.positions[0],
        state.velocities[0],
        state.personal_best[0],
        state.global_best,
        state.global_worst,
    )
    pieces = [
        piece for b in pso_update._move_blocks([tuple(r[k] for r in roles) for k in keys]) for piece in b
    ]
    cut = dtype == torch.float32  # only float32/float64 tensors are cut (contiguous ones larger than a block)
    assert len(pieces) > len(keys) if cut else len(pieces) == len(keys)
    a, step = (0.31, 0.27, 0.22, a_w), 0.7
    pso_update._move(state, 0, a, step)
    xs, vs = _move_reference(
        *([role[k] for k in keys] for role in (before.positions[0], before.velocities[0], before.personal_best[0])),
        *([role[k] for k in keys] for role in (before.global_best, before.global_worst)),
        a, step,
    )  # fmt: skip
    for k, x, v in zip(keys, xs, vs, strict=True):
        assert state.positions[0][k].dtype == dtype
        assert torch.equal(state.positions[0][k], x), k
        assert torch.equal(state.velocities[0][k], v), k
    assert not state.positions[0]["t"].is_contiguous()  # moved in place, strides kept


def test_overflow_in_a_late_block_of_a_large_tensor_names_that_tensor():
    n = pso_update._MOVE_BLOCK * 2 + 5
    big = torch.zeros(n)
    big[-1] = 3e38
    cfg = PSOConfig(weight_randomness=False, initial_velocity="zero", restart_patience=None)
    state = init_swarm(
        [{"a": torch.ones(4), "lora_B": big, "z": torch.ones(3)}, {"a": torch.ones(4), "lora_B": -big, "z": torch.ones(3)}],
        cfg, seed=0,
    )  # fmt: skip
    with pytest.raises(InvalidParticleError, match="tensor lora_B became NaN/inf"):
        update_swarm(state, [0.9, 0.1], cfg)
