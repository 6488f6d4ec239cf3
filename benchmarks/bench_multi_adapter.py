"""Benchmark: tokens/s of one generation batch spread over 4 LoRA adapters against the same batch on 1 adapter
(HF backend, PEFT ``adapter_names``), with the real SmolLM2-135M-Instruct and adapters of the quickstart's
shape (LoRA r 8, alpha 16, q_proj/v_proj, random non-zero A and B).

    python benchmarks/bench_multi_adapter.py [--rows 16] [--max-new-tokens 48] [--repeat 3] [--threads N] [--profile]

Both cases generate from the same 16 GSM8K dev questions with the same settings (greedy); case 1 sends
every row to adapter a0, case 2 spreads the rows round-robin over a0..a3. Every row generates exactly
``--max-new-tokens`` tokens (``min_new_tokens`` is set on the model's generation config, so an early
end-of-turn cannot make one case do less work); the new tokens are counted from ``generate``'s output.
Repeats are interleaved and the best of each is kept. ``--profile`` prints the top operators of one
mixed-batch call (torch.profiler).
"""

from __future__ import annotations

import argparse
import time

import torch

from dataswarms_core.adapters import attach_adapters
from dataswarms_core.config_files import load_config
from dataswarms_core.data import load_task
from dataswarms_core.generation import GenerationRequest, HFBackend
from dataswarms_core.models import load_base_model, resolve_model

N_ADAPTERS = 4


def random_adapter(model, lora, seed: int) -> dict[str, torch.Tensor]:
    """PEFT-named LoRA tensors for every targeted linear layer of ``model``: A (r, in), B (out, r)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in lora.target_modules:
            prefix = f"base_model.model.{name}"
            out[f"{prefix}.lora_A.weight"] = torch.randn(lora.r, module.in_features, generator=gen) * 0.02
            out[f"{prefix}.lora_B.weight"] = torch.randn(module.out_features, lora.r, generator=gen) * 0.02
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    lora = load_config("quickstart").seed_generators.lora
    model, tokenizer = load_base_model(resolve_model("smollm2-135m-instruct"), device="cpu")
    config = {
        "r": lora.r,
        "lora_alpha": lora.lora_alpha,
        "target_modules": list(lora.target_modules),
        "lora_dropout": 0.0,
        "task_type": "CAUSAL_LM",
    }
    tensors = {f"a{j}": random_adapter(model, lora, seed=j) for j in range(N_ADAPTERS)}
    peft_model = attach_adapters(model, {name: (config, t) for name, t in tensors.items()})
    peft_model.base_model.model.generation_config.min_new_tokens = args.max_new_tokens  # no early stop
    backend = HFBackend(peft_model, tokenizer)

    # Count new tokens from generate's own output (rows are left-padded to the prompt length).
    counted: list[int] = []
    inner = peft_model.generate

    def counting_generate(*a, **kw):
        out = inner(*a, **kw)
        new = out[:, kw["input_ids"].shape[1] :]
        counted.append(
            int((new != tokenizer.pad_token_id).sum()) if tokenizer.pad_token_id is not None else new.numel()
        )
        return out

    peft_model.generate = counting_generate

    questions = load_task("gsm8k-quickstart").dev["input"].tolist()[: args.rows]
    messages = [[{"role": "user", "content": q}] for q in questions]
    cases = {
        "1 adapter": [GenerationRequest(m, adapter="a0") for m in messages],
        f"{N_ADAPTERS} adapters": [
            GenerationRequest(m, adapter=f"a{j % N_ADAPTERS}") for j, m in enumerate(messages)
        ],
    }
    settings = {"max_new_tokens": args.max_new_tokens, "temperature": 0.0, "seed": 0, "batch_size": args.rows}

    backend.generate(cases["1 adapter"][:2], **settings)  # warm-up
    best: dict[str, float] = {}
    tokens: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, requests in cases.items():
            counted.clear()
            t0 = time.perf_counter()
            backend.generate(requests, **settings)
            seconds = time.perf_counter() - t0
            tokens[name] = sum(counted)
            best[name] = min(best.get(name, float("inf")), seconds)

    print(
        f"SmolLM2-135M-Instruct, HF backend on the CPU (torch {torch.__version__}, {torch.get_num_threads()} threads); "
        f"{args.rows} rows × {args.max_new_tokens} new tokens, greedy, LoRA r {lora.r} on "
        f"{'/'.join(lora.target_modules)}; best of {args.repeat}, interleaved"
    )
    rate = {name: tokens[name] / best[name] for name in cases}
    for name in cases:
        print(f"  {name:11s} {tokens[name]:5d} tokens in {best[name]:6.2f} s: {rate[name]:7.1f} tokens/s")
    one, many = rate["1 adapter"], rate[f"{N_ADAPTERS} adapters"]
    print(
        f"overhead of spreading the batch over {N_ADAPTERS} adapters: {(one / many - 1) * 100:+.1f} % (goal ≤ 20 %)"
    )

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            backend.generate(cases[f"{N_ADAPTERS} adapters"], **{**settings, "max_new_tokens": 8})
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
