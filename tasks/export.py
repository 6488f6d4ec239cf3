"""Export: the benchmark package, metrics, report, summary.json, Prefect artifacts.

The report artifact is ``export/report.md`` with its plots inlined as PNG data URIs (``![..](data:image/png;
base64,...)``): the Prefect UI (3.9, both UIs) renders those in a markdown artifact, while the file's
relative links (``utilities.png``) point nowhere in the UI. The PNG is reduced to a 256-colour palette (and
to at most :data:`INLINE_MAX_WIDTH` pixels wide), which keeps a plot's data URI around 20-30 kB. An image
artifact (``create_image_artifact``) would show the same picture but also prints its whole URL as a link.
"""

from __future__ import annotations

import base64
import io
import re

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dataswarms_core import stages
from dataswarms_core.config import RunConfig
from dataswarms_core.records import RunInfo, RunSummary
from dataswarms_core.stages.layout import EXPORT_DIR
from dataswarms_core.storage import Store

from ._log import export_line, log_info
from ._retry import RETRY
from .package import artifact_key, publish_card


@task(**RETRY, name="export-results", task_run_name="export")
def export_results(config: RunConfig, info: RunInfo, started_at: float) -> RunSummary:
    """Write every export and ``summary.json``; publish a table artifact (utility per iteration and
    particle) and a markdown artifact (the report, its plots inlined). Returns the summary (and logs it)."""
    run = stages.run_store(config)
    summary = stages.export_run(config, info, run, started_at)
    metrics = run.read_parquet(f"{EXPORT_DIR}/metrics.parquet")
    key = artifact_key(summary.run_name)
    create_table_artifact(
        key=f"{key}-metrics",
        table=metrics.round(4).to_dict(orient="records"),
        description=f"Per-iteration metrics of {summary.run_name} ({summary.objective})",
    )
    create_markdown_artifact(
        key=f"{key}-report",
        markdown=inline_images(run.read_text(f"{EXPORT_DIR}/report.md"), run.child(EXPORT_DIR)),
        description=f"Report of {summary.run_name}",
    )
    publish_card(run, summary.run_name, summary.iterations_completed, summary.package_version)
    if summary.adversarial is not None:
        _publish_adversarial(run, summary, key)
    log_info(export_line(summary))
    return summary


INLINE_MAX_WIDTH = 720  # pixels: the plots' own width (6 in at 120 dpi)
_PNG_LINK = re.compile(r"!\[([^\]]*)\]\(([\w.-]+\.png)\)")  # a relative link to a PNG beside the markdown


def png_data_uri(png: bytes, max_width: int = INLINE_MAX_WIDTH) -> str:
    """A small ``data:image/png;base64,...`` URI of a PNG: at most ``max_width`` pixels wide, 256 colours.

    Args:
        png: The PNG's bytes (a matplotlib plot).
        max_width: Wider images are scaled down to this width (aspect ratio kept).

    Returns:
        The data URI.
    """
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    buf = io.BytesIO()
    image.quantize(256).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def inline_images(markdown: str, folder: Store) -> str:
    """``markdown`` with every relative PNG link (``![alt](name.png)``) replaced by the PNG's data URI.

    Args:
        markdown: A report that links PNG files beside it.
        folder: The store the links are relative to.

    Returns:
        The markdown; a link whose file is missing is left as it is.
    """

    def inline(match: re.Match[str]) -> str:
        if not folder.exists(match.group(2)):
            return match.group(0)
        return f"![{match.group(1)}]({png_data_uri(folder.read_bytes(match.group(2)))})"

    return _PNG_LINK.sub(inline, markdown)


POOL_ITEMS_SHOWN = 500  # rows of the pool-items table artifact (all of them are in export/pool_items.jsonl)


def _publish_adversarial(run, summary: RunSummary, key: str) -> None:
    """Table artifacts of an adversarial run: the generalisation curve, the test takers' utilities per
    iteration, and the generated items that entered the pool with their provenance."""
    a = summary.adversarial
    create_table_artifact(
        key=f"{key}-generalisation",
        table=[p.model_dump() for p in a.curve],
        description=f"Generalisation curve of {summary.run_name} (pool: {a.pool}): the best test taker per "
        "iteration, its held-out test and pool scores",
    )
    metrics = run.read_parquet(f"{EXPORT_DIR}/test_takers.parquet")
    create_table_artifact(
        key=f"{key}-test-takers",
        table=metrics.round(4).to_dict(orient="records"),
        description=f"Test-taker utilities (mean judge score on the pool) of {summary.run_name}",
    )
    items = run.read_jsonl(f"{EXPORT_DIR}/pool_items.jsonl")
    create_table_artifact(
        key=f"{key}-pool-items",
        table=items[:POOL_ITEMS_SHOWN],
        description=f"Generated items that entered the pool of {summary.run_name} ({len(items)}; first "
        f"{min(len(items), POOL_ITEMS_SHOWN)} shown; all in export/pool_items.jsonl)",
    )
