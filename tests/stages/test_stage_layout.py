"""Stage ``layout`` called directly (no Prefect): keys, run names, the checkpoint pointer and progress record."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from tiny import tiny_search_config

from dataswarms_core import stages
from dataswarms_core.errors import FormatError
from dataswarms_core.records import CheckpointPointer, Progress
from dataswarms_core.stages.layout import PROGRESS, iter_key, swarm_iter_key, swarm_key


@pytest.fixture(scope="module")
def layout_run(tiny_model_dir, tmp_path_factory):
    """A configuration and its (empty) run store; no model is loaded."""
    cfg = tiny_search_config(tiny_model_dir, tmp_path_factory.mktemp("layout"), "layout-run")
    return cfg, stages.run_store(cfg)


def test_keys():
    assert swarm_key("generators", 0) == "swarms/generators/iter_0000"
    assert swarm_key("test_takers", 12) == "swarms/test_takers/iter_0012"
    assert iter_key(3) == "iterations/iter_0003"
    assert iter_key(3, "items.jsonl") == "iterations/iter_0003/items.jsonl"
    assert swarm_iter_key(7, "generators", "scoring.json") == "iterations/iter_0007/generators/scoring.json"
    assert swarm_iter_key(0, "test_takers", "pso.json") == "iterations/iter_0000/test_takers/pso.json"


def test_default_run_name(layout_run):
    cfg, _ = layout_run
    assert stages.default_run_name(cfg, "0f3c9a7e-1111-2222-3333-444455556666") == (
        "gsm8k-quickstart-difficulty-0f3c9a7e"
    )
    before = datetime.now(timezone.utc).replace(microsecond=0)
    name = stages.default_run_name(cfg)
    match = re.fullmatch(r"gsm8k-quickstart-difficulty-(\d{8}-\d{6})", name)
    assert match, name
    stamp = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc)
    assert abs((stamp - before).total_seconds()) < 60
    # The task part is the file's stem reduced to letters, digits and '-'; the objective follows it.
    odd = cfg.model_copy(
        update={
            "task": cfg.task.model_copy(update={"source": "s3://bucket/data/My task (v2).final.jsonl"}),
            "scoring": cfg.scoring.model_copy(update={"objective": "novelty"}),
        }
    )
    assert stages.default_run_name(odd, "abc-def") == "My-task-v2-final-novelty-abc"
    no_stem = cfg.model_copy(update={"task": cfg.task.model_copy(update={"source": "__/"})})
    assert stages.default_run_name(no_stem, "abc") == "task-difficulty-abc"


def test_run_store_needs_a_run_name(layout_run):
    cfg, run = layout_run
    assert run.root.endswith("/layout-run")
    with pytest.raises(ValueError, match="run_name must be set"):
        stages.run_store(cfg.model_copy(update={"run_name": None}))


def test_checkpoint_pointer_round_trip_and_completed_iterations(layout_run):
    _, run = layout_run
    assert stages.read_checkpoint_pointer(run) is None
    assert stages.completed_iterations(run) == 0

    first = stages.write_checkpoint_pointer(run, 0, ["generators", "test_takers"], None)
    assert first.swarms == {
        "generators": "swarms/generators/iter_0000",
        "test_takers": "swarms/test_takers/iter_0000",
    }
    assert stages.read_checkpoint_pointer(run) == first
    assert stages.completed_iterations(run) == 0

    last = stages.write_checkpoint_pointer(run, 3, ["generators", "test_takers"], "patience")
    on_disk = json.loads(Path(run.url("checkpoint.json")).read_text())
    assert on_disk["format_version"] == 2 and on_disk["iteration"] == 3 and on_disk["stopped"] == "patience"
    assert on_disk["swarms"] == {
        "generators": "swarms/generators/iter_0003",
        "test_takers": "swarms/test_takers/iter_0003",
    }
    read = stages.read_checkpoint_pointer(run)
    assert read == last and isinstance(read, CheckpointPointer)
    assert read.written and datetime.fromisoformat(read.written).tzinfo is not None
    assert stages.completed_iterations(run) == 3


def test_pointer_of_the_one_swarm_layout_is_refused(tmp_path):
    from dataswarms_core.storage import Store

    run = Store(str(tmp_path / "old"))
    run.write_json("checkpoint.json", {"iteration": 2, "checkpoint": "swarm/iter_0002"})  # dataswarms 0.1
    with pytest.raises(FormatError, match=r"checkpoint\.json: format version 1 .*reads version 2"):
        stages.read_checkpoint_pointer(run)
    with pytest.raises(FormatError):
        stages.completed_iterations(run)


def test_progress_record(layout_run):
    cfg, run = layout_run
    stages.write_progress(cfg, "scoring", 1, detail="t0 (1/1)", utilities=[0.25, 0.5])
    progress = Progress.read(run, PROGRESS)
    assert progress == Progress(
        stage="scoring", iteration=1, max_iterations=cfg.pso.max_iterations, detail="t0 (1/1)",
        utilities=[0.25, 0.5],
    )  # fmt: skip
    assert progress.max_iterations == 2  # tiny_search_config's pso.max_iterations
    stages.write_progress(cfg, "export")  # each write replaces the record
    assert Progress.read(run, PROGRESS) == Progress(stage="export", max_iterations=2)
