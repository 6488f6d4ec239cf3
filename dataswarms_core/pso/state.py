"""The swarm state (docs/method.md §5) and its checkpoint format.

A *position* is an adapter's tensor dict: PEFT state-dict keys (e.g.
``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight``) mapped to tensors; LoRA A
(``r × in_features``) and B (``out_features × r``) factors are separate keys and move separately, as the
authors do. All particles of one swarm share keys, shapes, dtype and LoRA configuration.

Checkpoint layout under a folder ``KEY`` of a :class:`~dataswarms_core.storage.Store`:
``KEY/tensors.safetensors`` (positions, velocities, personal/global best, global worst) is written first,
then ``KEY/state.json`` (everything else) last, so a folder with ``state.json`` is complete.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import FormatError, InvalidParticleError, StorageError
from ..seeding import GENERATOR_SWARM, derive_seed, swarm_stream
from ..storage import Store
from .config import PSOConfig

Position = dict[str, torch.Tensor]

STATE_FILE = "state.json"
TENSORS_FILE = "tensors.safetensors"
FORMAT_VERSION = 2  # 2: the state carries its swarm's name


@dataclass
class SwarmState:
    """Everything the swarm update needs, for n particles.

    Attributes:
        swarm: the swarm's name (``generators``, ``test_takers``); it labels the swarm's random streams
            (:func:`~dataswarms_core.seeding.swarm_stream`).
        names: particle names, length n (e.g. ``["g0", "g1", ...]``).
        positions: x_i, n tensor dicts with identical keys/shapes/dtype.
        velocities: v_i, same structure as positions.
        personal_best: p_i, same structure; p_i = x_i until the first utility is recorded.
        personal_best_utility: utility of p_i; None before the first record.
        utility_history: per particle, the utility recorded at each iteration.
        stale: per particle, consecutive iterations without a personal-best improvement.
        cooldown: per particle, iterations left during which no restart may fire.
        global_best, global_best_utility, global_best_particle, global_best_iteration: g and where it came from.
        global_worst, global_worst_utility, global_worst_particle, global_worst_iteration: w (all-time worst).
        global_best_stale: iterations since the global best last improved (for ``patience``).
        step_length: λ to use at the next move.
        step_length_history: λ used at each completed iteration's move.
        restart_history: per completed iteration, the indices of particles that restarted.
        iteration: number of completed updates (recorded utilities).
        seed: run seed; iteration t's random factors come from ``derive_seed(seed, *swarm_stream(swarm, "pso"), t)``
            (``derive_seed(seed, "pso", t)`` for the generators), so the RNG state is a function of (seed,
            swarm, iteration) and a resumed swarm draws what an uninterrupted one drew.
        stopped: None while running, else ``"patience"`` or ``"max_iterations"``.
        metadata: JSON-serialisable extras (e.g. the adapters' LoRA configuration).
    """

    names: list[str]
    positions: list[Position]
    velocities: list[Position]
    personal_best: list[Position]
    personal_best_utility: list[float | None]
    utility_history: list[list[float]]
    stale: list[int]
    cooldown: list[int]
    step_length: float
    seed: int
    global_best: Position | None = None
    global_best_utility: float | None = None
    global_best_particle: int | None = None
    global_best_iteration: int | None = None
    global_worst: Position | None = None
    global_worst_utility: float | None = None
    global_worst_particle: int | None = None
    global_worst_iteration: int | None = None
    global_best_stale: int = 0
    step_length_history: list[float] = field(default_factory=list)
    restart_history: list[list[int]] = field(default_factory=list)
    iteration: int = 0
    stopped: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    swarm: str = GENERATOR_SWARM

    @property
    def n_particles(self) -> int:
        """Number of particles n."""
        return len(self.positions)

    @property
    def keys(self) -> list[str]:
        """Tensor keys of every position, in a fixed (sorted) order."""
        return sorted(self.positions[0])


def _clone(position: Position) -> Position:
    return {k: t.detach().clone() for k, t in position.items()}


def validate_positions(positions: list[Position], names: list[str] | None = None) -> None:
    """Check that positions can be added key by key.

    Raises:
        InvalidParticleError: no particles; a particle with other keys than the first; a tensor with another
            shape or dtype; a non-floating tensor; a NaN/inf value. The message names particle and tensor.
    """
    if not positions:
        raise InvalidParticleError("swarm: at least one particle is needed, got none")
    names = names or [f"particle {i}" for i in range(len(positions))]
    ref = positions[0]
    for i, pos in enumerate(positions):
        if set(pos) != set(ref):
            missing = sorted(set(ref) - set(pos))[:3]
            extra = sorted(set(pos) - set(ref))[:3]
            raise InvalidParticleError(
                f"{names[i]}: tensor keys differ from {names[0]} (missing {missing}, unexpected {extra}); "
                "all adapters of a swarm need the same LoRA configuration"
            )
        for key, t in pos.items():
            if t.shape != ref[key].shape or t.dtype != ref[key].dtype:
                raise InvalidParticleError(
                    f"{names[i]}: tensor {key} has shape {tuple(t.shape)} {t.dtype}, expected "
                    f"{tuple(ref[key].shape)} {ref[key].dtype} as in {names[0]}"
                )
            if not t.is_floating_point():
                raise InvalidParticleError(f"{names[i]}: tensor {key} has dtype {t.dtype}, expected a float")
            if not bool(torch.isfinite(t).all()):
                raise InvalidParticleError(f"{names[i]}: tensor {key} holds NaN or inf values")


def init_swarm(
    positions: list[Position],
    config: PSOConfig,
    seed: int,
    names: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    swarm: str = GENERATOR_SWARM,
) -> SwarmState:
    """Create the initial swarm state from seed-generator adapters.

    Initial velocities (docs/method.md §5): ``"random"`` sets v_i = x_j − x_i for a particle j ≠ i drawn uniformly
    with a generator seeded by ``derive_seed(seed, *swarm_stream(swarm, "pso-init"))`` (zero for a single particle); ``"zero"``
    sets v_i = 0. Positions are cloned; the caller's tensors are never modified.

    Args:
        positions: n ≥ 1 adapter tensor dicts with identical keys, shapes and float dtype.
        config: PSO settings (``initial_velocity``, ``step_length``).
        seed: the run seed.
        names: particle names (default ``g0..g{n-1}``).
        metadata: JSON-serialisable extras stored with the state.
        swarm: the swarm's name (labels its random streams).

    Raises:
        InvalidParticleError: see :func:`validate_positions`; names of the wrong length.
    """
    names = list(names) if names is not None else [f"g{i}" for i in range(len(positions))]
    if len(names) != len(positions):
        raise InvalidParticleError(f"swarm: {len(names)} names for {len(positions)} particles")
    validate_positions(positions, names)
    xs = [_clone(p) for p in positions]
    n = len(xs)
    if config.initial_velocity == "random" and n > 1:
        gen = torch.Generator().manual_seed(derive_seed(seed, *swarm_stream(swarm, "pso-init")))
        velocities = []
        for i in range(n):
            j = int(torch.randint(0, n - 1, (1,), generator=gen))
            j = j + 1 if j >= i else j  # uniform over the n-1 other particles
            velocities.append({k: xs[j][k] - xs[i][k] for k in xs[i]})
    else:
        velocities = [{k: torch.zeros_like(t) for k, t in x.items()} for x in xs]
    return SwarmState(
        names=names,
        positions=xs,
        velocities=velocities,
        personal_best=[_clone(x) for x in xs],
        personal_best_utility=[None] * n,
        utility_history=[[] for _ in range(n)],
        stale=[0] * n,
        cooldown=[0] * n,
        step_length=float(config.step_length),
        seed=int(seed),
        metadata=dict(metadata or {}),
        swarm=swarm,
    )


def continue_swarm(state: SwarmState, seed: int, metadata: dict[str, Any] | None = None) -> SwarmState:
    """A new search's initial swarm that continues where ``state`` stopped (a benchmark refresh, docs/method.md §8).

    Positions x_i, velocities v_i, the step length λ and the particle names carry over; everything measured
    is reset: personal bests start at the positions with no utility, there is no global best or worst yet,
    the iteration counter, staleness, cooldowns and histories start at zero and ``stopped`` is cleared. The
    new search re-measures every particle on its own items (utilities from another search's items, drawn
    with another seed, are not compared with this one's), so its global best comes from its own iterations.

    Args:
        state: the previous search's final swarm (not modified; tensors are cloned).
        seed: the new search's stream seed (its PSO random factors derive from it).
        metadata: merged over ``state.metadata`` (e.g. where the swarm came from).

    Returns:
        A :class:`SwarmState` with ``iteration == 0``.
    """
    n = state.n_particles
    return SwarmState(
        names=list(state.names),
        positions=[_clone(x) for x in state.positions],
        velocities=[_clone(v) for v in state.velocities],
        personal_best=[_clone(x) for x in state.positions],
        personal_best_utility=[None] * n,
        utility_history=[[] for _ in range(n)],
        stale=[0] * n,
        cooldown=[0] * n,
        step_length=float(state.step_length),
        seed=int(seed),
        metadata={**state.metadata, **(metadata or {})},
        swarm=state.swarm,
    )


# -- checkpoint ------------------------------------------------------------------------------------------
_SCALARS = (
    "names", "personal_best_utility", "utility_history", "stale", "cooldown", "step_length", "seed",
    "global_best_utility", "global_best_particle", "global_best_iteration", "global_worst_utility",
    "global_worst_particle", "global_worst_iteration", "global_best_stale", "step_length_history",
    "restart_history", "iteration", "stopped", "metadata", "swarm",
)  # fmt: skip


def state_to_tensors(state: SwarmState) -> dict[str, torch.Tensor]:
    """Flatten every tensor of ``state`` into one dict keyed ``"<role>/<particle>/<key>"``."""
    out: dict[str, torch.Tensor] = {}
    for role in ("positions", "velocities", "personal_best"):
        for i, pos in enumerate(getattr(state, role)):
            for k, t in pos.items():
                out[f"{role}/{i}/{k}"] = t.detach().contiguous()
    for role in ("global_best", "global_worst"):
        pos = getattr(state, role)
        if pos is not None:
            for k, t in pos.items():
                out[f"{role}/{k}"] = t.detach().contiguous()
    return out


def save_swarm_state(state: SwarmState, store: Store, key: str) -> str:
    """Write ``state`` under the folder ``key`` of ``store``: tensors first, ``state.json`` last.

    Returns:
        The URL of the folder.
    """
    from safetensors.torch import save

    store.write_bytes(f"{key}/{TENSORS_FILE}", save(state_to_tensors(state)))
    scalars = {name: getattr(state, name) for name in _SCALARS}
    for name in ("step_length", "global_best_utility", "global_worst_utility"):
        value = scalars[name]
        if value is not None and not math.isfinite(value):
            raise StorageError(f"swarm state: {name} is {value}, expected a finite number")
    store.write_json(f"{key}/{STATE_FILE}", {"format_version": FORMAT_VERSION, **scalars})
    return store.url(key)


def load_swarm_state(store: Store, key: str) -> SwarmState:
    """Read a state written by :func:`save_swarm_state`.

    Raises:
        StorageError: ``state.json`` or the tensors are missing, or the format version is unknown.
    """
    from safetensors.torch import load

    meta = store.read_json(f"{key}/{STATE_FILE}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise FormatError(
            f"{store.url(key)}/{STATE_FILE}: format version {meta.get('format_version')!r}, this dataswarms "
            f"reads version {FORMAT_VERSION}"
        )
    # clone: tensors loaded from bytes share an immutable buffer, and the update works in place
    flat = {k: t.clone() for k, t in load(store.read_bytes(f"{key}/{TENSORS_FILE}")).items()}
    n = len(meta["names"])
    roles: dict[str, Any] = {
        r: [dict() for _ in range(n)] for r in ("positions", "velocities", "personal_best")
    }
    roles["global_best"] = {}
    roles["global_worst"] = {}
    for name, t in flat.items():
        role, rest = name.split("/", 1)
        if role in ("global_best", "global_worst"):
            roles[role][rest] = t
        else:
            i, k = rest.split("/", 1)
            roles[role][int(i)][k] = t
    kwargs = {name: meta[name] for name in _SCALARS}
    return SwarmState(
        positions=roles["positions"],
        velocities=roles["velocities"],
        personal_best=roles["personal_best"],
        global_best=roles["global_best"] or None,
        global_worst=roles["global_worst"] or None,
        **kwargs,
    )
