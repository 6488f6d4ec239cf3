"""Search strategies (``search``): the particle swarm search and the baselines it is compared with at equal
budget (docs/method.md §9).

A baseline runs the same loop as the search (the same generators' count, calls per generator and iteration,
test takers, judge, objective and iterations) and differs only in where the particles stand at the next
iteration. So every strategy makes the same number of generator calls (``G × calls_per_generator`` per
iteration); test-taker answers and judge calls follow the items each strategy's generators write, and the
run records them (``summary.json``: ``budget``). The global best is kept the same way for every strategy:
the best utility measured, and its generator exported.

- ``pso``: the method (docs/method.md §5).
- ``seed-best``: no search; the seed generators are sampled again every iteration.
- ``base-model``: the base model with the same few-shot generation prompt (every particle's LoRA B factors
  are zero, so the adapter adds exactly nothing).
- ``random``: random search; after iteration 0 (the seed generators) every particle jumps to a random
  convex combination of the seed generators plus a random step of the search's step length:
  ``x = Σ_j w_j s_j + λ_t (s_a − s_b)``, ``w ~ Dirichlet(1)``, ``a ≠ b`` drawn uniformly, λ_t decaying as
  in the search (``pso.step_length``, ``step_length_factor``, ``min_step_length``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .pso import PSOConfig, SwarmState
from .pso.state import Position
from .pso.update import UpdateReport, record_iteration
from .registry import Registry
from .seeding import derive_seed, swarm_stream


@dataclass(frozen=True)
class Strategy:
    """How a strategy places its particles.

    Attributes:
        initial: the iteration-0 positions from the seed generators' (list of n tensor dicts → n).
        move: ``(seeds, n, generator, step_length) → n new positions`` after an iteration; None: the
            particles stay where they are.
        pso: the particles move by :func:`~dataswarms_core.pso.update_swarm` (the method itself).
    """

    initial: Callable[[list[Position]], list[Position]]
    move: Callable[[list[Position], int, torch.Generator, float], list[Position]] | None = None
    pso: bool = False


SEARCHES: Registry[Strategy] = Registry("search strategy")
"""The search strategies by name (``search`` in the configuration)."""


def _same(positions: list[Position]) -> list[Position]:
    return list(positions)  # init_swarm clones them


def _zero_b(positions: list[Position]) -> list[Position]:
    """Every ``lora_B`` factor set to 0: the LoRA update B·A is 0, the model is the base model."""
    return [
        {k: torch.zeros_like(t) if "lora_B" in k else t.detach().clone() for k, t in p.items()}
        for p in positions
    ]


def random_points(seeds: list[Position], n: int, gen: torch.Generator, step: float) -> list[Position]:
    """n random points ``Σ_j w_j s_j + step · (s_a − s_b)`` (module docstring), drawn from ``gen`` in particle
    order: for each particle, the Dirichlet(1) weights (normalised Exp(1) draws, ``len(seeds)`` of them), then
    ``a`` and ``b``.

    Args:
        seeds: the seed generators' positions s_j (at least 2, equal keys and shapes).
        n: how many points.
        gen: the random stream.
        step: λ_t.

    Returns:
        n tensor dicts in the seeds' dtype.
    """
    m = len(seeds)
    if m < 2:
        raise ValueError(f"random search needs at least 2 seed generators, got {m}")
    out = []
    for _ in range(n):
        e = -torch.log(
            torch.rand(m, generator=gen, dtype=torch.float64)
        )  # Exp(1): Dirichlet(1) once normalised
        w = (e / e.sum()).tolist()
        a = int(torch.randint(0, m, (1,), generator=gen))
        b = int(torch.randint(0, m - 1, (1,), generator=gen))
        b = b + 1 if b >= a else b  # uniform over the other seeds
        point = {}
        for key, ref in seeds[0].items():
            mix = sum(wj * s[key].double() for wj, s in zip(w, seeds, strict=True))
            point[key] = (mix + step * (seeds[a][key].double() - seeds[b][key].double())).to(ref.dtype)
        out.append(point)
    return out


SEARCHES.register(
    "pso", source="docs/method.md §5", summary="particle swarm optimisation of the generators (the method)"
)(Strategy(initial=_same, pso=True))
SEARCHES.register(
    "seed-best",
    source="docs/method.md §9",
    summary="no search: the seed generators sampled again every iteration",
)(Strategy(initial=_same))
SEARCHES.register(
    "base-model", source="docs/method.md §9",
    summary="the base model with the same few-shot prompt (LoRA B = 0: no adapter effect)",
)(Strategy(initial=_zero_b))  # fmt: skip
SEARCHES.register(
    "random", source="docs/method.md §9",
    summary="random search: random convex combinations of the seed generators plus a step of the search's step length",
)(Strategy(initial=_same, move=random_points))  # fmt: skip


def update_baseline(
    state: SwarmState,
    utilities: Sequence[float | None],
    config: PSOConfig,
    strategy: str,
    seeds: list[Position],
) -> UpdateReport:
    """Record an iteration's utilities and place the particles for the next one by ``strategy`` (not ``pso``).

    Records as :func:`~dataswarms_core.pso.update_swarm` does (personal and global bests and worst, stopping
    on ``patience`` and ``max_iterations``); then a staying strategy keeps the positions and ``random`` draws
    new ones from the stream ``derive_seed(state.seed, *swarm_stream(swarm, "random"), t)``. The step length
    decays as in the search; velocities record the displacement.

    Raises:
        InvalidUtilityError: a utility is missing, NaN or infinite (nothing is modified).
        ValueError: ``strategy`` is ``pso`` (use update_swarm) or unknown.
    """
    entry = SEARCHES.get(strategy).impl
    if entry.pso:
        raise ValueError(f"search {strategy!r} moves by the particle swarm update, not update_baseline")
    report = record_iteration(state, utilities, config)
    if report.stopped:
        return report
    it = report.iteration
    step = state.step_length
    if entry.move is not None:
        gen = torch.Generator().manual_seed(derive_seed(state.seed, *swarm_stream(state.swarm, strategy), it))
        new = entry.move(seeds, state.n_particles, gen, step)
        state.velocities = [
            {k: x[k] - old[k] for k in x} for x, old in zip(new, state.positions, strict=True)
        ]
        state.positions = new
    report.step_length = step
    state.step_length_history.append(step)
    state.restart_history.append([])
    state.step_length = max(step * config.step_length_factor, config.min_step_length)
    return report
