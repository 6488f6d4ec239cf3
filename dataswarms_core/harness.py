"""Task files that run a benchmark package in the evaluation harnesses people use.

Two writers, both through a :class:`~dataswarms_core.storage.Store` (a local folder or any fsspec URL):

* :func:`write_lm_eval_task`: an `lm-evaluation-harness <https://github.com/EleutherAI/lm-evaluation-harness>`_
  (0.4.x) task: ``<folder>/<task>.yaml``, its data ``<folder>/<task>.jsonl`` and a small Python module
  ``<folder>/<task>.py`` that loads the data relative to its own file (lm-eval's ``custom_dataset`` hook), so
  the folder works wherever it is copied to. Run it with
  ``lm_eval --model hf --model_args pretrained=MODEL --tasks <task> --include_path <package>/lm_eval``.
* :func:`write_inspect_task`: an `inspect_ai <https://inspect.aisi.org.uk>`_ task file
  ``<folder>/inspect_task.py`` and its data ``<folder>/inspect_items.jsonl`` (read relative to the task file).
  Run it with ``inspect eval <package>/inspect_task.py --model MODEL``.

Both score a model's answer against the item's **reference answer, which a model wrote** (the package's
reference model, see ``reference_answer_by``), not a human label: the scores measure agreement with that
model, and are only as good as its answers. Items without a reference answer are left out of both tasks
(the YAML and the task file say how many); when no item has one, both writers raise ``ValueError``.

Only the files named here are written; the package's ``items.jsonl`` is not read or changed.
"""

from __future__ import annotations

import json
import keyword
import posixpath
import re
from collections.abc import Sequence
from typing import Any

import yaml

from .records import BenchmarkItem
from .storage import Store

LM_EVAL_PROMPT = "Question: {{question}}\nAnswer:"
"""The lm-eval prompt (a Jinja template over the data file's fields); the answer follows after a space."""

INSPECT_TASK_FILE = "inspect_task.py"
INSPECT_DATA_FILE = "inspect_items.jsonl"
INSPECT_SCORERS = ("includes", "match", "model_graded_fact")
"""Scorers the inspect task offers (``-T scorer=NAME``); the first is the default."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def harness_task_name(run_name: str) -> str:
    """The harness task name of a run: ``dataswarms_`` + the run name in lower case with every run of
    characters other than ASCII letters and digits replaced by one ``_`` (leading/trailing ``_`` dropped).

    The result is a valid lm-eval task name, a valid Python identifier (the inspect ``@task`` function) and a
    safe file name, e.g. ``"GSM8K run/2"`` → ``"dataswarms_gsm8k_run_2"``; an empty or all-symbol run name
    gives ``"dataswarms"``. Different run names can map to the same task name (``"a-b"`` and ``"a_b"``).
    """
    slug = re.sub(r"[^0-9a-z]+", "_", run_name.lower()).strip("_")
    return f"dataswarms_{slug}" if slug else "dataswarms"


def _check_name(task_name: str) -> None:
    if not _IDENTIFIER.fullmatch(task_name) or keyword.iskeyword(task_name):
        raise ValueError(
            f"task name {task_name!r} is not a Python identifier (letters, digits, '_'); "
            "use harness_task_name(run_name)"
        )


def _key(folder: str, name: str) -> str:
    """``folder/name`` as a normalised store key (``""`` and ``"."`` mean the store's root)."""
    key = posixpath.normpath(posixpath.join(folder.strip("/") or ".", name))
    if key.startswith("../") or key == "..":
        raise ValueError(f"folder {folder!r} leaves the store")
    return key


def _with_references(task_name: str, items: Sequence[BenchmarkItem]) -> list[BenchmarkItem]:
    """The items that have a reference answer (not None, not blank). Raises ValueError when none has one,
    or when two kept items share an id."""
    kept = [it for it in items if it.reference_answer is not None and it.reference_answer.strip()]
    if not kept:
        raise ValueError(
            f"{task_name}: none of the {len(items)} items has a reference answer, and the harness tasks "
            "score against reference answers (write the package with export.answers: reference-model)"
        )
    seen: set[str] = set()
    for it in kept:
        if it.id in seen:
            raise ValueError(f"{task_name}: item id {it.id!r} occurs twice")
        seen.add(it.id)
    return kept


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _py_str(text: str) -> str:
    """``text`` as a double-quoted Python string literal (JSON's escapes are Python's)."""
    return json.dumps(text, ensure_ascii=False)


# -- lm-evaluation-harness ---------------------------------------------------------------------------


class _Function(str):
    """A YAML scalar written with lm-eval's ``!function`` tag (``module.function``, module next to the YAML)."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    """Multi-line strings (the prompt) double-quoted on one line, with ``\\n``; others as PyYAML likes."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if "\n" in value else None)


_Dumper.add_representer(_Function, lambda dumper, value: dumper.represent_scalar("!function", str(value)))
_Dumper.add_representer(str, _represent_str)

_LM_EVAL_MODULE = '''"""Helpers of the lm-evaluation-harness task in the YAML file of the same name (written by dataswarms).

``load_docs`` is the task's ``custom_dataset``: it reads the JSON Lines file of the same name as this module,
next to it, so the task folder can be moved or copied anywhere. ``token_f1`` is a forgiving metric next to
exact match: SQuAD-style token-overlap F1 between the answer and the reference answer, after lower-casing and
removing punctuation. The reference answers are model-written, not human labels.
"""

import collections
import json
import string
from pathlib import Path

DATA_FILE = Path(__file__).resolve().with_suffix(".jsonl")


def load_docs(**kwargs):
    """The task's data as a ``DatasetDict`` with one split, ``test``; lm-eval's metadata kwargs are unused."""
    import datasets

    with open(DATA_FILE, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def _tokens(text):
    table = str.maketrans("", "", string.punctuation)
    return str(text).lower().translate(table).split()


def _f1(reference, prediction):
    ref, pred = _tokens(reference), _tokens(prediction)
    if not ref or not pred:
        return float(ref == pred)
    common = sum((collections.Counter(ref) & collections.Counter(pred)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(references, predictions, **kwargs):
    """Mean token-overlap F1 of the (reference, prediction) pairs, in [0, 1]."""
    scores = [_f1(reference, predictions[i]) for i, reference in enumerate(references)]
    return sum(scores) / len(scores) if scores else 0.0
'''


def write_lm_eval_task(
    store: Store,
    folder: str,
    task_name: str,
    items: Sequence[BenchmarkItem],
    *,
    description: str,
    max_gen_toks: int = 256,
) -> dict[str, str]:
    """Write an lm-evaluation-harness (0.4.x) task for ``items`` under ``<folder>/`` of ``store``.

    Files (keys relative to ``store``; ``folder`` ``""`` or ``"."`` is the store's root):

    * ``<folder>/<task_name>.jsonl``: one row per item with a reference answer: ``id``, ``question`` (the
      item text) and ``target`` (the reference answer), in the order of ``items``.
    * ``<folder>/<task_name>.py``: loads that file relative to its own path (``load_docs``, the task's
      ``custom_dataset``: lm-eval resolves ``dataset_kwargs.data_files`` against the working directory, a
      ``!function`` module against the YAML's folder) and defines the ``token_f1`` metric.
    * ``<folder>/<task_name>.yaml``: the task: ``output_type: generate_until``, prompt
      ``"Question: {{question}}\\nAnswer:"`` (:data:`LM_EVAL_PROMPT`), target = the reference answer, greedy
      generation of at most ``max_gen_toks`` tokens until ``"Question:"`` (or the model's end of text);
      metrics ``exact_match`` (ignoring case, punctuation and leading/trailing white space) and ``token_f1``
      (token-overlap F1, more forgiving for free-text answers), both averaged, higher is better. Its header
      comments and ``metadata`` hold ``description``, the number of items written and the number skipped.
      Instruct models usually do better with ``--apply_chat_template`` (reference answers are written to the
      item as a chat turn).

    The references are model-written (``reference_answer_by``), so the scores are agreement with the
    reference model, not accuracy against human labels; the YAML says so.

    Args:
        store: where to write (local or any fsspec URL).
        folder: the task's folder in ``store``, e.g. ``"lm_eval"``; pass it to ``--include_path``.
        task_name: the lm-eval task name, a Python identifier (see :func:`harness_task_name`).
        items: the package's items; those without a reference answer (None or blank) are skipped.
        description: one line on what the benchmark is (comments and ``metadata``, not the prompt).
        max_gen_toks: the generation budget (users can override it with ``--gen_kwargs max_gen_toks=N``).

    Returns:
        ``{"lm_eval_yaml": key, "lm_eval_data": key, "lm_eval_code": key}`` (keys relative to ``store``).

    Raises:
        ValueError: ``task_name`` is not an identifier, ``folder`` leaves the store, no item has a
            reference answer (one-line message naming the task and the count), or two items share an id.
        StorageError / OSError: a write failed.
    """
    _check_name(task_name)
    kept = _with_references(task_name, items)
    skipped = len(items) - len(kept)
    keys = {
        "lm_eval_yaml": _key(folder, f"{task_name}.yaml"),
        "lm_eval_data": _key(folder, f"{task_name}.jsonl"),
        "lm_eval_code": _key(folder, f"{task_name}.py"),
    }
    rows = [{"id": it.id, "question": it.item, "target": it.reference_answer} for it in kept]
    answered_by = sorted({it.reference_answer_by for it in kept if it.reference_answer_by})
    config: dict[str, Any] = {
        "task": task_name,
        "custom_dataset": _Function(f"{task_name}.load_docs"),
        "output_type": "generate_until",
        "test_split": "test",
        "doc_to_text": LM_EVAL_PROMPT,
        "doc_to_target": "{{target}}",
        "target_delimiter": " ",
        "generation_kwargs": {"until": ["Question:"], "do_sample": False, "max_gen_toks": max_gen_toks},
        "metric_list": [
            {
                "metric": "exact_match",
                "aggregation": "mean",
                "higher_is_better": True,
                "ignore_case": True,
                "ignore_punctuation": True,
                "regexes_to_ignore": [r"^\s+", r"\s+$"],
            },
            {"metric": _Function(f"{task_name}.token_f1"), "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {
            "version": 1.0,
            "description": _one_line(description),
            "items": len(kept),
            "skipped_without_reference_answer": skipped,
            "reference_answers": "; ".join(answered_by) or "model-written",
        },
    }
    header = (
        f"# lm-evaluation-harness task written by dataswarms: {_one_line(description)}\n"
        f"# {len(kept)} items with a reference answer ({skipped} without one skipped). The targets are\n"
        "# model-written reference answers, not human labels: the scores measure agreement with that model.\n"
        f"# Run: lm_eval --model hf --model_args pretrained=MODEL --tasks {task_name} --include_path <this folder>\n"
    )
    body = yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    # data and code first, the YAML last: lm-eval only sees the task once its files are all there
    store.write_jsonl(keys["lm_eval_data"], rows)
    store.write_text(keys["lm_eval_code"], _LM_EVAL_MODULE)
    store.write_text(keys["lm_eval_yaml"], header + body)
    return keys


# -- inspect_ai --------------------------------------------------------------------------------------

_INSPECT_TEMPLATE = '''"""inspect_ai task written by dataswarms: {name}.

Run: ``inspect eval inspect_task.py --model MODEL``; choose the scorer with ``-T scorer=NAME``, one of:
{scorers}.

The samples are read from ``{data}`` next to this file: input = the item, target = its
reference answer. The targets are model-written reference answers, not human labels: the scores measure
agreement with that model. {n} items with a reference answer ({skipped} without one skipped).
"""

from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import FieldSpec, json_dataset
from inspect_ai.scorer import includes, match, model_graded_fact
from inspect_ai.solver import generate

DESCRIPTION = {description}
DATA_FILE = Path(__file__).resolve().with_name({data_literal})
SCORERS = {{"includes": includes, "match": match, "model_graded_fact": model_graded_fact}}


@task
def {name}(scorer: str = "includes") -> Task:
    """The benchmark as an inspect_ai task. ``scorer``: ``includes`` (the reference answer occurs in the
    answer, case ignored), ``match`` (at its end, numbers normalised) or ``model_graded_fact`` (a grader
    model, by default the one evaluated, compares the two)."""
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {{sorted(SCORERS)}}, got {{scorer!r}}")
    dataset = json_dataset(
        str(DATA_FILE),
        FieldSpec(input="input", target="target", id="id", metadata=["reference_answer_by", "generator"]),
        name="{name}",
    )
    return Task(
        dataset=dataset,
        solver=generate(),
        scorer=SCORERS[scorer](),
        metadata={{"description": DESCRIPTION, "reference_answers": "model-written"}},
    )
'''


def write_inspect_task(
    store: Store, folder: str, task_name: str, items: Sequence[BenchmarkItem], *, description: str
) -> dict[str, str]:
    """Write an inspect_ai task for ``items`` under ``<folder>/`` of ``store``.

    Files (keys relative to ``store``; ``folder`` ``""`` or ``"."`` is the store's root):

    * ``<folder>/inspect_items.jsonl``: one row per item with a reference answer: ``id``, ``input`` (the item
      text), ``target`` (the reference answer), ``reference_answer_by`` and ``generator``.
    * ``<folder>/inspect_task.py``: an ``@task`` function named ``task_name`` returning
      ``Task(dataset=json_dataset(<inspect_items.jsonl next to the file>, FieldSpec(...)), solver=generate(),
      scorer=...)``. The scorer is chosen at run time with ``-T scorer=NAME`` (:data:`INSPECT_SCORERS`):
      ``includes`` (default: the reference answer occurs in the answer, case ignored), ``match`` or
      ``model_graded_fact``. The module docstring says the targets are model-written and how many items
      were skipped; ``DESCRIPTION`` holds ``description``.

    One inspect task per folder (the file names are fixed). Items without a reference answer (None or
    blank) are skipped.

    Returns:
        ``{"inspect_task": key, "inspect_data": key}`` (keys relative to ``store``).

    Raises:
        ValueError: ``task_name`` is not an identifier, ``folder`` leaves the store, no item has a
            reference answer (one-line message naming the task and the count), or two items share an id.
        StorageError / OSError: a write failed.
    """
    _check_name(task_name)
    kept = _with_references(task_name, items)
    keys = {"inspect_task": _key(folder, INSPECT_TASK_FILE), "inspect_data": _key(folder, INSPECT_DATA_FILE)}
    rows = [
        {
            "id": it.id,
            "input": it.item,
            "target": it.reference_answer,
            "reference_answer_by": it.reference_answer_by,
            "generator": it.generator,
        }
        for it in kept
    ]
    source = _INSPECT_TEMPLATE.format(
        name=task_name,
        scorers=", ".join(INSPECT_SCORERS),
        data=INSPECT_DATA_FILE,
        data_literal=_py_str(INSPECT_DATA_FILE),
        description=_py_str(_one_line(description)),
        n=len(kept),
        skipped=len(items) - len(kept),
    )
    store.write_jsonl(keys["inspect_data"], rows)
    store.write_text(keys["inspect_task"], source)
    return keys
