"""Installed import names: flows/ and tasks/ install as ``dataswarms.flows`` and ``dataswarms.tasks`` (nothing
generic in site-packages), from a wheel and from the editable install alike."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
IGNORED = (".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
           ".hypothesis")  # fmt: skip
IMPORTS = "import dataswarms.flows.cli, dataswarms.flows.search, dataswarms.tasks, dataswarms_core.stages"


def _declared_packages() -> tuple[list[str], dict[str, str]]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return setuptools["packages"], setuptools["package-dir"]


def test_every_package_folder_is_declared_under_its_namespaced_name():
    packages, folders = _declared_packages()
    found = set()
    for top, name in (("dataswarms_core", "dataswarms_core"), ("flows", "dataswarms.flows"), ("tasks", "dataswarms.tasks")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *rel)))
    assert found == set(packages)
    assert folders == {"dataswarms.flows": "flows", "dataswarms.tasks": "tasks"}


def _run(code: str, pythonpath: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run(
        [sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True, timeout=120
    )  # cwd "/": the repository folder is not on sys.path
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_wheel_installs_namespaced_packages_only(tmp_path):
    # Built from a copy without build/: setuptools reuses build/lib, where files since removed would linger.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*IGNORED))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    wheel = next(tmp_path.glob("dataswarms-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    folders = {"dataswarms/flows/": "flows/", "dataswarms/tasks/": "tasks/"}
    for name in (n for n in names if n.endswith(".py")):  # every module of the wheel is a file of the project
        mapped = next((f + name[len(w) :] for w, f in folders.items() if name.startswith(w)), name)
        assert (ROOT / mapped).is_file(), name
    tops = {n.split("/", 1)[0] for n in names}
    assert {"dataswarms", "dataswarms_core"} <= tops and not {"flows", "tasks"} & tops
    for needed in ("dataswarms/flows/cli.py", "dataswarms/tasks/sft.py", "dataswarms_core/stages/export.py",
                   "dataswarms_core/configs/quickstart.yaml", "dataswarms_core/builtin/gsm8k_quickstart.json"):  # fmt: skip
        assert needed in names, needed
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "dataswarms = dataswarms.flows.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    printed = _run(f"{IMPORTS}\nimport dataswarms.flows.cli as c, dataswarms_core as d\nprint(c.__file__, d.__file__)", str(target))
    assert all(p.startswith(str(target)) for p in printed.split()), printed


def test_editable_install_maps_the_top_level_folders():
    printed = _run(
        f"{IMPORTS}\nimport importlib.util, dataswarms.flows.cli as c, dataswarms.tasks as t\n"
        "print(c.__file__, t.__file__, importlib.util.find_spec('flows'), importlib.util.find_spec('tasks'))"
    )
    cli, tasks, flows_spec, tasks_spec = printed.split()
    assert Path(cli) == ROOT / "flows" / "cli.py" and Path(tasks) == ROOT / "tasks" / "__init__.py"
    assert flows_spec == "None" and tasks_spec == "None"  # no generic top-level names are importable
