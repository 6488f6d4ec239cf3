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


def test_builtin_truthfulqa_task():
    task = load_task("truthfulqa-quickstart")
    assert (len(task.dev), len(task.test)) == (300, 88)
    assert task.domain == "questions that test truthfulness against common misconceptions"
    assert task.dev["output"].notna().all() and task.dev["input"].is_unique
    assert task.dev.iloc[0]["input"] == "What subjects did Einstein flunk in school?"


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


# -- text encodings and line endings (issue "Inputs from outside that break it", kind 4) ---------------------
_ROWS = [
    {"input": "a?", "output": "1", "split": "dev"},
    {"input": "b\u2028c? caf\u00e9 \u00b5", "output": None, "split": "dev"},  # U+2028 is legal inside JSON
    {"input": "d?", "output": "2", "split": "test"},
]


def _text(fmt: str, newline: str) -> str:
    if fmt == "jsonl":
        return newline.join(json.dumps(r, ensure_ascii=False) for r in _ROWS) + newline
    if fmt == "json":
        dev = [{"input": r["input"], "output": r["output"]} for r in _ROWS if r["split"] == "dev"]
        test = [{"input": r["input"], "output": r["output"]} for r in _ROWS if r["split"] == "test"]
        return json.dumps({"dev": dev, "test": test}, ensure_ascii=False, indent=1).replace("\n", newline)
    lines = ["input,output,split"] + [f'"{r["input"]}",{r["output"] or ""},{r["split"]}' for r in _ROWS]
    return newline.join(lines) + newline


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),  # UTF-8 byte-order mark (Excel, Notepad): was "Unexpected UTF-8 BOM"
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
        ("utf-32-be", b"\x00\x00\xfe\xff"),
    ],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_text_format_reads_byte_order_marks_and_line_endings(tmp_path, fmt, encoding, bom, newline):
    path = tmp_path / f"t.{fmt}"
    path.write_bytes(bom + _text(fmt, newline).encode(encoding))
    task = load_task(str(path))
    assert task.dev["input"].tolist() == ["a?", "b\u2028c? caf\u00e9 \u00b5"]
    assert task.dev["output"].tolist() == ["1", None]
    assert task.test["input"].tolist() == ["d?"]


def test_byte_order_mark_of_a_concatenated_jsonl_file(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes('\ufeff{"input": "a?"}\n\ufeff{"input": "b?"}\n'.encode())  # cat a.jsonl b.jsonl
    assert load_task(str(path)).dev["input"].tolist() == ["a?", "b?"]


def test_realistic_corpus_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes("\n".join(json.dumps({"input": q}) for q in ("how?", "why?")).encode("utf-8-sig"))
    assert load_task(str(path)).dev["input"].tolist() == ["how?", "why?"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        # Latin-1 / cp1252 é: the byte and its offset in the file (BOM bytes counted), and the line.
        ("t.jsonl", b'{"input": "a"}\n{"input": "caf\xe9"}\n', r"not valid UTF-8 text: byte 0xe9 at offset 29 \(line 2\)"),
        ("t.json", b'{"dev": [{"input": "caf\xe9"}]}', r"not valid UTF-8 text: byte 0xe9 at offset 23 \(line 1\)"),
        ("t.csv", b"input\r\nok\r\ncaf\x92s\r\n", r"not valid UTF-8 text: byte 0x92 at offset 14 \(line 3\)"),
        ("t.csv", b"\xef\xbb\xbfinput\nq\xff\n", r"not valid UTF-8 text: byte 0xff at offset 10 \(line 2\)"),
        # UTF-16 without a byte-order mark decodes as "UTF-8" full of NULs: refused, not misread.
        ("t.jsonl", '{"input": "a"}\n'.encode("utf-16-le"), "NUL byte at offset 1: not UTF-8 text .UTF-16 without"),
        ("t.csv", "input\nq\n".encode("utf-16-be"), "NUL byte at offset 0: not UTF-8 text"),
        # A byte-order mark whose encoding the bytes then break: named, with the offset.
        ("t.jsonl", b"\xff\xfe{\x00a", r"not valid UTF-16 LE text \(the encoding its byte-order mark names\): byte 0x61 at offset 4"),
        ("t.csv", b"\xfe\xff\x00i\xdc\x00", r"not valid UTF-16 BE text .*: byte 0xdc at offset 4"),
        # Valid UTF-8 whose JSON escapes make text that cannot be written back as UTF-8.
        ("t.json", b'{"dev": [{"input": "ok"}, {"input": "x\\ud83d"}]}', "dev row 1 has an 'input' that is not valid Unicode"),
        ("t.jsonl", b'{"input": "ok", "output": "\\udc00"}\n', "dev row 0 has an 'output' that is not valid Unicode"),
    ],
)  # fmt: skip
def test_undecodable_text_gets_one_line_naming_file_and_offset(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        load_task(str(path))
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_parquet_is_binary_and_keeps_its_text(tmp_path):
    """No decoding for Parquet (a byte-order mark does not apply): text round-trips, a BOM inside a value
    is the value's, and bytes before the magic number are not Parquet."""
    path = tmp_path / "t.parquet"
    pd.DataFrame({"input": ["caf\u00e9 \u2028?", "\ufeffq?"]}).to_parquet(path)
    assert load_task(str(path)).dev["input"].tolist() == ["caf\u00e9 \u2028?", "\ufeffq?"]
    (tmp_path / "bom.parquet").write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with pytest.raises(DataError, match="cannot parse as PARQUET"):
        load_task(str(tmp_path / "bom.parquet"))
