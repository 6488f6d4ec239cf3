"""Task loading: every accepted layout, and one clear error per bad file."""

import json

import pandas as pd
import pytest

from dataswarms_core.data import GENERIC_DOMAIN, load_task
from dataswarms_core.errors import DataError


def test_builtin_quickstart_task():
    task = load_task("gsm8k-quickstart")
    assert (len(task.dev), len(task.test)) == (300, 100)
    assert task.domain == "grade-school math word problems"
    assert list(task.dev.columns) == ["input", "output"]
    assert task.dev["output"].notna().all()
    assert len(task.content_hash) == 64


def test_json_layout_of_shared_data(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {
                "name": "mini",
                "dev": [{"input": " Q1 ", "output": 3}, {"input": "Q2"}],
                "test": [{"input": "Q3", "output": "x"}],
            }
        )
    )
    task = load_task(str(path), domain="arithmetic")
    assert task.name == "mini" and task.domain == "arithmetic"
    assert task.dev["input"].tolist() == ["Q1", "Q2"]
    assert task.dev["output"].tolist() == ["3", None]
    assert task.test["output"].tolist() == ["x"]


def test_jsonl_csv_parquet_and_split_column(tmp_path):
    rows = [
        {"input": "a?", "output": "1", "split": "dev"},
        {"input": "b?", "output": "2", "split": "test"},
        {"input": "c?", "output": None, "split": "dev"},
    ]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "t.parquet")
    for name in ("t.jsonl", "t.csv", "t.parquet"):
        task = load_task(str(tmp_path / name))
        assert task.dev["input"].tolist() == ["a?", "c?"], name
        assert task.dev["output"].tolist() == ["1", None], name
        assert task.test["input"].tolist() == ["b?"], name
        assert task.domain == GENERIC_DOMAIN
    (tmp_path / "only.csv").write_text("input\nx?\ny?\n")
    only = load_task(str(tmp_path / "only.csv"), max_dev_items=1)
    assert only.dev["input"].tolist() == ["x?"] and only.test.empty


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "task file not found"),
        ("t.txt", "hello", "unknown file type '.txt'"),
        ("t.json", "{not json", "cannot parse as JSON"),
        ("t.json", json.dumps({"train": []}), "JSON object has no 'dev' list"),
        ("t.json", json.dumps({"dev": [{"question": "q"}]}), "dev has no 'input' column"),
        ("t.json", json.dumps({"dev": ["q"]}), r"dev\[0\] must be an object"),
        ("t.json", json.dumps({"dev": []}), "no dev items"),
        ("t.csv", "question\nq?\n", "no 'input' column"),
        ("t.jsonl", '{"input": "ok"}\n{"input": ""}\n', "row 1 has an empty or non-text 'input'"),
        ("t.csv", "input,split\nq,train\n", "column 'split' has values"),
        ("t.jsonl", '{"input": "ok"}\n[1, 2]\n', "line 2 is not a JSON object"),
        ("t.jsonl", '{"input": "ok"}\n{"input": \n', "line 2 is not valid JSON"),
    ],
)
def test_bad_files_get_one_clear_error_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        load_task(str(path))
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_protocol_is_a_data_error():
    with pytest.raises(DataError, match="foo://x/y.json: cannot read the file"):
        load_task("foo://x/y.json")
