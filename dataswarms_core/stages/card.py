"""The dataset card (``README.md``) of a benchmark package: YAML metadata (Hugging Face dataset-card front
matter plus a ``dataswarms`` block) and how the items were made."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from ..records import BenchmarkItem, BenchmarkManifest, CopyRow

N_EXAMPLES = 5


def _short(text: str, n: int = 160) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


def dataset_card(
    manifest: BenchmarkManifest, items: Sequence[BenchmarkItem], copies: Sequence[CopyRow]
) -> str:
    """The card: front matter with the source task and its licence, objective, counts and parse failures;
    then how the package was made, what was dropped and why, the copies left out with the closest real item
    each copies, example items and how to evaluate models on it."""
    c = manifest.counts
    meta = {
        "pretty_name": f"dataswarms benchmark {manifest.name}",
        "tags": ["dataswarms", "synthetic", "evaluation", manifest.objective],
        "configs": [{"config_name": "default", "data_files": [{"split": "test", "path": "items.jsonl"}]}],
        "dataswarms": {
            "version": manifest.version,
            "run_name": manifest.run_name,
            "config_hash": manifest.config_hash,
            "source_task": manifest.task,
            "source_task_file": manifest.task_source,
            "source_task_licence": manifest.task_licence,
            "objective": manifest.objective,
            "judge": manifest.judge,
            "base_model": manifest.base_model,
            "base_model_fingerprint": manifest.base_model_fingerprint,
            "generator": manifest.generator,
            "generator_utility": round(manifest.utility, 6),
            "checkpoint_iteration": manifest.checkpoint_iteration,
            "seed": manifest.seed,
            "items_asked": c.asked,
            "items_written": c.written,
            "calls": c.calls,
            "extra_calls": c.extra_calls,
            "parse_failures": c.parse_failures,
            "duplicates": c.duplicates,
            "copies_excluded": c.copies,
            "surplus_dropped": c.surplus,
            "reference_answers": manifest.answers,
            "reference_model": manifest.reference_model,
            "real_test_items": manifest.test_items,
        },
    }
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    lines = [
        "---",
        front.rstrip("\n"),
        "---",
        "",
        f"# dataswarms benchmark `{manifest.name}` (version {manifest.version})",
        "",
        f"{c.written} evaluation items written by a LoRA data generator searched with Data Swarms "
        f"(arXiv 2506.00741) for the **{manifest.objective}** objective on the task **{manifest.task}** "
        f"({manifest.domain}). Generator `{manifest.generator}` is the global best of run `{manifest.run_name}` "
        f"after {manifest.checkpoint_iteration} iterations (utility {manifest.utility:.4f}, base model "
        f"{manifest.base_model}, fingerprint {manifest.base_model_fingerprint}).",
        "",
        f"Source task licence: {manifest.task_licence}. The items are synthetic, written by a model that was "
        "shown and fine-tuned on the source task's items.",
        "",
        "## How it was made",
        "",
        f"- asked for **{c.asked}** items, written **{c.written}**: {c.calls} generator calls "
        f"({c.extra_calls} beyond the first round; at most {c.max_extra_calls} allowed), {c.requested} items requested",
        f"- dropped: {c.parse_failures} unparsable, {c.duplicates} duplicates, {c.copies} copies of real or "
        f"earlier items, {c.surplus} beyond the target",
    ]
    if c.shortfall:
        lines.append(f"- **target not met**: {c.shortfall}")
    if manifest.answers == "reference-model":
        lines.append(
            f"- reference answers: **model-written** by `{manifest.reference_model}` (not human labels); "
            f"{manifest.reference_answer_failures} items without one (the model failed to answer)"
        )
    else:
        lines.append("- no reference answers (`export.answers: none`)")
    lines.append(
        f"- {manifest.test_items} real test items of the source task in `test.jsonl`, for comparing rankings"
    )
    lines += ["", "## Copies left out", ""]
    if copies:
        lines += [
            f"{len(copies)} generated items near-duplicate a real item or an earlier item and are not in the "
            "package (docs/method.md §2, Copies); each, with the closest text it copies:",
            "",
            "| item | copies (kind) | closest | overlap | cosine |",
            "|---|---|---|---|---|",
        ]
        for row in copies:
            cosine = "—" if row.cosine is None else f"{row.cosine:.3f}"
            lines.append(
                f"| {_short(row.item).replace('|', '/')} | {row.kind} | {_short(row.closest).replace('|', '/')} "
                f"| {row.overlap:.3f} | {cosine} |"
            )
        lines.append("")
        lines.append("The same, untruncated: `copies.jsonl`.")
    else:
        lines.append("None detected.")
    lines += ["", f"## Example items (first {min(N_EXAMPLES, len(items))} of {len(items)})", ""]
    lines += [f"{i}. {_short(it.item, 400)}" for i, it in enumerate(items[:N_EXAMPLES], start=1)] or [
        "(none)"
    ]
    lines += [
        "",
        "## Files and use",
        "",
        "| file | what |",
        "|---|---|",
        "| `items.jsonl`, `items.parquet` | one item per row: `id`, `item`, provenance, `reference_answer` |",
        "| `copies.jsonl` | items left out as copies, with the closest text |",
        "| `test.jsonl` | real test items of the source task |",
        "| `adapter/` | the generator (PEFT LoRA adapter) with `dataswarms.json` (its origin) |",
    ]
    if "lm_eval_yaml" in manifest.files or any(k.startswith("lm_eval") for k in manifest.files):
        lines.append("| `lm_eval/` | an lm-evaluation-harness task (`--include_path lm_eval`) |")
    if any(k.startswith("inspect") for k in manifest.files):
        lines.append("| `inspect_task.py` | an inspect_ai task (`inspect eval inspect_task.py`) |")
    lines += [
        "| `package.json` | the manifest (counts, provenance, files) |",
        "",
        "Rank models on it: `dataswarms evaluate <this folder> --model MODEL --model BASE+ADAPTER ...`",
    ]
    return "\n".join(lines) + "\n"
