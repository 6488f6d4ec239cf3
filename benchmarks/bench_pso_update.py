"""Benchmark: the PSO move (docs/method.md §5) with dataswarms' in-place foreach ops, against a plain
per-tensor implementation of the same formula, on LoRA-shaped particles. Reports the ratio of the two in the
same run (absolute times depend on the machine), and the time of a whole update.

    python benchmarks/bench_pso_update.py [--particles 4] [--layers 30] [--hidden 576] [--rank 8] [--repeat 20]

The default shapes are SmolLM2-135M's q_proj/v_proj with r = 8; ``--layers 42 --hidden 3584 --rank 16``
approximates gemma-2-9b.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from dataswarms_core.pso import PSOConfig, init_swarm, update_swarm
from dataswarms_core.pso.update import _move


def lora_particle(layers: int, hidden: int, rank: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for layer in range(layers):
        for module in ("q_proj", "v_proj"):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            out[f"{prefix}.lora_A.weight"] = torch.randn(rank, hidden, generator=gen) * 0.01  # (r, in)
            out[f"{prefix}.lora_B.weight"] = torch.randn(hidden, rank, generator=gen) * 0.01  # (out, r)
    return out


def naive_move(state, weights, step):
    """The same update written tensor by tensor, allocating each term (the baseline)."""
    for i in range(state.n_particles):
        a_v, a_p, a_g, a_w = weights[i]
        for k in state.positions[i]:
            x, v = state.positions[i][k], state.velocities[i][k]
            p, g, w = state.personal_best[i][k], state.global_best[k], state.global_worst[k]
            v_new = a_v * v + a_p * (p - x) + a_g * (g - x) + a_w * (x - w)
            state.velocities[i][k] = v_new
            state.positions[i][k] = x + step * v_new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=4)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=576)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    cfg = PSOConfig(max_iterations=10_000, patience=10_000, restart_patience=None)
    xs = [lora_particle(args.layers, args.hidden, args.rank, s) for s in range(args.particles)]
    base = init_swarm(xs, cfg, seed=0)
    update_swarm(base, [0.1 * i for i in range(args.particles)], cfg)  # bests set; the next update moves
    utilities = [0.05 * i for i in range(args.particles)]
    n_values = sum(t.numel() for t in xs[0].values())

    full, ours, naive = [], [], []
    for _ in range(args.repeat):
        state = copy.deepcopy(base)
        t0 = time.perf_counter()
        report = update_swarm(state, utilities, cfg)
        full.append(time.perf_counter() - t0)
        state = copy.deepcopy(base)
        t0 = time.perf_counter()
        for i in range(state.n_particles):
            _move(state, i, report.weights[i], report.step_length)
        ours.append(time.perf_counter() - t0)
        state = copy.deepcopy(base)
        t0 = time.perf_counter()
        naive_move(state, report.weights, report.step_length)
        naive.append(time.perf_counter() - t0)
    print(
        f"{args.particles} particles × {len(xs[0])} tensors ({n_values / 1e6:.2f} M values each): "
        f"move (foreach, in place, with NaN/inf check) {min(ours) * 1e3:.1f} ms vs per-tensor baseline "
        f"{min(naive) * 1e3:.1f} ms: ratio {min(naive) / min(ours):.2f}x; whole update (bests, moves, "
        f"checks) {min(full) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
