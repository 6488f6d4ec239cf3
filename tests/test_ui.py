"""A search as the Prefect UI shows it, checked in a real browser: ``dataswarms run`` (the real command, its
terminal kept quiet) against a real ``prefect server start`` with the UI, then the flow-run page in headless
Chromium — the Logs tab (each iteration's utilities and timings), the Artifacts tab (the progress artifact at
100 %, the report, the metrics table), the report's plot (an image that loaded) and the table.

Needs Debian's ``/usr/bin/chromium`` and the ``playwright`` package (no browser download); the test fails
with how to install them when they are missing. Full-page screenshots go to ``$DATASWARMS_TEST_ARTIFACTS``
(default: the test's temporary folder).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from services import api_client, chromium_page, flow_run_page_text, open_artifact, prefect_server
from tiny import tiny_search_config

RUN = "ui-run"


def _screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DATASWARMS_TEST_ARTIFACTS") or tmp_path / "screenshots") / "test_ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _run_command(config: Path, api_url: str, home: Path) -> tuple[str, str]:
    """``dataswarms run --config CONFIG`` against ``api_url``, as a user runs it; returns (output, flow run id)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # the command's own defaults
    env.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(home), COLUMNS="200")
    exe = shutil.which("dataswarms", path=os.path.dirname(sys.executable))
    done = subprocess.run(
        [exe, "run", "--config", str(config)], env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output, re.search(r"/runs/flow-run/([0-9a-f-]{36})", output).group(1)


def _image_loaded(page, timeout_ms: float = 30_000) -> dict:
    """Wait for the page's first ``data:image/png`` image to finish loading; return its size."""
    page.wait_for_function(
        "() => [...document.images].some(i => i.src.startsWith('data:image/png') && i.complete && i.naturalWidth > 0)",
        timeout=timeout_ms,
    )
    return page.evaluate(
        "() => { const i = [...document.images].find(i => i.src.startsWith('data:image/png'));"
        " return {width: i.naturalWidth, height: i.naturalHeight, shown: i.getBoundingClientRect().width}; }"
    )


def test_a_search_is_visible_in_the_prefect_ui(format_model_dir, tmp_path):
    shots = _screenshots(tmp_path)
    cfg = tiny_search_config(format_model_dir, tmp_path / "runs", RUN)
    config = tmp_path / "ui.yaml"
    config.write_text(yaml.safe_dump(cfg.public_dict()))
    database = f"sqlite+aiosqlite:///{tmp_path / 'server-home' / 'prefect.db'}"
    with prefect_server(database, tmp_path / "server-home", ui=True) as api_url:
        output, flow_run_id = _run_command(config, api_url, tmp_path / "client-home")

        # The terminal stays as it was: the command's lines, no Prefect log records.
        assert "global best utility" in output
        assert not re.search(r"\| (INFO|DEBUG) +\|", output), output[-4000:]
        assert "iteration 0: utilities" not in output

        # The API has the INFO rows the CLI's logging settings let through, and the finished progress artifact.
        from prefect.client.schemas.filters import ArtifactFilter, LogFilter

        with api_client(api_url) as client:
            logs = client.read_logs(LogFilter(flow_run_id={"any_": [flow_run_id]}), limit=200)
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id={"any_": [flow_run_id]})
            )
        info = [log.message for log in logs if log.level == 20]
        for k in (0, 1):
            assert any(m.startswith(f"iteration {k}: utilities ") and "seconds: synthesis" in m for m in info)
        progress = next(a for a in artifacts if a.type == "progress")
        assert progress.data == 100

        with chromium_page(viewport=(1400, 2400)) as page:  # tall: more log rows in the screenshots
            texts = flow_run_page_text(
                api_url, flow_run_id, shots, tabs=("Logs", "Artifacts"), page=page,
                expect={"Logs": "iteration 1: utilities", "Artifacts": f"{RUN}-report"},
            )  # fmt: skip
            logs_tab, artifacts_tab = texts["Logs"], texts["Artifacts"]
            for line in ("iteration 0: utilities g0 ", "iteration 1: utilities g0 ", "seconds: synthesis"):
                assert line in logs_tab, line
            for task_run in ("synthesis-iter0000", "scoring-iter0001-generators", "pso-iter0001-generators"):
                assert task_run in logs_tab, task_run  # log rows name their task run
            for key in (f"{RUN}-progress", f"{RUN}-report", f"{RUN}-metrics", f"{RUN}-package"):
                assert key in artifacts_tab, key
            assert f"Progress of {RUN}: done" in artifacts_tab

            progress_page = open_artifact(page, api_url, flow_run_id, f"{RUN}-progress", shots, "Progress:")
            assert "Progress: 100%" in progress_page

            report_page = open_artifact(
                page, api_url, flow_run_id, f"{RUN}-report", shots, "Utility per iteration"
            )
            plot = _image_loaded(page)
            assert plot["width"] > 0 and plot["height"] > 0 and plot["shown"] > 0, plot
            page.screenshot(path=str(shots / f"artifact-{RUN}-report.png"), full_page=True)  # the plot drawn
            assert f"Data Swarms search {RUN}" in report_page and "global best utility" in report_page

            table_page = open_artifact(page, api_url, flow_run_id, f"{RUN}-metrics", shots, "particle")
            for column in ("iteration", "particle", "utility", "global_best_utility", "seconds_synthesis"):
                assert column in table_page, column
            assert "g0" in table_page and "g2" in table_page
