"""Write docker/gpu-pool-template.json: the base job template of the `dataswarms-gpu-docker` work pool.

It starts from prefect-docker's own default (``DockerWorker.get_default_base_job_template()``) and changes
only what a GPU flow run of dataswarms needs:

- every container asks Docker for GPUs. prefect-docker's job configuration has no GPU field, so the request
  goes through ``container_create_kwargs`` (passed on to docker-py's ``containers.create``) as
  ``device_requests``, docker-py's ``DeviceRequest`` in dict form: by default
  ``{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}``, all GPUs (``docker run --gpus all``).
  The job variable ``gpu_device_requests`` changes it per deployment, e.g.
  ``[{"driver": "nvidia", "device_ids": ["0"], "capabilities": [["gpu"]]}]`` for the first GPU only;
- ``shm_size`` (default 8g): PyTorch and vLLM share tensors between processes through /dev/shm, whose
  Docker default is 64 MB;
- the image defaults to ``dataswarms:gpu`` (docker/Dockerfile.gpu), the network to ``dataswarms`` (the
  network docker/compose.yaml creates, where ``prefect-server`` and ``s3`` resolve) and the volumes to the
  named volume ``dataswarms-data`` at /data (caches and local runs, shared with the compose services);
- nothing secret: S3 settings and credentials reach a flow-run container through the deployment's ``env``
  job variable, best as references to Prefect Secret blocks (``"AWS_SECRET_ACCESS_KEY":
  "{{ prefect.blocks.secret.s3-secret-key }}"``), which the worker resolves when it starts the container.
  (Prefect's server refuses ``{{ $VAR }}`` environment placeholders in a pool's job configuration, so the
  worker's own environment cannot be forwarded from here.)

``container_create_kwargs`` is therefore no longer a job variable here: a deployment that needs other
docker-py arguments edits this script (or the JSON) and recreates the pool.

Run ``python docker/gpu_pool_template.py`` (with prefect-docker installed: ``pip install
'dataswarms[service]'``) to rewrite the JSON after upgrading prefect-docker; tests/test_docker.py checks the
JSON against the installed prefect-docker.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).with_name("gpu-pool-template.json")
IMAGE = "dataswarms:gpu"
NETWORK = "dataswarms"
VOLUME = "dataswarms-data:/data"
ALL_GPUS = [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}]
SHM_SIZE = "8g"


def default_template() -> dict[str, Any]:
    """prefect-docker's default base job template for the docker worker."""
    from prefect_docker.worker import DockerWorker

    return DockerWorker.get_default_base_job_template()


def build_template(default: dict[str, Any] | None = None) -> dict[str, Any]:
    """The GPU pool's template: prefect-docker's ``default`` with the changes of the module docstring."""
    template = copy.deepcopy(default if default is not None else default_template())
    job, props = template["job_configuration"], template["variables"]["properties"]

    job["container_create_kwargs"] = {
        "device_requests": "{{ gpu_device_requests }}",
        "shm_size": "{{ shm_size }}",
    }
    props.pop("container_create_kwargs")

    props["image"]["default"] = IMAGE
    props["networks"]["default"] = [NETWORK]
    props["volumes"]["default"] = [VOLUME]
    props["env"]["description"] = (
        "Environment variables to set when starting a flow run. S3 credentials: reference Prefect Secret "
        'blocks, e.g. {"AWS_SECRET_ACCESS_KEY": "{{ prefect.blocks.secret.s3-secret-key }}"}.'
    )
    props["gpu_device_requests"] = {
        "title": "GPU device requests",
        "description": (
            "Docker device requests of every flow-run container (docker-py DeviceRequest fields: driver, "
            "count, device_ids, capabilities, options). Default: all GPUs, as `docker run --gpus all`; "
            'the first GPU only: [{"driver": "nvidia", "device_ids": ["0"], "capabilities": [["gpu"]]}].'
        ),
        "type": "array",
        "items": {"type": "object", "additionalProperties": True},
        "default": ALL_GPUS,
    }
    props["shm_size"] = {
        "title": "Shared memory size",
        "description": "Size of /dev/shm in flow-run containers (PyTorch and vLLM need more than 64 MB).",
        "type": "string",
        "default": SHM_SIZE,
    }
    template["variables"]["description"] = (
        "Docker work pool for dataswarms' GPU flow runs (docker/gpu-pool-template.json, written by "
        "docker/gpu_pool_template.py): every container requests GPUs.\n\n"
        + template["variables"].get("description", "")
    )
    return template


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else TEMPLATE_PATH
    path.write_text(json.dumps(build_template(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
