"""The fsspec store: local atomic writes, and S3 through s3fs against moto's server on 127.0.0.1."""

import pandas as pd
import pytest

from dataswarms_core.errors import StorageError
from dataswarms_core.storage import Store, join


def _roundtrip(store: Store, tmp_path):
    store.write_json("a/b.json", {"x": 1})
    assert store.read_json("a/b.json") == {"x": 1}
    store.write_jsonl("rows.jsonl", [{"i": 1}, {"i": 2}])
    assert store.read_jsonl("rows.jsonl") == [{"i": 1}, {"i": 2}]
    frame = pd.DataFrame({"u": [0.5, 0.25]})
    store.write_parquet("m.parquet", frame)
    assert store.read_parquet("m.parquet")["u"].tolist() == [0.5, 0.25]
    local = tmp_path / "folder"
    (local / "sub").mkdir(parents=True)
    (local / "f.txt").write_text("hello")
    (local / "sub" / "g.txt").write_text("world")
    url = store.upload_dir(local, "up")
    assert url == store.url("up")
    with store.local_dir("up") as got:
        assert (got / "f.txt").read_text() == "hello" and (got / "sub" / "g.txt").read_text() == "world"
    assert store.list("a") == ["b.json"]
    assert store.exists("rows.jsonl") and not store.exists("nope")
    with pytest.raises(StorageError, match="nope.json: not found"):
        store.read_json("nope.json")
    store.remove("a")
    assert not store.exists("a/b.json")


def test_local_store(tmp_path):
    store = Store(str(tmp_path / "run"))
    _roundtrip(store, tmp_path)
    store.write_text("x.txt", "1")
    assert not [p for p in (tmp_path / "run").iterdir() if ".tmp-" in p.name]  # no temporary files left


def test_s3_store_against_moto_server(s3_bucket, tmp_path):
    endpoint, options = s3_bucket
    store = Store("s3://dataswarms-test/runs/r1", options)
    _roundtrip(store, tmp_path)
    assert "hunter" not in repr(Store("s3://b", {"secret": "hunter2"}))
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    assert fs.exists("dataswarms-test/runs/r1/rows.jsonl")


def test_join():
    assert join("s3://b/p/", "x", "/y/") == "s3://b/p/x/y"
    assert join("/tmp/a", "", "b") == "/tmp/a/b"
