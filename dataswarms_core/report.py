"""Outputs of a search (docs/method.md §7): the global-best adapter, the data set it samples, per-iteration metrics,
a report with a plot of utilities, and ``summary.json`` at the run root.

Export layout under the run root::

    export/global_best_adapter/     PEFT folder (PeftModel.from_pretrained / vLLM LoRA)
    export/synthetic.jsonl|.parquet items sampled from the global best (generator, iteration, seed per item)
    export/metrics.parquet|.csv     one row per (iteration, particle)
    export/utilities.png, report.md
    summary.json
"""

from __future__ import annotations

import io
import time
from typing import Any

from .config import RunConfig
from .stages import iter_key, load_run_task, read_checkpoint_pointer, swarm_key
from .storage import Store

EXPORT_DIR = "export"


def completed_iterations(run: Store) -> int:
    """Number of completed iterations: the newest complete checkpoint's iteration (0 before the first)."""
    pointer = read_checkpoint_pointer(run)
    return 0 if pointer is None else int(pointer["iteration"])


def metrics_frame(run: Store, iterations: int) -> Any:
    """One row per (iteration, particle): utility, bests, step length, restarts, counts and timings."""
    import pandas as pd

    rows = []
    for k in range(iterations):
        syn = run.read_json(iter_key(k, "synthesis.json"))
        sco = run.read_json(iter_key(k, "scoring.json"))
        pso = run.read_json(iter_key(k, "pso.json"))
        for i, g in enumerate(sco["generators"]):
            c = syn["counts"][g]
            rows.append(
                {
                    "iteration": k,
                    "particle": g,
                    "utility": sco["utilities"][i],
                    "personal_best_utility": pso["personal_best_utility"][i],
                    "global_best_utility": pso["global_best_utility"],
                    "global_worst_utility": pso["global_worst_utility"],
                    "step_length": pso["step_length"],
                    "restarted": i in pso["restarted"],
                    "items": c["items"],
                    "parse_failures": c["parse_failures"],
                    "duplicates": c["duplicates"],
                    "empty": g in sco["empty_generators"],
                    "judge_failures": sco["judge_failures_per_generator"][g],
                    **{f"objective_{name}": vals[i] for name, vals in sco.get("components", {}).items()},
                    **{f"score_{t}": sco["score_matrix"][i][j] for j, t in enumerate(sco["test_takers"])},
                    "seconds_synthesis": syn["seconds"],
                    "seconds_scoring": sco["seconds"],
                    "seconds_pso": pso["seconds"],
                }
            )
    return pd.DataFrame(rows)


def _plot(frame: Any) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for name, part in frame.groupby("particle"):
        ax.plot(part["iteration"], part["utility"], marker="o", label=str(name))
    best = frame.groupby("iteration")["global_best_utility"].first()
    ax.plot(best.index, best.values, color="black", linestyle="--", label="global best")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel("utility")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def export_run(config: RunConfig, info: dict[str, Any], run: Store, started_at: float) -> dict[str, Any]:
    """Write every export and ``summary.json``; return the summary.

    Args:
        started_at: ``time.time()`` when this attempt started (``wall_seconds``; a resumed run counts from
            its resume).
    """
    import pandas as pd

    from .adapters import write_adapter
    from .pso import load_swarm_state
    from .stages import _load_backend
    from .synthesis import counts_as_dict, sample_items

    iterations = completed_iterations(run)
    if iterations == 0:
        raise RuntimeError(f"{run.root}: no completed iteration to export")
    state = load_swarm_state(run, swarm_key(iterations))
    best_name = state.names[state.global_best_particle]
    lora = dict(state.metadata["lora_config"])
    lora["base_model_name_or_path"] = info["model_path"]
    adapter_url = write_adapter(run, f"{EXPORT_DIR}/global_best_adapter", lora, state.global_best)

    # The synthetic data set sampled from the global best.
    task = load_run_task(config, info)
    backend, _ = _load_backend(info, config, {best_name: (lora, state.global_best)})
    g = config.generation
    rows, counts = sample_items(
        backend, task.dev["input"].tolist(), task.domain, [best_name], items_shown=g.items_shown,
        items_written=g.items_written, calls=config.export.calls, max_new_tokens=g.max_new_tokens,
        temperature=g.temperature, top_p=g.top_p, batch_size=g.batch_size, run_seed=config.seed,
        iteration=iterations, stage="export",
    )  # fmt: skip
    for row in rows:  # the generator is the global best: particle name and the iteration it was evaluated at
        row["iteration"] = state.global_best_iteration
    jsonl_url = run.write_jsonl(f"{EXPORT_DIR}/synthetic.jsonl", rows)
    parquet_url = run.write_parquet(
        f"{EXPORT_DIR}/synthetic.parquet",
        pd.DataFrame(rows, columns=["generator", "iteration", "call", "index", "item", "seed"]),
    )

    frame = metrics_frame(run, iterations)
    metrics_parquet = run.write_parquet(f"{EXPORT_DIR}/metrics.parquet", frame)
    metrics_csv = run.write_csv(f"{EXPORT_DIR}/metrics.csv", frame)
    plot_url = run.write_bytes(f"{EXPORT_DIR}/utilities.png", _plot(frame))

    scoring = [run.read_json(iter_key(k, "scoring.json")) for k in range(iterations)]
    synthesis = [run.read_json(iter_key(k, "synthesis.json")) for k in range(iterations)]
    pso = [run.read_json(iter_key(k, "pso.json")) for k in range(iterations)]
    summary: dict[str, Any] = {
        "run_name": info["run_name"],
        "seed": config.seed,
        "base_model": config.model.base_model,
        "task": info["task_name"],
        "objective": config.scoring.objective,
        "judge": scoring[0]["judge"],
        "generators": state.names,
        "test_takers": scoring[0]["test_takers"],
        "iterations_completed": iterations,
        "stopped": state.stopped,
        "global_best_utility": state.global_best_utility,
        "global_best_particle": best_name,
        "global_best_iteration": state.global_best_iteration,
        "global_worst_utility": state.global_worst_utility,
        "utility_history": [dict(zip(s["generators"], s["utilities"], strict=True)) for s in scoring],
        "component_history": [
            {name: dict(zip(s["generators"], vals, strict=True)) for name, vals in s["components"].items()}
            for s in scoring
        ],
        "objective_undefined": [s["undefined"] for s in scoring],
        "reference_scores": run.read_json("reference_scores.json")["scores"]
        if run.exists("reference_scores.json")
        else None,
        "score_matrices": [s["score_matrix"] for s in scoring],
        "step_length_history": [p["step_length"] for p in pso],
        "restarts": [[state.names[i] for i in p["restarted"]] for p in pso],
        "parse_failures": sum(s["parse_failures"] for s in synthesis),
        "judge_failures": sum(s["judge_failures"] for s in scoring),
        "judge_failures_per_generator": {
            g: sum(s["judge_failures_per_generator"][g] for s in scoring) for g in scoring[0]["generators"]
        },
        "judge_failures_per_test_taker": {
            t: sum(s["judge_failures_per_test_taker"][t] for s in scoring) for t in scoring[0]["test_takers"]
        },
        "empty_generators": sum(len(s["empty_generators"]) for s in scoring),
        "items_per_iteration": [s["items"] for s in synthesis],
        "export_items": len(rows),
        "export_counts": counts_as_dict(counts)[best_name],
        "seconds": {
            "synthesis": round(sum(s["seconds"] for s in synthesis), 1),
            "scoring": round(sum(s["seconds"] for s in scoring), 1),
            "pso": round(sum(p["seconds"] for p in pso), 2),
        },
        "wall_seconds": round(time.time() - started_at, 1),
        "resumes": int(info.get("resumes", 0)),
        "config_hash": info["config_hash"],
        "outputs": {
            "run": run.root,
            "summary": run.url("summary.json"),
            "config": run.url("config.yaml"),
            "global_best_adapter": adapter_url,
            "synthetic_jsonl": jsonl_url,
            "synthetic_parquet": parquet_url,
            "metrics_parquet": metrics_parquet,
            "metrics_csv": metrics_csv,
            "utilities_plot": plot_url,
            "report": run.url(f"{EXPORT_DIR}/report.md"),
            "last_checkpoint": run.url(swarm_key(iterations)),
        },
    }
    run.write_text(f"{EXPORT_DIR}/report.md", report_markdown(summary, frame, rows))
    run.write_json("summary.json", summary)
    return summary


def report_markdown(
    summary: dict[str, Any], frame: Any, rows: list[dict[str, Any]], n_examples: int = 5
) -> str:
    """A short human-readable report of a search (also used as the Prefect markdown artifact)."""
    table = frame.pivot(index="iteration", columns="particle", values="utility")
    lines = [
        f"# Data Swarms search `{summary['run_name']}`",
        "",
        f"Objective **{summary['objective']}** (judge {summary['judge']}), {len(summary['generators'])} generators, "
        f"test takers {', '.join(summary['test_takers'])}, base model {summary['base_model']}, task {summary['task']}.",
        "",
        f"- iterations completed: {summary['iterations_completed']} (stopped: {summary['stopped']})",
        f"- global best utility: {summary['global_best_utility']:.4f} ({summary['global_best_particle']}, "
        f"iteration {summary['global_best_iteration']})",
        f"- parse failures: {summary['parse_failures']}, judge failures: {summary['judge_failures']}, "
        f"empty generators: {summary['empty_generators']}",
        f"- wall time: {summary['wall_seconds']:.0f} s",
        "",
        "## Utility per iteration and particle",
        "",
        "| iteration | " + " | ".join(map(str, table.columns)) + " |",
        "|---|" + "---|" * len(table.columns),
    ]
    for it, row in table.iterrows():
        lines.append(f"| {it} | " + " | ".join(f"{v:.4f}" for v in row.values) + " |")
    last = summary["component_history"][-1] if summary.get("component_history") else {}
    if last:
        names = summary["generators"]
        lines += ["", f"## Objective components, iteration {summary['iterations_completed'] - 1}", ""]
        lines += ["| objective | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [f"| {k} | " + " | ".join(f"{v[g]:.4f}" for g in names) + " |" for k, v in last.items()]
    shown = min(n_examples, len(rows))
    lines += [
        "",
        "![utilities](utilities.png)",
        "",
        f"## Items from the global best (first {shown} of {len(rows)})",
        "",
    ]
    lines += [f"{i}. {r['item']}" for i, r in enumerate(rows[:n_examples], start=1)] or ["(none parsed)"]
    return "\n".join(lines) + "\n"
