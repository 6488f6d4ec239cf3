"""dataswarms_core is the pure library: importing all of it never imports Prefect or typer."""

import subprocess
import sys


def test_core_never_imports_prefect():
    code = (
        "import pkgutil, importlib, sys, dataswarms_core\n"
        "for m in pkgutil.walk_packages(dataswarms_core.__path__, 'dataswarms_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('prefect', 'typer', 'flows', 'tasks'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
