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
- ``prompted``: the base model (LoRA B = 0) with the objective stated in the generation prompt
  (:func:`~dataswarms_core.objectives.goal`, e.g. "Make them harder than the examples ...").
- ``random``: random search; after iteration 0 (the seed generators) every particle jumps to a random
  convex combination of the seed generators plus a random step of the search's step length:
  ``x = Σ_j w_j s_j + λ_t (s_a − s_b)``, ``w ~ Dirichlet(1)``, ``a ≠ b`` drawn uniformly, λ_t decaying as
  in the search (``pso.step_length``, ``step_length_factor``, ``min_step_length``).
- ``cma-es``: nevergrad's CMA-ES over the mixing weights ``w ∈ R^m`` of the m seed generators
  (``x = Σ_j w_j s_j``), one generation of n = particles per iteration after iteration 0, started at
  ``w = 1/m`` with ``σ₀ = λ₀ √(2/m)`` (a random step's weight change ``λ(e_a − e_b)`` has norm ``λ√2``, an
  isotropic one of σ has expected squared norm ``mσ²``), maximising the recorded utilities.
"""

from __future__ import annotations

import math
import warnings
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
        move: ``(seeds, state, config) → n new positions`` after an iteration is recorded (``state.iteration``
            counts it already, ``state.step_length`` is λ_t); None: the particles stay where they are.
        pso: the particles move by :func:`~dataswarms_core.pso.update_swarm` (the method itself).
        states_goal: the generation prompt states the objective (:func:`~dataswarms_core.objectives.goal`).
    """

    initial: Callable[[list[Position]], list[Position]]
    move: Callable[[list[Position], SwarmState, PSOConfig], list[Position]] | None = None
    pso: bool = False
    states_goal: bool = False


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


def mix(seeds: list[Position], weights: Sequence[float], step: float = 0.0, a: int = 0, b: int = 0) -> Position:
    """``Σ_j w_j s_j + step · (s_a − s_b)``, computed in float64 and returned in the seeds' dtype.

    Args:
        seeds: the seed generators' positions (equal keys and shapes).
        weights: one real weight per seed (any sign; not normalised here).
    """
    point = {}
    for key, ref in seeds[0].items():
        x = sum(wj * s[key].double() for wj, s in zip(weights, seeds, strict=True))
        if step:
            x = x + step * (seeds[a][key].double() - seeds[b][key].double())
        point[key] = x.to(ref.dtype)
    return point


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
        out.append(mix(seeds, w, step, a, b))
    return out


def _random_move(seeds: list[Position], state: SwarmState, config: PSOConfig) -> list[Position]:
    it = state.iteration - 1  # the iteration just recorded
    gen = torch.Generator().manual_seed(derive_seed(state.seed, *swarm_stream(state.swarm, "random"), it))
    return random_points(seeds, state.n_particles, gen, state.step_length)


def cma_es_weights(
    m: int, n: int, told: Sequence[Sequence[float]], sigma: float, seed: int
) -> list[list[float]]:
    """The next CMA-ES generation of mixing weights (nevergrad ``ParametrizedCMA``, population n), after
    replaying the earlier generations: generation k (0-based) is asked, then told ``told[k]`` (the n
    utilities its points got, maximised). The optimiser's random state is ``seed``, so a replay asks the same
    points again: the swarm state needs no optimiser state to resume.

    Args:
        m: number of seed generators (the dimension), ≥ 1.
        n: population size (particles), ≥ 2.
        told: per earlier generation, n finite utilities.
        sigma: σ₀ of the search distribution, > 0, in weight units.
        seed: random state (reduced modulo 2³²).

    Returns:
        n weight vectors of length m.

    Raises:
        ValueError: a generation with other than n utilities.
    """
    import cma
    import nevergrad as ng
    import numpy as np

    for k, utilities in enumerate(told):
        if len(utilities) != n:
            raise ValueError(f"cma-es: generation {k} has {len(utilities)} utilities, expected {n}")
    param = ng.p.Array(init=np.full(m, 1.0 / m)).set_mutation(sigma=sigma)
    param.random_state = np.random.RandomState(seed % 2**32)
    optimizer = ng.optimizers.ParametrizedCMA(popsize=n)(parametrization=param, budget=None, num_workers=n)
    with warnings.catch_warnings():
        # nevergrad hands cma its own copies of the asked points, which cma reports as "orphaned injected
        # solutions"; the update is the same (tests/test_baselines.py checks replay against a live run)
        warnings.simplefilter("ignore", cma.evolution_strategy.InjectionWarning)
        for utilities in told:
            asked = [optimizer.ask() for _ in range(n)]
            for candidate, u in zip(asked, utilities, strict=True):
                optimizer.tell(candidate, -float(u))  # nevergrad minimises
        return [[float(v) for v in optimizer.ask().value] for _ in range(n)]


def _cma_es_move(seeds: list[Position], state: SwarmState, config: PSOConfig) -> list[Position]:
    m, n, it = len(seeds), state.n_particles, state.iteration
    if any(len(h) != it for h in state.utility_history):
        raise ValueError(
            "search 'cma-es' replays its generations from the swarm's own utility history, which does not start "
            "at this run's iteration 0 (a continued swarm); use another search strategy"
        )
    told = [[state.utility_history[i][k] for i in range(n)] for k in range(1, it)]  # iteration 0: the seeds
    sigma = config.step_length * math.sqrt(2.0 / m)
    seed = derive_seed(state.seed, *swarm_stream(state.swarm, "cma-es"))
    return [mix(seeds, w) for w in cma_es_weights(m, n, told, sigma, seed)]


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
    "prompted", source="docs/method.md §9",
    summary="the base model (LoRA B = 0) asked in the generation prompt for what the objective rewards",
)(Strategy(initial=_zero_b, states_goal=True))  # fmt: skip
SEARCHES.register(
    "random", source="docs/method.md §9",
    summary="random search: random convex combinations of the seed generators plus a step of the search's step length",
)(Strategy(initial=_same, move=_random_move))  # fmt: skip
SEARCHES.register(
    "cma-es", source="docs/method.md §9",
    summary="nevergrad's CMA-ES over the mixing weights of the seed generators, one generation per iteration",
)(Strategy(initial=_same, move=_cma_es_move))  # fmt: skip


def update_baseline(
    state: SwarmState,
    utilities: Sequence[float | None],
    config: PSOConfig,
    strategy: str,
    seeds: list[Position],
) -> UpdateReport:
    """Record an iteration's utilities and place the particles for the next one by ``strategy`` (not ``pso``).

    Records as :func:`~dataswarms_core.pso.update_swarm` does (personal and global bests and worst, stopping
    on ``patience`` and ``max_iterations``); then a staying strategy keeps the positions, ``random`` draws
    new ones from the stream ``derive_seed(state.seed, *swarm_stream(swarm, "random"), t)`` and ``cma-es`` asks
    its next generation (stream ``derive_seed(state.seed, *swarm_stream(swarm, "cma-es"))``). The step length
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
    step = state.step_length
    if entry.move is not None:
        new = entry.move(seeds, state, config)
        state.velocities = [
            {k: x[k] - old[k] for k in x} for x, old in zip(new, state.positions, strict=True)
        ]
        state.positions = new
    report.step_length = step
    state.step_length_history.append(step)
    state.restart_history.append([])
    state.step_length = max(step * config.step_length_factor, config.min_step_length)
    return report
