"""PSO settings (docs/method.md §5; Model Swarms, arXiv 2410.11163, §2)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PSOConfig(BaseModel):
    """Particle swarm settings. Defaults are the authors' (Data Swarms / Model Swarms).

    Per iteration each particle i draws r_v, r_p, r_g, r_w ~ U(0, 1) (all 1 when ``weight_randomness`` is
    off), sets a_v = r_v·φ_v, a_p = r_p·φ_p, a_g = r_g·φ_g, a_w = r_w·φ_w (a_w = 0 when ``repel_term`` is
    off), normalises the four to sum to 1, then moves:
    ``v_i ← a_v·v_i + a_p·(p_i − x_i) + a_g·(g − x_i) + a_w·(x_i − w)``, ``x_i ← x_i + λ·v_i``.
    After the whole swarm has moved, ``λ ← max(λ·step_length_factor, min_step_length)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    inertia: float = Field(0.4, ge=0, description="φ_v: weight of the previous velocity.")
    cognitive: float = Field(0.3, ge=0, description="φ_p: pull towards the particle's personal best p_i.")
    social: float = Field(0.3, ge=0, description="φ_g: pull towards the global best g.")
    repel: float = Field(0.3, ge=0, description="φ_w: push away from the global worst w.")
    weight_randomness: bool = Field(True, description="Draw r_v, r_p, r_g, r_w ~ U(0,1); off: all 1.")
    repel_term: bool = Field(True, description="Use the repel term a_w·(x_i − w); off: a_w = 0.")
    initial_velocity: Literal["random", "zero"] = Field(
        "random",
        description="'random': v_i = x_j − x_i towards a random other particle j (the authors'); 'zero'.",
    )
    step_length: float = Field(1.0, gt=0, description="λ₀: the initial step length.")
    step_length_factor: float = Field(
        0.95, gt=0, le=1, description="λ is multiplied by this once per iteration (not once per particle)."
    )
    min_step_length: float = Field(0.1, ge=0, description="Lower bound of λ.")
    patience: int = Field(
        10, ge=1, description="Stop after this many iterations without a global-best improvement."
    )
    max_iterations: int = Field(200, ge=1, description="Stop after this many iterations (evaluations).")
    restart_patience: int | None = Field(
        5,
        ge=1,
        description=(
            "A particle whose personal best has not improved for this many iterations returns to its "
            "personal best with zero velocity (a whole number of iterations; the authors' 0.67 indexed "
            "history at 0 and fired at once). None: no restarts."
        ),
    )
    restart_cooldown: int = Field(3, ge=0, description="Iterations after a restart without another restart.")

    @model_validator(mode="after")
    def _some_weight(self) -> PSOConfig:
        total = self.inertia + self.cognitive + self.social + (self.repel if self.repel_term else 0.0)
        if total <= 0:
            raise ValueError(
                "pso: inertia + cognitive + social (+ repel) must be > 0, got all zero; "
                "set at least one coefficient"
            )
        if self.min_step_length > self.step_length:
            raise ValueError(
                f"pso.min_step_length ({self.min_step_length}) must be <= pso.step_length ({self.step_length})"
            )
        return self
