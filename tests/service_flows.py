"""A tiny flow deployed from this folder by tests/test_services.py (a local deployment source for a process
work pool): it logs one INFO line naming the worker that ran it, records the same in a markdown artifact,
and returns where it ran."""

from __future__ import annotations

import os
import socket

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

GREETING = "dataswarms service check"
ARTIFACT_KEY = "service-check"


@flow(name="service-check", log_prints=False)
def service_check(tag: str = "manual") -> dict[str, object]:
    """Log ``GREETING`` with the worker's name, host and pid at INFO, record them in a markdown artifact
    (key ``ARTIFACT_KEY``) and return them.

    Args:
        tag: A label echoed in the log line (tells the test's runs apart).

    Returns:
        ``{"tag", "worker", "worker_env", "hostname", "pid"}``: ``worker`` is ``PREFECT__WORKER_NAME``, which
        the worker sets in the flow run's environment; ``worker_env`` is ``DATASWARMS_TEST_WORKER``, which the
        test gives each worker's environment (a process worker passes its environment on to its flow runs).
    """
    info = {
        "tag": tag,
        "worker": os.environ.get("PREFECT__WORKER_NAME", "?"),
        "worker_env": os.environ.get("DATASWARMS_TEST_WORKER", "?"),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }
    get_run_logger().info(
        "%s: tag=%s worker=%s worker_env=%s host=%s pid=%s",
        GREETING, tag, info["worker"], info["worker_env"], info["hostname"], info["pid"],
    )  # fmt: skip
    create_markdown_artifact(
        "\n".join(f"- **{key}**: {value}" for key, value in info.items()),
        key=ARTIFACT_KEY,
        description=f"{GREETING}: where tag={tag} ran",
    )
    return info
