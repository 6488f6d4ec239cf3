"""Harness exports of a benchmark package (dataswarms_core.harness): lm-evaluation-harness really runs the
written task (tiny random Llama in seconds; SmolLM2 with hand-checked answers), also from a copy of the folder
and through the ``lm_eval`` command; inspect_ai loads the task file and scores it with its mock model."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dataswarms_core.harness import harness_task_name, write_inspect_task, write_lm_eval_task
from dataswarms_core.records import BenchmarkItem
from dataswarms_core.storage import Store

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

TASK = "dataswarms_unit"
QA = [  # (item, reference answer); None: the reference model gave no answer
    ("What is 2 + 2?", "4"),
    ("What is the capital of France?", "Paris"),
    ("Name a prime number below 5.", None),
    ("What colour is the sky on a clear day?", "Blue."),
    ("How many legs does a spider have?", "8"),
]


def make_item(i: int, text: str, reference: str | None) -> BenchmarkItem:
    return BenchmarkItem(
        id=f"ds-{i:016x}", item=text, generator="g3", iteration=2, call=0, index=i, seed=7, run_name="unit",
        config_hash="c0ffee", objective="difficulty", base_model="tiny", base_model_fingerprint="f00d",
        reference_answer=reference, reference_answer_by="model-written: ref-model" if reference else None,
        reference_answer_failure=None if reference else "no answer",
    )  # fmt: skip


def make_items(qa=QA) -> list[BenchmarkItem]:
    return [make_item(i, q, a) for i, (q, a) in enumerate(qa)]


def write_package(root: Path, items: list[BenchmarkItem], task: str = TASK) -> dict[str, str]:
    store = Store(str(root))
    files = write_lm_eval_task(store, "lm_eval", task, items, description="unit-test benchmark")
    files.update(write_inspect_task(store, ".", task, items, description="unit-test benchmark"))
    return files


def normalise(text: str) -> str:
    """What the task's exact_match compares: white space at the ends, case and punctuation removed."""
    return text.strip().lower().translate(str.maketrans("", "", string.punctuation))


def yaml_with_functions(text: str) -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def run_lm_eval(model_dir: Path, include_path: Path, task: str, limit: int | None, **kwargs) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={model_dir},device=cpu", tasks=[task],
        task_manager=TaskManager(include_path=str(include_path)), limit=limit, log_samples=True, **kwargs,
    )  # fmt: skip


def check_samples(results: dict, task: str) -> list[dict]:
    """Each sample's exact_match is the hand-computed comparison; token_f1 is in [0, 1]."""
    samples = results["samples"][task]
    for s in samples:
        answer = s["filtered_resps"][0]
        assert s["exact_match"] == float(normalise(answer) == normalise(s["target"])), (answer, s["target"])
        assert 0.0 <= s["token_f1"] <= 1.0
        assert s["target"] == s["doc"]["target"]
    return samples


# -- files and contract ------------------------------------------------------------------------------


def test_harness_task_name():
    assert harness_task_name("GSM8K run/2") == "dataswarms_gsm8k_run_2"
    assert harness_task_name("--quick--start--") == "dataswarms_quick_start"
    assert harness_task_name("été") == "dataswarms_t"
    assert harness_task_name("") == harness_task_name("///") == "dataswarms"
    for name in ("a b", "2024-01-01", "x.y", "class"):
        assert harness_task_name(name).isidentifier()


def test_files_skip_unanswered_items_and_hold_no_absolute_path(tmp_path):
    files = write_package(tmp_path / "pkg", make_items())
    assert files == {
        "lm_eval_yaml": f"lm_eval/{TASK}.yaml",
        "lm_eval_data": f"lm_eval/{TASK}.jsonl",
        "lm_eval_code": f"lm_eval/{TASK}.py",
        "inspect_task": "inspect_task.py",
        "inspect_data": "inspect_items.jsonl",
    }
    store = Store(str(tmp_path / "pkg"))
    answered = [it for it in make_items() if it.reference_answer]
    assert store.read_jsonl(files["lm_eval_data"]) == [
        {"id": it.id, "question": it.item, "target": it.reference_answer} for it in answered
    ]
    assert [r["target"] for r in store.read_jsonl(files["inspect_data"])] == ["4", "Paris", "Blue.", "8"]

    config = yaml_with_functions(store.read_text(files["lm_eval_yaml"]))
    assert config["task"] == TASK and config["output_type"] == "generate_until"
    assert config["custom_dataset"] == f"!function {TASK}.load_docs"
    assert config["doc_to_text"] == "Question: {{question}}\nAnswer:"
    assert config["metric_list"][0]["metric"] == "exact_match"
    assert config["metric_list"][0]["ignore_case"] and config["metric_list"][0]["ignore_punctuation"]
    assert config["metadata"]["items"] == 4 and config["metadata"]["skipped_without_reference_answer"] == 1
    assert config["metadata"]["reference_answers"] == "model-written: ref-model"
    assert "model-written" in store.read_text(files["lm_eval_yaml"]).splitlines()[2]
    for key in files.values():
        assert str(tmp_path) not in store.read_text(key), key  # paths are relative: the folder can move


def test_token_f1_of_the_written_module(tmp_path):
    files = write_package(tmp_path, make_items())
    spec = importlib.util.spec_from_file_location("harness_written_module", tmp_path / files["lm_eval_code"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.token_f1(["Paris"], ["Paris."]) == 1.0
    assert module.token_f1(["Paris"], ["The capital is Paris."]) == pytest.approx(0.4)  # P 1/4, R 1
    assert module.token_f1(["blue sky"], ["Grey"]) == 0.0
    assert module.token_f1(["x"], [""]) == 0.0
    docs = module.load_docs(pretrained="ignored", version=1.0)["test"]
    assert docs.num_rows == 4 and docs[1] == {
        "id": "ds-0000000000000001",
        "question": QA[1][0],
        "target": "Paris",
    }


@pytest.mark.parametrize("writer", [write_lm_eval_task, write_inspect_task])
def test_no_reference_answers_is_refused(tmp_path, writer):
    items = make_items([(q, None) for q, _ in QA[:3]] + [("Blank reference?", "  ")])
    with pytest.raises(
        ValueError, match=r"^dataswarms_unit: none of the 4 items has a reference answer"
    ) as exc:
        writer(Store(str(tmp_path)), "h", TASK, items, description="d")
    assert "\n" not in str(exc.value) and "export.answers" in str(exc.value)
    with pytest.raises(ValueError, match="none of the 0 items"):
        writer(Store(str(tmp_path)), "h", TASK, [], description="d")
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("writer", [write_lm_eval_task, write_inspect_task])
def test_bad_task_name_and_folder_are_refused(tmp_path, writer):
    with pytest.raises(ValueError, match="not a Python identifier.*harness_task_name"):
        writer(Store(str(tmp_path)), "h", "my-task", make_items(), description="d")
    with pytest.raises(ValueError, match="leaves the store"):
        writer(Store(str(tmp_path)), "../up", TASK, make_items(), description="d")


def test_writes_through_s3(s3_bucket):
    _, options = s3_bucket
    store = Store("s3://dataswarms-test/runs/unit/packages/iter_0001", options)
    files = write_lm_eval_task(store, "lm_eval", TASK, make_items(), description="d")
    files.update(write_inspect_task(store, "", TASK, make_items(), description="d"))
    assert files["inspect_task"] == "inspect_task.py"
    assert sorted(store.list("lm_eval")) == sorted(f"{TASK}.{ext}" for ext in ("jsonl", "py", "yaml"))
    assert len(store.read_jsonl("inspect_items.jsonl")) == 4 and "@task" in store.read_text("inspect_task.py")


# -- lm-evaluation-harness runs the task ---------------------------------------------------------------


def test_lm_eval_runs_the_task_on_a_tiny_model(tmp_path, tiny_model_dir):
    write_package(tmp_path / "pkg", make_items())
    out = run_lm_eval(
        tiny_model_dir, tmp_path / "pkg" / "lm_eval", TASK, limit=3, gen_kwargs="max_gen_toks=8"
    )
    result = out["results"][TASK]
    assert 0.0 <= result["exact_match,none"] <= 1.0 and 0.0 <= result["token_f1,none"] <= 1.0
    assert out["n-samples"][TASK] == {"original": 4, "effective": 3}
    samples = check_samples(out, TASK)
    assert [s["doc"]["id"] for s in samples] == [
        "ds-0000000000000000",
        "ds-0000000000000001",
        "ds-0000000000000003",
    ]
    prompt = json.dumps("Question: What is 2 + 2?\nAnswer:")[1:-1]  # as it appears in the JSON of the request
    assert prompt in json.dumps(samples[0]["arguments"])
    assert out["configs"][TASK]["metadata"]["skipped_without_reference_answer"] == 1


def test_lm_eval_command_runs_a_copied_package_from_elsewhere(tmp_path, tiny_model_dir):
    """The folder is copied, the original removed, and the ``lm_eval`` command run from another directory."""
    write_package(tmp_path / "pkg", make_items())
    moved = tmp_path / "elsewhere" / "copy-of-pkg"
    shutil.copytree(tmp_path / "pkg", moved)
    shutil.rmtree(tmp_path / "pkg")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    exe = Path(sys.executable).with_name("lm_eval")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [str(exe), "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--device", "cpu", "--tasks", TASK,
         "--include_path", str(moved / "lm_eval"), "--limit", "2", "--gen_kwargs", "max_gen_toks=4",
         "--output_path", str(cwd / "out")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    [results_file] = glob.glob(str(cwd / "out" / "**" / "results_*.json"), recursive=True)
    results = json.loads(Path(results_file).read_text())
    assert results["n-samples"][TASK] == {"original": 4, "effective": 2}
    assert 0.0 <= results["results"][TASK]["exact_match,none"] <= 1.0


@pytest.mark.real_model
def test_lm_eval_with_smollm2_hand_checked(tmp_path):
    """SmolLM2-135M-Instruct (greedy, chat template) answers "The capital of France is Paris." and "A spider
    has 8 legs." (checked by hand): references written as those sentences match exactly, "4" for its
    'The answer is "2".' and "Blue" for its long sky sentence do not."""
    from dataswarms_core.models import resolve_model

    qa = [
        ("What is the capital of France?", "The capital of France is Paris"),
        ("What is 2 + 2?", "4"),
        ("What color is the sky on a clear day?", "Blue"),
        ("How many legs does a spider have?", "A spider has 8 legs."),
    ]
    task = "dataswarms_smol"
    write_package(tmp_path, make_items(qa), task)
    out = run_lm_eval(
        resolve_model("smollm2-135m-instruct"), tmp_path / "lm_eval", task, limit=None,
        gen_kwargs="max_gen_toks=16", apply_chat_template=True,
    )  # fmt: skip
    assert out["n-samples"][task] == {"original": 4, "effective": 4}
    result = out["results"][task]
    assert 0.0 <= result["exact_match,none"] <= 1.0 and 0.0 < result["token_f1,none"] <= 1.0
    by_id = {s["doc"]["id"]: s for s in check_samples(out, task)}
    answers = {i: by_id[i]["filtered_resps"][0] for i in by_id}
    assert by_id["ds-0000000000000000"]["exact_match"] == 1.0, answers
    assert by_id["ds-0000000000000001"]["exact_match"] == 0.0, answers


# -- inspect_ai loads and scores the task ------------------------------------------------------------


def _mock_model(answers: dict[str, str]):
    """inspect's mock model answering from ``answers``, with token usage set (else it counts tokens with a
    tiktoken encoding it would download)."""
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    def reply(messages, tools, tool_choice, config):
        output = ModelOutput.from_content(model="mockllm", content=answers[messages[-1].text])
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    return get_model("mockllm/model", custom_outputs=reply)


def test_inspect_loads_the_task_from_a_copy_and_scores_it(tmp_path):
    from inspect_ai import eval as inspect_eval
    from inspect_ai._eval.loader import load_tasks

    write_package(tmp_path / "pkg", make_items())
    shutil.copytree(tmp_path / "pkg", tmp_path / "moved")
    shutil.rmtree(tmp_path / "pkg")
    [task] = load_tasks([f"{tmp_path / 'moved' / 'inspect_task.py'}@{TASK}"])
    assert task.name == TASK
    samples = list(task.dataset)
    answered = [it for it in make_items() if it.reference_answer]
    assert [(s.id, s.input, s.target) for s in samples] == [
        (it.id, it.item, it.reference_answer) for it in answered
    ]
    assert samples[0].metadata == {"reference_answer_by": "model-written: ref-model", "generator": "g3"}
    assert task.metadata["description"] == "unit-test benchmark"

    answers = {QA[0][0]: "The answer is 4.", QA[1][0]: "Lyon", QA[3][0]: "It is blue.", QA[4][0]: "Six"}
    [log] = inspect_eval(task, model=_mock_model(answers), log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    [score] = log.results.scores
    assert score.name == "includes" and log.results.completed_samples == 4
    assert score.metrics["accuracy"].value == pytest.approx(0.5)  # "4" and "blue." occur; "Paris", "8" do not
    assert {s.id: s.scores["includes"].value for s in log.samples} == {
        answered[0].id: "C",
        answered[1].id: "I",
        answered[2].id: "C",
        answered[3].id: "I",
    }


def test_inspect_scorer_argument(tmp_path):
    from inspect_ai._eval.loader import load_tasks

    write_package(tmp_path, make_items())
    [task] = load_tasks([f"{tmp_path / 'inspect_task.py'}@{TASK}"], {"scorer": "match"})
    assert len(task.scorer) == 1
    with pytest.raises(ValueError, match="scorer must be one of"):
        load_tasks([f"{tmp_path / 'inspect_task.py'}@{TASK}"], {"scorer": "nope"})


def test_odd_descriptions_are_written_safely(tmp_path):
    from inspect_ai._eval.loader import load_tasks

    description = 'a "quoted" \'one\'\n"""triple""" \\ back 🚀 {braces} # not a comment'
    store = Store(str(tmp_path))
    files = write_lm_eval_task(store, "lm_eval", TASK, make_items(), description=description)
    write_inspect_task(store, ".", TASK, make_items(), description=description)
    one_line = " ".join(description.split())
    assert yaml_with_functions(store.read_text(files["lm_eval_yaml"]))["metadata"]["description"] == one_line
    [task] = load_tasks([f"{tmp_path / 'inspect_task.py'}@{TASK}"])
    assert task.metadata["description"] == one_line
