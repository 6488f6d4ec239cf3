"""Benchmark: one search iteration at quickstart sizes with SmolLM2 on the CPU, dataswarms against a
reference-style path (the authors' way) in the same process.

    .venv/bin/python benchmarks/bench_iteration.py [--fraction 1.0] [--generators DIR --test-takers DIR]

**Project path** (timed), the core library's functions as the stages call them, everything in memory:
synthesis (``load_local_backend`` with every generator attached, then ``sample_items``: all calls in shared
batches), scoring (``load_local_backend`` with the test takers, ``answer``, the expected-score judge through
``build_judge`` + ``judge_answers``, ``compute_objectives``) and the swarm step (``load_swarm_state``,
``update_swarm``, ``save_swarm_state``: one checkpoint per iteration). Copy detection is left out (the
reference has none); the base model is loaded once per stage, as the stages do.

**Reference path** (timed), the same requests replayed as the authors' code works: for every generator call
``AutoTokenizer`` + ``AutoModelForCausalLM.from_pretrained`` + ``PeftModel.from_pretrained`` from an adapter
folder, one prompt per ``generate``; every (item, test taker) answer likewise with its own model load (the
base test taker without PEFT); the judge model loaded once (generous to the reference) and one forward pass
per answer; the PSO move per particle by reading five safetensors files (x, v, p, g, w) and writing x and v.

**Equal work.** The reference replays exactly the requests the project path made (recorded by a transparent
proxy around the backend): the same prompts, adapters and judge inputs. End-of-turn is suppressed in both
paths (``min_new_tokens`` = ``max_new_tokens``), so every generator call produces exactly
``generation.max_new_tokens`` tokens and every answer ``scoring.answer_max_new_tokens`` in both; sampling
settings are the quickstart's (temperature 0.7, top-p 0.95 for items; greedy answers). The reference's PSO
uses the project's drawn coefficients and step length, and its result is checked against the project's.

``--fraction F`` runs only the first ``ceil(F·n)`` units of each reference stage (calls, answers,
judgements, particles) and scales that stage's time by ``n / units``; the output says so. Adapters are random
LoRA factors of the quickstart's shape (r 8, alpha 16, q_proj/v_proj) unless ``--generators`` and
``--test-takers`` name folders of trained PEFT adapters (e.g. ``runs/_cache/seed_generators/<hash>``).
The machine must be otherwise idle: on 2 cores, another busy process slows PyTorch's 2-thread kernels by up
to 10x and makes the figures meaningless (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dataswarms_core.adapters import BASE, read_adapter, write_adapter
from dataswarms_core.backends import load_local_backend
from dataswarms_core.config_files import load_config
from dataswarms_core.data import load_task
from dataswarms_core.generation import GenerationRequest
from dataswarms_core.judges import JudgeContext, build_judge
from dataswarms_core.models import load_tokenizer, resolve_model
from dataswarms_core.pso import PSOConfig, init_swarm, load_swarm_state, save_swarm_state, update_swarm
from dataswarms_core.scoring import TestTaker, answer, compute_objectives, judge_answers
from dataswarms_core.seeding import derive_seed
from dataswarms_core.storage import Store
from dataswarms_core.synthesis import sample_items

SEED = 0
ITERATION = 0
LOAD_SECONDS: dict[str, float] = {}  # reference path: seconds spent loading models, per stage


# -- adapters --------------------------------------------------------------------------------------------------
def random_adapters(model_path: Path, lora: Any, names: Sequence[str], label: str) -> dict[str, tuple]:
    """Random LoRA adapters of the quickstart's shape: A ~ N(0, 1/in_features), B ~ N(0, 0.01²), so each
    adapter moves the model a little, as trained ones do. name → (adapter_config, PEFT-named tensors)."""
    from peft import get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    from dataswarms_core.adapters import lora_config

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    peft = get_peft_model(model, lora_config(lora))
    raw = peft.peft_config["default"].to_dict()
    plain = {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in raw.items()}
    config = json.loads(json.dumps(plain, default=str))  # as adapter_config.json holds it
    shapes = {k: t.shape for k, t in get_peft_model_state_dict(peft).items()}
    out = {}
    for name in names:
        gen = torch.Generator().manual_seed(derive_seed(SEED, "bench-adapter", label, name))
        tensors = {}
        for key, shape in sorted(shapes.items()):
            std = 1 / math.sqrt(shape[1]) if ".lora_A." in key else 0.01
            tensors[key] = torch.randn(shape, generator=gen) * std
        out[name] = (config, tensors)
    return out


def folder_adapters(folder: str, names: Sequence[str]) -> dict[str, tuple]:
    """Trained adapters: ``folder/<name>`` PEFT folders."""
    store = Store(folder)
    return {name: read_adapter(store, name) for name in names}


# -- the project path -------------------------------------------------------------------------------------------
class Recorder:
    """A transparent proxy around a backend that records every request (for the reference to replay)."""

    def __init__(self, backend: Any, log: dict[str, list]) -> None:
        self._backend = backend
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def generate(self, requests, **kwargs):  # noqa: ANN001, ANN003, ANN201
        replies = self._backend.generate(requests, **kwargs)
        self._log["generate"].append((list(requests), dict(kwargs)))
        self._log["truncated"].extend(bool(getattr(r, "truncated", False)) for r in replies)
        return replies

    def next_token_probs(self, requests, token_ids, **kwargs):  # noqa: ANN001, ANN003, ANN201
        self._log["probs"].append((list(requests), list(token_ids)))
        return self._backend.next_token_probs(requests, token_ids, **kwargs)


def _force_length(backend: Any, n: int) -> None:
    """Suppress end-of-turn for the first ``n`` new tokens (equal work in both paths)."""
    backend.model.generation_config.min_new_tokens = n


def project_iteration(config: Any, model_path: Path, task: Any, gens: dict, takers: dict, tmp: Path) -> dict:
    """One iteration the project's way; returns times and what the reference replays."""
    g, s = config.generation, config.scoring
    names = list(gens)
    store = Store(str(tmp / "run"))
    lora = next(iter(gens.values()))[0]
    cfg = PSOConfig(**config.pso.model_dump())
    state = init_swarm([x for _, x in gens.values()], cfg, SEED, names=names, metadata={"lora_config": lora})
    save_swarm_state(state, store, "swarms/generators/iter_0000")
    times: dict[str, float] = {}
    synth_log: dict[str, list] = {"generate": [], "probs": [], "truncated": []}
    score_log: dict[str, list] = {"generate": [], "probs": [], "truncated": []}

    t0 = time.perf_counter()
    state = load_swarm_state(store, "swarms/generators/iter_0000")
    generators = {
        n: (state.metadata["lora_config"], x) for n, x in zip(state.names, state.positions, strict=True)
    }
    local = load_local_backend(model_path, generators, config.model)
    _force_length(local.backend, g.max_new_tokens)
    sample = sample_items(
        Recorder(local.backend, synth_log), task.dev["input"].tolist(), task.domain, names,
        items_shown=g.items_shown, items_written=g.items_written, calls=g.calls_per_generator,
        max_new_tokens=g.max_new_tokens, temperature=g.temperature, top_p=g.top_p, batch_size=g.batch_size,
        run_seed=SEED, iteration=ITERATION, stage="synthesis",
    )  # fmt: skip
    times["synthesis (incl. model load)"] = time.perf_counter() - t0
    del local

    t0 = time.perf_counter()
    items = [r.model_dump() for r in sample.items]
    local = load_local_backend(model_path, takers, config.model)
    _force_length(local.backend, s.answer_max_new_tokens)
    backend = Recorder(local.backend, score_log)
    test_takers = [TestTaker("base", backend)] + [TestTaker(n, backend, n) for n in takers]
    times["scoring: model load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = answer(
        items, test_takers, max_new_tokens=s.answer_max_new_tokens, temperature=s.answer_temperature,
        batch_size=s.batch_size, run_seed=SEED, stage="answers", iteration=ITERATION,
    )  # fmt: skip
    times["scoring: answers"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    context = JudgeContext(
        settings=config.judge, domain=task.domain, seed=derive_seed(SEED, "judge-0"), local=backend,
        tokenizer=local.tokenizer, batch_size=s.batch_size,
    )  # fmt: skip
    judge_answers(build_judge(config.judge.name, context), rows)
    times["scoring: judge"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    taker_names = [t.name for t in test_takers]
    result = compute_objectives(
        rows, names, taker_names, objective=s.objective, components=["difficulty", "separation"],
        n_sets=s.consistency_sets,
    )  # fmt: skip
    times["scoring: objectives"] = time.perf_counter() - t0
    del local

    before = load_swarm_state(store, "swarms/generators/iter_0000")  # the reference's input (untimed)
    t0 = time.perf_counter()
    state = load_swarm_state(store, "swarms/generators/iter_0000")
    report = update_swarm(state, result.utilities, cfg)
    save_swarm_state(state, store, "swarms/generators/iter_0001")
    times["pso (in memory + checkpoint)"] = time.perf_counter() - t0
    return {
        "times": times, "synth": synth_log, "score": score_log, "items": len(items), "answers": len(rows),
        "utilities": result.utilities, "state_before": before, "state_after": state, "report": report,
    }  # fmt: skip


# -- the reference path -----------------------------------------------------------------------------------------
def _load_reference(model_path: Path, adapter_dir: str | None) -> tuple[Any, Any]:
    """The authors' way: tokenizer and base model from disk, the adapter from its folder, per call."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    return model, tokenizer


def _prompt(tokenizer: Any, request: GenerationRequest) -> str:
    text = tokenizer.apply_chat_template(list(request.messages), tokenize=False, add_generation_prompt=True)
    return text + request.reply_prefix


@torch.inference_mode()
def reference_generate(
    model_path: Path, folders: dict[str, str], calls: list, label: str
) -> tuple[float, int]:
    """Each request alone, with its model loaded from disk for it. Returns (seconds, new tokens); adds the
    seconds spent loading to ``LOAD_SECONDS[label]``."""
    t0, tokens = time.perf_counter(), 0
    for k, (request, settings) in enumerate(calls):
        adapter = None if request.adapter == BASE else folders[request.adapter]
        t_load = time.perf_counter()
        model, tokenizer = _load_reference(model_path, adapter)
        LOAD_SECONDS[label] = LOAD_SECONDS.get(label, 0.0) + time.perf_counter() - t_load
        enc = tokenizer(_prompt(tokenizer, request), return_tensors="pt", add_special_tokens=False)
        n = settings["max_new_tokens"]
        sampling = (
            {"do_sample": True, "temperature": settings["temperature"], "top_p": settings["top_p"]}
            if settings["temperature"] > 0
            else {"do_sample": False}
        )
        torch.manual_seed(derive_seed(SEED, "reference", label, k))
        out = model.generate(
            **enc, max_new_tokens=n, min_new_tokens=n, pad_token_id=tokenizer.pad_token_id, **sampling
        )
        tokens += out.shape[1] - enc["input_ids"].shape[1]
        del model
    return time.perf_counter() - t0, tokens


@torch.inference_mode()
def reference_judge(model_path: Path, requests: list, token_ids: list[int]) -> tuple[float, float]:
    """The judge model loaded once; one forward pass per answer. Returns (load seconds, judging seconds)."""
    t0 = time.perf_counter()
    model, tokenizer = _load_reference(model_path, None)
    loaded = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids = torch.tensor(token_ids)
    for request in requests:
        enc = tokenizer(_prompt(tokenizer, request), return_tensors="pt", add_special_tokens=False)
        probs = torch.softmax(model(**enc).logits[0, -1].float(), dim=-1)[ids]
        float((probs * torch.arange(1, len(ids) + 1)).sum() / probs.sum())
    return loaded, time.perf_counter() - t0


def reference_pso(before: Any, report: Any, folder: Path, particles: int) -> tuple[float, list[dict]]:
    """Per particle: read x, v, p, g, w from safetensors files, move, write x and v back."""
    from safetensors.torch import load_file, save_file

    from dataswarms_core.pso.update import record_utilities

    record_utilities(before, report.utilities)  # p, g, w as the project had them when it moved (untimed)
    for i in range(before.n_particles):
        d = folder / f"particle_{i}"
        d.mkdir(parents=True, exist_ok=True)
        for role, pos in (
            ("x", before.positions[i]),
            ("v", before.velocities[i]),
            ("p", before.personal_best[i]),
        ):
            save_file({k: t.contiguous() for k, t in pos.items()}, d / f"{role}.safetensors")
    save_file({k: t.contiguous() for k, t in before.global_best.items()}, folder / "g.safetensors")
    save_file({k: t.contiguous() for k, t in before.global_worst.items()}, folder / "w.safetensors")
    moved = []
    t0 = time.perf_counter()
    for i in range(particles):
        d = folder / f"particle_{i}"
        x, v, p = (load_file(d / f"{r}.safetensors") for r in ("x", "v", "p"))
        g, w = load_file(folder / "g.safetensors"), load_file(folder / "w.safetensors")
        a_v, a_p, a_g, a_w = report.weights[i]
        for k in x:
            v[k] = a_v * v[k] + a_p * (p[k] - x[k]) + a_g * (g[k] - x[k]) + a_w * (x[k] - w[k])
            x[k] = x[k] + report.step_length * v[k]
        save_file(x, d / "x.safetensors")
        save_file(v, d / "v.safetensors")
        moved.append(x)
    return time.perf_counter() - t0, moved


def _part(units: list, fraction: float) -> list:
    return units[: max(1, math.ceil(fraction * len(units)))] if units else units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fraction", type=float, default=1.0, help="share of each reference stage to run, then scale"
    )
    parser.add_argument(
        "--generators", help="folder of trained generator adapters g0..g{G-1} (default: random)"
    )
    parser.add_argument(
        "--test-takers", help="folder of trained test-taker adapters t0..t{T-1} (default: random)"
    )
    args = parser.parse_args()
    if not 0 < args.fraction <= 1:
        parser.error("--fraction must be in (0, 1]")

    config = load_config("quickstart")
    model_path = resolve_model(config.model.base_model)
    task = load_task(config.task.source)
    gen_names = [f"g{i}" for i in range(config.seed_generators.n_generators)]
    taker_names = [f"t{i}" for i in range(config.test_takers.n_adapters)]
    gens = (
        folder_adapters(args.generators, gen_names) if args.generators
        else random_adapters(model_path, config.seed_generators.lora, gen_names, "generators")
    )  # fmt: skip
    takers = (
        folder_adapters(args.test_takers, taker_names) if args.test_takers
        else random_adapters(model_path, config.test_takers.lora, taker_names, "test_takers")
    )  # fmt: skip
    load_tokenizer(model_path)  # warm the file cache and imports for both paths
    print(
        f"quickstart sizes: {len(gens)} generators x {config.generation.calls_per_generator} calls "
        f"({config.generation.max_new_tokens} new tokens each), {1 + len(takers)} test takers "
        f"({config.scoring.answer_max_new_tokens} answer tokens), judge {config.judge.name}; "
        f"torch threads {torch.get_num_threads()}; 1-minute load average before the run "
        f"{os.getloadavg()[0]:.2f} (other processes should be idle)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-iteration-") as tmp_name:
        tmp = Path(tmp_name)
        ours = project_iteration(config, model_path, task, gens, takers, tmp)
        folders = {}
        for name, (cfg, tensors) in {**gens, **takers}.items():
            folders[name] = write_adapter(Store(str(tmp / "adapters")), name, cfg, tensors)

        synth_calls = [(r, kw) for reqs, kw in ours["synth"]["generate"] for r in reqs]
        answer_calls = [(r, kw) for reqs, kw in ours["score"]["generate"] for r in reqs]
        judge_reqs = [r for reqs, _ in ours["score"]["probs"] for r in reqs]
        token_ids = ours["score"]["probs"][0][1]
        ref: dict[str, float] = {}
        scaled: list[str] = []

        def share(units: list, what: str) -> tuple[list, float]:
            part = _part(units, args.fraction)
            if len(part) < len(units):
                scaled.append(f"{what}: ran {len(part)} of {len(units)}, time x{len(units) / len(part):.2f}")
            return part, len(units) / max(len(part), 1)

        part, factor = share(synth_calls, "generator calls")
        seconds, synth_tokens = reference_generate(model_path, folders, part, "synthesis")
        ref["synthesis (generator calls)"] = seconds * factor
        part, factor = share(answer_calls, "answers")
        seconds, answer_tokens = reference_generate(model_path, folders, part, "answers")
        ref["scoring: answers"] = seconds * factor
        part, factor = share(judge_reqs, "judgements")
        load, seconds = reference_judge(model_path, part, token_ids)
        ref["scoring: judge (loaded once)"] = load + seconds * factor
        n = ours["state_after"].n_particles
        part, factor = share(list(range(n)), "particles")
        seconds, moved = reference_pso(ours["state_before"], ours["report"], tmp / "pso", len(part))
        ref["pso (5 files per particle)"] = seconds * factor
        for i, x in enumerate(moved):
            after = ours["state_after"].positions[i]
            assert all(torch.allclose(x[key], after[key], atol=1e-6) for key in after), (
                f"particle {i} differs"
            )

    t = ours["times"]
    ref_total, our_total = sum(ref.values()), sum(t.values())
    print(
        f"work: {len(synth_calls)} generator calls, {ours['items']} items, {len(answer_calls)} answers, "
        f"{len(judge_reqs)} judgements, {n} particles; end-of-turn suppressed in both paths, so every call "
        f"writes its token limit (reference: {synth_tokens} + {answer_tokens} new tokens in the calls it ran)"
    )
    for log, what in ((ours["synth"], "generator replies"), (ours["score"], "answers")):
        if not all(log["truncated"]):
            print(f"WARNING: {log['truncated'].count(False)} project {what} ended before the token limit")
    print("project (model loaded once per stage, batched across adapters, swarm in memory):")
    for stage, seconds in t.items():
        print(f"  {stage:32s} {seconds:8.1f} s")
    print(f"  {'total':32s} {our_total:8.1f} s")
    print("reference (model loaded per call, one prompt at a time, PSO through files):")
    for stage, seconds in ref.items():
        print(f"  {stage:32s} {seconds:8.1f} s")
    print(f"  {'total':32s} {ref_total:8.1f} s")
    loads = ", ".join(f"{k} {v:.1f} s" for k, v in LOAD_SECONDS.items())
    print(f"  of which loading models per call (before scaling): {loads}")
    if scaled:
        print(f"SCALED (--fraction {args.fraction}): " + "; ".join(scaled))
    print(f"ratio reference / project: {ref_total / our_total:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
