"""One PSO iteration over a swarm of adapters (docs/method.md §5; Model Swarms, arXiv 2410.11163, Eq. 1–2).

Two deliberate departures from the authors' public code (docs/method.md "Known pitfalls"): the step length decays
once per iteration, after the whole swarm has moved (not once per particle), and ``restart_patience`` is a
whole number of iterations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..errors import InvalidParticleError, InvalidUtilityError
from ..seeding import derive_seed, swarm_stream
from .config import PSOConfig
from .state import Position, SwarmState


@dataclass
class UpdateReport:
    """What one call of :func:`update_swarm` did.

    Attributes:
        iteration: index of the iteration whose utilities were recorded (0-based).
        utilities: the recorded utilities, length n.
        personal_best_improved: per particle, whether p_i changed.
        global_best_improved / global_worst_changed: whether g / w changed.
        step_length: λ used for the move (None when the swarm stopped instead of moving).
        weights: per particle, the normalised (a_v, a_p, a_g, a_w); empty when no move happened.
        restarted: indices of particles sent back to their personal best.
        stopped: None, ``"patience"`` or ``"max_iterations"``.
    """

    iteration: int
    utilities: list[float]
    personal_best_improved: list[bool]
    global_best_improved: bool
    global_worst_changed: bool
    step_length: float | None
    weights: list[tuple[float, float, float, float]] = field(default_factory=list)
    restarted: list[int] = field(default_factory=list)
    stopped: str | None = None


def _clone(position: Position) -> Position:
    return {k: t.detach().clone() for k, t in position.items()}


def check_utilities(utilities: Sequence[float | None], names: Sequence[str]) -> list[float]:
    """Return ``utilities`` as floats.

    Raises:
        InvalidUtilityError: wrong count, or a utility that is None, NaN or infinite (naming the particle).
    """
    if len(utilities) != len(names):
        raise InvalidUtilityError(
            f"swarm: got {len(utilities)} utilities for {len(names)} particles {list(names)}"
        )
    out = []
    for name, u in zip(names, utilities, strict=True):
        if u is None:
            raise InvalidUtilityError(f"particle {name}: utility is missing")
        u = float(u)
        if not math.isfinite(u):
            raise InvalidUtilityError(f"particle {name}: utility is {u}, expected a finite number")
        out.append(u)
    return out


def draw_weights(config: PSOConfig, generator: torch.Generator, n: int) -> torch.Tensor:
    """Draw and normalise the four coefficients of each particle (docs/method.md §5, step 3).

    Four U(0,1) numbers are drawn per particle in particle order even when ``weight_randomness`` is off
    (then replaced by 1), so the random stream does not depend on the settings.

    Returns:
        float64 tensor (n, 4) of (a_v, a_p, a_g, a_w), each row summing to 1.
    """
    r = torch.rand(n, 4, generator=generator, dtype=torch.float64)  # (n, 4): r_v, r_p, r_g, r_w
    if not config.weight_randomness:
        r = torch.ones_like(r)
    phi = torch.tensor(
        [config.inertia, config.cognitive, config.social, config.repel if config.repel_term else 0.0],
        dtype=torch.float64,
    )
    a = r * phi  # (n, 4)
    total = a.sum(dim=1, keepdim=True)
    if bool((total <= 0).any()):
        raise InvalidParticleError("pso: the drawn coefficients sum to 0; raise at least one coefficient")
    return a / total


# Values per block of the move: x, v, p, g, w and a difference of this many float32 values (3 MiB) stay in
# the caches while every term is applied, so memory is swept about once (benchmarks/bench_pso_move.py).
_MOVE_BLOCK = 131072
# Dtypes whose tensors may be cut into blocks: torch's CPU add-with-alpha rounds them the same in its vector
# and remainder loops (an FMA in both). In float16/bfloat16 the remainder loop rounds differently, so where a
# tensor is cut would change a few elements (as the thread count already does); such tensors stay whole.
_MOVE_SPLIT_DTYPES = (torch.float32, torch.float64)


def _move_blocks(tensors: Sequence[tuple[torch.Tensor, ...]]) -> list[list[tuple[torch.Tensor, ...]]]:
    """Group the (x, v, p, g, w) tuples of :func:`_move`, one per key, into cache-sized blocks, in order.

    Tuples of small tensors join the current block whole until it holds ``_MOVE_BLOCK`` values. A tuple of
    larger tensors that are contiguous, float32/float64 and on the CPU is cut into views of ``_MOVE_BLOCK``
    values of the flattened tensors (the same elements of all five); any other larger tuple is a block of
    its own, whole. Off the CPU everything is one block (the foreach ops over all keys).

    Returns:
        A list of blocks, each a list of (x, v, p, g, w) tuples.
    """
    if not tensors or tensors[0][0].device.type != "cpu":
        return [list(tensors)]
    block = _MOVE_BLOCK
    blocks: list[list[tuple[torch.Tensor, ...]]] = []
    current: list[tuple[torch.Tensor, ...]] = []
    size = 0
    for ts in tensors:
        n = ts[0].numel()
        pieces = [ts]
        if n > block and ts[0].dtype in _MOVE_SPLIT_DTYPES and all(t.is_contiguous() for t in ts):
            pieces = list(zip(*(t.view(-1).split(block) for t in ts), strict=True))
        for piece in pieces:
            m = piece[0].numel()
            if current and size + m > block:
                blocks.append(current)
                current, size = [], 0
            current.append(piece)
            size += m
    if current:
        blocks.append(current)
    return blocks


def _move(state: SwarmState, i: int, a: Sequence[float], step_length: float) -> None:
    """v_i ← a_v·v_i + a_p·(p_i − x_i) + a_g·(g − x_i) + a_w·(x_i − w);  x_i ← x_i + λ·v_i.

    In place, in the adapters' dtype, one fused foreach op per term. The differences are formed first, as
    the formula writes them, so a term whose two points coincide is exactly zero (an expanded form such as
    (a_w − a_p − a_g)·x would leave rounding residue). On the CPU the terms are applied block by block
    (:func:`_move_blocks`: cache-sized groups of tensors and pieces of large ones) rather than each over the
    whole particle, so x, v, p, g and w are read and x, v written about once from memory; each element goes
    through the same operations as over whole tensors, and tensors are cut only in dtypes where that gives
    the same bits (``_MOVE_SPLIT_DTYPES``), so the result is the whole-tensor one exactly.
    """
    a_v, a_p, a_g, a_w = (float(c) for c in a)
    keys = sorted(state.positions[i])
    tensors = [
        (
            state.positions[i][k],
            state.velocities[i][k],
            state.personal_best[i][k],
            state.global_best[k],  # type: ignore[index]
            state.global_worst[k],  # type: ignore[index]
        )
        for k in keys
    ]
    sums = []
    for block in _move_blocks(tensors):
        x, v, p, g, w = (list(column) for column in zip(*block, strict=True))
        torch._foreach_mul_(v, a_v)
        torch._foreach_add_(v, torch._foreach_sub(p, x), alpha=a_p)
        torch._foreach_add_(v, torch._foreach_sub(g, x), alpha=a_g)
        if a_w:
            torch._foreach_add_(v, torch._foreach_sub(x, w), alpha=a_w)
        torch._foreach_add_(x, v, alpha=step_length)
        # A sum is NaN/inf when any element is (one reduction per piece while it is in cache, no boolean
        # copy); only then is the exact per-element check run, to name the tensor.
        sums.extend(t.sum() for t in x)
    if not bool(torch.isfinite(torch.stack(sums)).all()):
        for k, (t, *_) in zip(keys, tensors, strict=True):
            if not bool(torch.isfinite(t).all()):
                raise InvalidParticleError(
                    f"particle {state.names[i]}: tensor {k} became NaN/inf after the update "
                    f"(step length {step_length}); lower pso.step_length or check the utilities"
                )


def record_utilities(state: SwarmState, utilities: Sequence[float]) -> tuple[list[bool], bool, bool]:
    """docs/method.md §5 step 1: record utilities, update personal bests, global best and global worst in place.

    Ties keep the incumbent (improvement means strictly greater; a new worst strictly smaller); among
    particles with equal utility the lowest index is the argmax/argmin.

    Returns:
        (personal_best_improved per particle, global_best_improved, global_worst_changed)
    """
    it = state.iteration
    improved = []
    for i, u in enumerate(utilities):
        state.utility_history[i].append(u)
        best = state.personal_best_utility[i]
        if best is None or u > best:
            state.personal_best[i] = _clone(state.positions[i])
            state.personal_best_utility[i] = u
            state.stale[i] = 0
            improved.append(True)
        else:
            state.stale[i] += 1
            improved.append(False)
    i_max = max(range(len(utilities)), key=lambda i: (utilities[i], -i))
    i_min = min(range(len(utilities)), key=lambda i: (utilities[i], i))
    g_improved = state.global_best_utility is None or utilities[i_max] > state.global_best_utility
    if g_improved:
        state.global_best = _clone(state.positions[i_max])
        state.global_best_utility = utilities[i_max]
        state.global_best_particle, state.global_best_iteration = i_max, it
        state.global_best_stale = 0
    else:
        state.global_best_stale += 1
    w_changed = state.global_worst_utility is None or utilities[i_min] < state.global_worst_utility
    if w_changed:
        state.global_worst = _clone(state.positions[i_min])
        state.global_worst_utility = utilities[i_min]
        state.global_worst_particle, state.global_worst_iteration = i_min, it
    return improved, g_improved, w_changed


def record_iteration(state: SwarmState, utilities: Sequence[float | None], config: PSOConfig) -> UpdateReport:
    """docs/method.md §5 steps 1–2, shared by every search strategy: record the iteration's utilities
    (:func:`record_utilities`), count the iteration, and stop on ``patience`` or ``max_iterations`` (a stopped
    swarm does not move: its restart history gets an empty entry).

    Returns:
        The :class:`UpdateReport` so far (``step_length`` None; ``stopped`` set when the swarm stopped).

    Raises:
        InvalidUtilityError: a utility is missing, NaN or infinite (nothing is modified).
        RuntimeError: the swarm has already stopped.
    """
    if state.stopped:
        raise RuntimeError(f"swarm: already stopped ({state.stopped}) at iteration {state.iteration}")
    values = check_utilities(utilities, state.names)
    it = state.iteration
    improved, g_improved, w_changed = record_utilities(state, values)
    state.iteration += 1
    report = UpdateReport(it, values, improved, g_improved, w_changed, step_length=None)
    if state.global_best_stale >= config.patience:
        state.stopped = "patience"
    elif state.iteration >= config.max_iterations:
        state.stopped = "max_iterations"
    if state.stopped:
        report.stopped = state.stopped
        state.restart_history.append([])
    return report


def update_swarm(state: SwarmState, utilities: Sequence[float | None], config: PSOConfig) -> UpdateReport:
    """Record this iteration's utilities and move the swarm, in place (docs/method.md §5 steps 1–4).

    1. Personal bests, global best and all-time global worst (:func:`record_utilities`).
    2. Stop when the global best has not improved for ``patience`` iterations or ``max_iterations``
       iterations are done; then nothing moves.
    3. Each particle either restarts (its personal best has not improved for ``restart_patience``
       iterations and it is not cooling down: x_i ← p_i, v_i ← 0, cool-down ``restart_cooldown``) or moves
       with the normalised weights of :func:`draw_weights` (random stream ``derive_seed(seed, *swarm_stream(swarm, "pso"), t)``, which is
       ``derive_seed(seed, "pso", t)`` for the generators).
    4. λ ← max(λ·step_length_factor, min_step_length), once per iteration.

    Args:
        state: the swarm, modified in place.
        utilities: one finite utility per particle, higher is better.
        config: PSO settings.

    Returns:
        An :class:`UpdateReport`.

    Raises:
        InvalidUtilityError: a utility is missing, NaN or infinite (nothing is modified).
        InvalidParticleError: a position became NaN/inf (naming the particle and tensor).
        RuntimeError: the swarm has already stopped.
    """
    report = record_iteration(state, utilities, config)
    if report.stopped:
        return report
    it = report.iteration
    gen = torch.Generator().manual_seed(derive_seed(state.seed, *swarm_stream(state.swarm, "pso"), it))
    weights = draw_weights(config, gen, state.n_particles)  # (n, 4)
    step = state.step_length
    for i in range(state.n_particles):
        can_restart = config.restart_patience is not None and state.cooldown[i] == 0
        if can_restart and state.stale[i] >= config.restart_patience:
            state.positions[i] = _clone(state.personal_best[i])
            state.velocities[i] = {k: torch.zeros_like(t) for k, t in state.positions[i].items()}
            state.cooldown[i] = config.restart_cooldown
            state.stale[i] = 0
            report.restarted.append(i)
            continue
        if state.cooldown[i] > 0:
            state.cooldown[i] -= 1
        _move(state, i, weights[i].tolist(), step)
    report.weights = [tuple(row) for row in weights.tolist()]
    report.step_length = step
    state.step_length_history.append(step)
    state.restart_history.append(list(report.restarted))
    state.step_length = max(step * config.step_length_factor, config.min_step_length)
    return report
