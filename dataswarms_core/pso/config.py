"""PSO settings (docs/method.md §5; Model Swarms, arXiv 2410.11163, §2)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The four coefficients are normalised per particle, so only their ratios matter; the bound keeps their sum
# (and r·φ) finite.
_MAX_COEFFICIENT = 1e6
_MAX_ITERATIONS = 10**6


class PSOConfig(BaseModel):
    """Particle swarm settings. Defaults are the authors' (Data Swarms / Model Swarms).

    Per iteration each particle i draws r_v, r_p, r_g, r_w ~ U(0, 1) (all 1 when ``weight_randomness`` is
    off), sets a_v = r_v·φ_v, a_p = r_p·φ_p, a_g = r_g·φ_g, a_w = r_w·φ_w (a_w = 0 when ``repel_term`` is
    off), normalises the four to sum to 1, then moves:
    ``v_i ← a_v·v_i + a_p·(p_i − x_i) + a_g·(g − x_i) + a_w·(x_i − w)``, ``x_i ← x_i + λ·v_i``.
    After the whole swarm has moved, ``λ ← max(λ·step_length_factor, min_step_length)``.

    Every number has a stated range (finite; the coefficients ≥ 0 and, being normalised, at most 10^6), and
    settings under which the update is undefined or a certain no-op are refused: coefficients summing to 0,
    λ underflowing to 0 before the last move, and restarts that pin a particle to its personal best every
    iteration. Weights that can never move any particle (no social, repel or initial-velocity term) and a
    swarm of one particle are refused by :class:`~dataswarms_core.config.RunConfig`, which sees the swarm.
    ``max_iterations: 1`` is allowed: the run evaluates the seed generators once and stops without moving.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    inertia: float = Field(
        0.4, ge=0, le=_MAX_COEFFICIENT, description="φ_v: weight of the previous velocity."
    )
    cognitive: float = Field(
        0.3, ge=0, le=_MAX_COEFFICIENT, description="φ_p: pull towards the particle's personal best p_i."
    )
    social: float = Field(0.3, ge=0, le=_MAX_COEFFICIENT, description="φ_g: pull towards the global best g.")
    repel: float = Field(
        0.3, ge=0, le=_MAX_COEFFICIENT, description="φ_w: push away from the global worst w."
    )
    weight_randomness: bool = Field(True, description="Draw r_v, r_p, r_g, r_w ~ U(0,1); off: all 1.")
    repel_term: bool = Field(True, description="Use the repel term a_w·(x_i − w); off: a_w = 0.")
    initial_velocity: Literal["random", "zero"] = Field(
        "random",
        description="'random': v_i = x_j − x_i towards a random other particle j (the authors'); 'zero'.",
    )
    step_length: float = Field(1.0, gt=0, le=10, description="λ₀: the initial step length, in (0, 10].")
    step_length_factor: float = Field(
        0.95,
        gt=0,
        le=1,
        description="λ is multiplied by this once per iteration (not once per particle); in (0, 1].",
    )
    min_step_length: float = Field(0.1, ge=0, le=10, description="Lower bound of λ, in [0, step_length].")
    patience: int = Field(
        10,
        ge=1,
        le=_MAX_ITERATIONS,
        description="Stop after this many iterations without a global-best improvement (1 to 10^6).",
    )
    max_iterations: int = Field(
        200,
        ge=1,
        le=_MAX_ITERATIONS,
        description="Stop after this many iterations (evaluations), 1 to 10^6; 1 evaluates once, moves nothing.",
    )
    restart_patience: int | None = Field(
        5,
        ge=1,
        le=_MAX_ITERATIONS,
        description=(
            "A particle whose personal best has not improved for this many iterations returns to its "
            "personal best with zero velocity (a whole number of iterations; the authors' 0.67 indexed "
            "history at 0 and fired at once). None: no restarts."
        ),
    )
    restart_cooldown: int = Field(
        3,
        ge=0,
        le=_MAX_ITERATIONS,
        description="Iterations after a restart without another restart (0 to 10^6).",
    )

    @model_validator(mode="after")
    def _some_weight(self) -> PSOConfig:
        total = self.inertia + self.cognitive + self.social + (self.repel if self.repel_term else 0.0)
        if total <= 0:
            repel = f"repel {self.repel:g}" + ("" if self.repel_term else " (repel_term off: unused)")
            raise ValueError(
                f"pso: inertia 0, cognitive 0, social 0 and {repel}: the coefficients are normalised to sum "
                "to 1, so inertia + cognitive + social (+ repel) must be > 0; set at least one coefficient"
            )
        if self.min_step_length > self.step_length:
            raise ValueError(
                f"pso.min_step_length ({self.min_step_length}) must be <= pso.step_length ({self.step_length})"
            )
        # λ used by the last move (iteration max_iterations - 2) is max(λ₀·factor^k, min); with min 0 it can
        # underflow to 0.0, after which every update is a no-op.
        last_move = self.max_iterations - 2
        if (
            self.min_step_length == 0
            and last_move > 0
            and self.step_length * self.step_length_factor**last_move == 0
        ):
            raise ValueError(
                f"pso.min_step_length: 0 with step_length {self.step_length:g} and step_length_factor "
                f"{self.step_length_factor:g} lets λ underflow to 0 before the last of max_iterations "
                f"{self.max_iterations}, so the later updates move nothing; set pso.min_step_length > 0"
            )
        if self.restart_patience == 1 and self.restart_cooldown == 0:
            raise ValueError(
                "pso.restart_patience: 1 with restart_cooldown 0 sends a particle back to its personal best, "
                "with zero velocity, on every iteration after its first without improvement, so it stops "
                "moving; use restart_patience >= 2 or restart_cooldown >= 1"
            )
        return self
