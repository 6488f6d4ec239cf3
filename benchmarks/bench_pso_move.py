"""Benchmark: the PSO move (docs/method.md §5, dataswarms_core.pso.update._move) against the memory-bandwidth
floor measured in the same run, beside the plain foreach form (the move before it was blocked) and a
file-based reference.

    python benchmarks/bench_pso_move.py [--small] [--particles 1] [--repeat 5] [--dtype float32] [--no-files] [--threads N]

The floor is the time to move the bytes the formula must touch once: read x, v, p, g, w and write v, x,
7 × (bytes per value) × N per particle, at the copy bandwidth measured here (best-of-k ``dst.copy_(src)`` on
a buffer of one particle's size; read + write bytes). Ratios are move time / floor time, so they hold across
machines where absolute times do not.

* move: ``_move`` (foreach ops per cache-sized block of tensors, NaN/inf check included);
* foreach: the previous form, one foreach op per term over the whole particle (a difference the size of
  the whole particle is allocated per term), same check;
* files: the authors' way of working on adapter files: load x, v, p, g, w from safetensors files (just
  written, so from the page cache), compute the formula tensor by tensor, write x and v back with
  ``safetensors.torch.save_file``.

Default shapes: gemma-2-9b (42 layers, hidden 3584, r = 16, LoRA on all seven linear layers, ≈54 M values
per particle). ``--small``: SmolLM2-135M with the quickstart's LoRA (r = 8 on q_proj/v_proj, 0.46 M values),
where everything fits in the caches and the floor says little.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from dataswarms_core.errors import InvalidParticleError
from dataswarms_core.pso import PSOConfig, init_swarm
from dataswarms_core.pso.update import _move

# (in_features, out_features) of each LoRA-targeted linear layer.
GEMMA2_9B = {
    "self_attn.q_proj": (3584, 4096),
    "self_attn.k_proj": (3584, 2048),
    "self_attn.v_proj": (3584, 2048),
    "self_attn.o_proj": (4096, 3584),
    "mlp.gate_proj": (3584, 14336),
    "mlp.up_proj": (3584, 14336),
    "mlp.down_proj": (14336, 3584),
}
SMOLLM2_135M_QUICKSTART = {"self_attn.q_proj": (576, 576), "self_attn.v_proj": (576, 192)}


def lora_shapes(modules: dict[str, tuple[int, int]], layers: int, rank: int) -> dict[str, tuple[int, int]]:
    """PEFT state-dict keys → shapes: lora_A (r, in), lora_B (out, r)."""
    out = {}
    for layer in range(layers):
        for module, (n_in, n_out) in modules.items():
            prefix = f"base_model.model.model.layers.{layer}.{module}"
            out[f"{prefix}.lora_A.weight"] = (rank, n_in)
            out[f"{prefix}.lora_B.weight"] = (n_out, rank)
    return out


def random_point(
    shapes: dict[str, tuple[int, int]], seed: int, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(s, generator=gen) * 0.01).to(dtype) for k, s in shapes.items()}


def foreach_move(state, i, a, step_length) -> None:
    """The move as it was before blocking: one foreach op per term over all keys, then the NaN/inf check."""
    a_v, a_p, a_g, a_w = (float(c) for c in a)
    keys = sorted(state.positions[i])
    x = [state.positions[i][k] for k in keys]
    v = [state.velocities[i][k] for k in keys]
    p = [state.personal_best[i][k] for k in keys]
    g = [state.global_best[k] for k in keys]
    w = [state.global_worst[k] for k in keys]
    torch._foreach_mul_(v, a_v)
    torch._foreach_add_(v, torch._foreach_sub(p, x), alpha=a_p)
    torch._foreach_add_(v, torch._foreach_sub(g, x), alpha=a_g)
    if a_w:
        torch._foreach_add_(v, torch._foreach_sub(x, w), alpha=a_w)
    torch._foreach_add_(x, v, alpha=step_length)
    sums = torch.stack([t.sum() for t in x])
    if not bool(torch.isfinite(sums).all()):
        raise InvalidParticleError("NaN/inf")


def file_move(folder: Path, a, step_length) -> None:
    """Load the five adapter files, apply the formula tensor by tensor, save x and v (the authors' way)."""
    a_v, a_p, a_g, a_w = a
    x, v, p, g, w = (load_file(folder / f"{name}.safetensors") for name in "xvpgw")
    for k in x:
        v[k] = a_v * v[k] + a_p * (p[k] - x[k]) + a_g * (g[k] - x[k]) + a_w * (x[k] - w[k])
        x[k] = x[k] + step_length * v[k]
    save_file(x, folder / "x.safetensors")
    save_file(v, folder / "v.safetensors")


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="SmolLM2-135M quickstart shapes instead of gemma-2-9b"
    )
    parser.add_argument("--particles", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--no-files", action="store_true", help="skip the file-based reference")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)

    if args.small:
        name, shapes = "SmolLM2-135M (quickstart LoRA r 8, q/v)", lora_shapes(SMOLLM2_135M_QUICKSTART, 30, 8)
    else:
        name, shapes = "gemma-2-9b (LoRA r 16, all 7 linear layers)", lora_shapes(GEMMA2_9B, 42, 16)
    cfg = PSOConfig(restart_patience=None)
    n_p = args.particles
    state = init_swarm([random_point(shapes, s, dtype) for s in range(n_p)], cfg, seed=0)
    state.velocities = [random_point(shapes, 100 + s, dtype) for s in range(n_p)]
    state.personal_best = [random_point(shapes, 200 + s, dtype) for s in range(n_p)]
    state.global_best, state.global_worst = random_point(shapes, 300, dtype), random_point(shapes, 301, dtype)
    weights = [(0.3, 0.25, 0.25, 0.2)] * n_p
    step = 0.5
    n_values = sum(t.numel() for t in state.positions[0].values())
    bytes_per_particle = n_values * state.positions[0][next(iter(shapes))].element_size()

    # Same bits as the foreach form, checked once on copies.
    ours, theirs = copy.deepcopy(state), copy.deepcopy(state)
    for i in range(n_p):
        _move(ours, i, weights[i], step)
        foreach_move(theirs, i, weights[i], step)
    identical = all(
        torch.equal(getattr(ours, role)[i][k], getattr(theirs, role)[i][k])
        for role in ("positions", "velocities")
        for i in range(n_p)
        for k in shapes
    )
    del ours, theirs

    folder = Path(tempfile.mkdtemp(prefix="bench_pso_move_"))
    try:
        if not args.no_files:
            for role, point in (
                ("x", state.positions[0]),
                ("v", state.velocities[0]),
                ("p", state.personal_best[0]),
                ("g", state.global_best),
                ("w", state.global_worst),
            ):
                save_file(point, folder / f"{role}.safetensors")
        src = torch.randn(n_values).to(dtype)
        dst = torch.empty_like(src)
        times: dict[str, list[float]] = {"copy": [], "move": [], "foreach": [], "files": []}
        for _ in range(args.repeat):  # interleaved; each move works on the state in place
            times["copy"].append(timed(dst.copy_, src))
            times["move"].append(timed(lambda: [_move(state, i, weights[i], step) for i in range(n_p)]))
            times["foreach"].append(
                timed(lambda: [foreach_move(state, i, weights[i], step) for i in range(n_p)])
            )
            if not args.no_files:
                times["files"].append(
                    timed(lambda: [file_move(folder, weights[0], step) for _ in range(n_p)])
                )
        del src, dst
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    best = {k: min(v) for k, v in times.items() if v}
    bandwidth = 2 * bytes_per_particle / best["copy"]  # bytes read + written per second
    floor = 7 * bytes_per_particle * n_p / bandwidth
    print(
        f"{name}, {args.dtype}: {n_p} particle(s) × {len(shapes)} tensors, {n_values / 1e6:.2f} M values "
        f"({bytes_per_particle / 2**20:.0f} MiB) each; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write) → floor (7 × bytes / bandwidth) {floor * 1e3:.1f} ms"
    )
    for key, label in (
        ("move", "move (_move, blocked foreach)"),
        ("foreach", "plain foreach (whole particle)"),
        ("files", "file-based (safetensors)"),
    ):
        if key in best:
            print(f"  {label:32s} {best[key] * 1e3:9.1f} ms  {best[key] / floor:6.2f}x the floor")
    print(
        f"move vs plain foreach: {best['foreach'] / best['move']:.2f}x faster; "
        f"bit-identical: {'yes' if identical else 'NO'} (best of {args.repeat}, interleaved)"
    )


if __name__ == "__main__":
    main()
