"""The ``dataswarms`` command line (typer + rich)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import warnings
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="dataswarms",
    help="Data Swarms (arXiv 2506.00741) as Prefect flows: particle swarm optimisation of LoRA data "
    "generators so the evaluation items they write optimise an objective (difficulty, separation, novelty, "
    "consistency, realism, or a weighted mix).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _quiet_environment() -> None:
    """Offline, quiet defaults (set before heavy imports; users can override them)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # e.g. the GGUF conversion's bar
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="(transformers|peft|trl)")
    import transformers

    transformers.utils.logging.disable_progress_bar()


def _watch_progress(store: Any, total_iterations: int, stop: threading.Event, progress: Any) -> None:
    """Poll the run's progress.json: advance a rich progress bar and print a line per stage."""
    stage_text = {
        "seed-generators": "training seed generators (LoRA SFT)",
        "test-takers": "training test takers (LoRA SFT)",
        "reference": "test takers answer real dev items (novelty reference)",
        "synthesis": "iteration {k}: generators write items",
        "scoring": "iteration {k}: test takers answer, judge scores",
        "pso": "iteration {k}: swarm update",
        "export": "exporting the global best, its data set, metrics",
        "done": "done",
    }
    loop = ["synthesis", "scoring", "pso"]
    total = 2 + 3 * total_iterations + 1
    bar = progress.add_task("preparing (base model, task data)", total=total)
    last = None
    while not stop.wait(1.0):
        try:
            state = store.read_json("progress.json")
        except Exception:  # noqa: BLE001 - not written yet
            continue
        stage, k = state["stage"], state.get("iteration") or 0
        if (stage, k, state.get("detail")) == last:
            continue
        last = (stage, k, state.get("detail"))
        if stage in ("seed-generators", "test-takers", "reference"):
            done = min(["seed-generators", "test-takers", "reference"].index(stage), 2)
        elif stage in loop:
            done = 2 + 3 * k + loop.index(stage)
        else:
            done = total - 1 if stage == "export" else total
        text = stage_text.get(stage, stage).format(k=k)
        if state.get("detail"):
            text += f": {state['detail']}"
        if stage == "pso" and state.get("utilities"):
            text += f" (utilities {', '.join(f'{u:.3f}' for u in state['utilities'])})"
        progress.console.print(f"{time.strftime('%H:%M:%S')} {text}")
        progress.update(bar, completed=done, description=text)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _drain_prefect_workers() -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=5)
        except Exception:  # noqa: BLE001 - best effort: nothing to flush, or the server is unreachable
            pass


@contextlib.contextmanager
def _prefect_api() -> Any:
    """Use the configured Prefect API, or start a temporary local server for this command.

    Prefect's own ephemeral server is a child process in the terminal's process group, so Ctrl-C killed it
    before the interrupted flow run could record its state. This one runs in its own session: Ctrl-C reaches
    only the command, the run is marked as crashed, and the server stops when the command ends. It uses
    Prefect's local database, so ``prefect server start`` shows the run afterwards.
    """
    import subprocess
    from unittest import mock

    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return

    class IsolatedServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            popen = subprocess.Popen
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
            with mock.patch.object(subprocess, "Popen", lambda *a, **k: popen(*a, **quiet, **k)):
                return super()._run_uvicorn_command()

    server = IsolatedServer()
    server.start(timeout=120)
    # SIGTERM (kill, timeout, a scheduler) stops the command like Ctrl-C: the run is marked, the server
    # stopped, the resume command printed. Only SIGKILL can leave the server behind.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            try:
                yield
            finally:
                _drain_prefect_workers()  # send the run's last logs and events while the server is up
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


def _resume_command(store_root: str) -> str:
    exe = sys.argv[0] if sys.argv and sys.argv[0].endswith("dataswarms") else "dataswarms"
    return f"{exe} resume {store_root}"


def _execute(cfg: Any, *, resume: bool, force: bool, retries: int, console: Any) -> None:
    """Run the search flow for ``cfg`` with a progress display; print the outcome (or how to resume)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from dataswarms_core import stages
    from dataswarms_core.errors import DataSwarmsError
    from dataswarms.flows.search import data_swarms_search

    started = time.time()
    store = stages.run_store(cfg)
    console.print(f"dataswarms {'resume' if resume else 'run'} {cfg.run_name} → {store.root}")
    console.print(
        f"task {cfg.task.source}, base model {cfg.model.base_model}, {cfg.seed_generators.n_generators} generators, "
        f"objective {cfg.scoring.objective}, up to {cfg.pso.max_iterations} iterations, seed {cfg.seed}"
    )
    if store.exists("progress.json"):  # a resumed run: do not show its last attempt's stage
        store.write_json("progress.json", {"stage": "resuming", "iteration": None})
    flow = (
        data_swarms_search.with_options(retries=retries, retry_delay_seconds=10)
        if retries
        else data_swarms_search
    )
    stop = threading.Event()
    interrupted: KeyboardInterrupt | None = None
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        watcher = threading.Thread(
            target=_watch_progress, args=(store, cfg.pso.max_iterations, stop, progress), daemon=True
        )
        watcher.start()
        try:
            with _prefect_api():
                state = flow(cfg, resume=resume, force=force, return_state=True)
        except KeyboardInterrupt as exc:
            interrupted = exc
        finally:
            stop.set()
            watcher.join(timeout=5)
    if interrupted is not None:  # printed after the progress bar is gone, so these are the last lines
        console.print(f"\ninterrupted; every finished iteration is checkpointed in {store.root}")
        console.print(f"continue with: {_resume_command(store.root)}", style="bold")
        terminated = str(interrupted) == f"signal {signal.SIGTERM}"
        raise typer.Exit(128 + signal.SIGTERM if terminated else 130)
    flow_run_id = state.state_details.flow_run_id
    if not state.is_completed():
        try:
            state.result()
        except DataSwarmsError as exc:
            console.print(f"error: {exc}", style="red")
        except Exception as exc:  # noqa: BLE001 - report any failure in one line, details are in Prefect
            console.print(f"error: {type(exc).__name__}: {exc}", style="red")
        console.print(
            f"Flow run {flow_run_id} did not complete; finished iterations are checkpointed in {store.root}"
        )
        if store.exists("run.json"):
            console.print(f"continue with: {_resume_command(store.root)}", style="bold")
        raise typer.Exit(1)
    summary = state.result()
    wall = time.time() - started
    out = summary["outputs"]
    resumed = f", resumed {summary['resumes']}x" if summary.get("resumes") else ""
    console.print(
        f"\ndone in {wall:.0f} s (wall time); {summary['iterations_completed']} iterations completed{resumed}"
    )
    console.print(
        f"global best utility ({summary['objective']}): {summary['global_best_utility']:.4f} "
        f"from {summary['global_best_particle']} at iteration {summary['global_best_iteration']}; "
        f"parse failures {summary['parse_failures']}, judge failures {summary['judge_failures']}"
    )
    console.print(f"outputs: {out['run']}")
    for label, key in [
        ("summary", "summary"),
        ("global-best adapter", "global_best_adapter"),
        ("synthetic data", "synthetic_jsonl"),
        ("metrics", "metrics_csv"),
        ("report", "report"),
    ]:
        console.print(f"  {label:<20} {out[key]}")
    console.print(
        "See the run in the Prefect UI: start a server with prefect server start "
        "(in this virtual environment, e.g. .venv/bin/prefect server start), then open "
        f"http://127.0.0.1:4200/runs/flow-run/{flow_run_id}"
    )


RetriesOption = Annotated[
    int,
    typer.Option(
        help="Flow-run retries: a failed run resumes from its newest checkpoint this many times.", min=0
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Resume even if the configuration or task file changed.")
]


@app.command()
def run(
    config: Annotated[
        str, typer.Option("--config", "-c", help="YAML file, or built-in 'quickstart' / 'paper'.")
    ] = "quickstart",
    task: Annotated[str | None, typer.Option(help="Built-in task name or data file path/URL.")] = None,
    iterations: Annotated[
        int | None, typer.Option(help="PSO iterations (pso.max_iterations).", min=1)
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Master seed.", min=0)] = None,
    output: Annotated[
        str | None, typer.Option(help="Where runs are written (storage.root): folder or s3:// URL.")
    ] = None,
    run_name: Annotated[
        str | None, typer.Option(help="Run folder name (default <task>-<objective>-<time>).")
    ] = None,
    objective: Annotated[
        str | None,
        typer.Option(
            help="Objective to maximise (scoring.objective): difficulty, separation, novelty, consistency, "
            "realistic or composite."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run of this name from its newest checkpoint.")
    ] = False,
    force: ForceOption = False,
    retries: RetriesOption = 0,
) -> None:
    """Run a Data Swarms search; print where the outputs are and how to see the run in the Prefect UI."""
    _quiet_environment()
    from rich.console import Console

    from dataswarms_core import stages
    from dataswarms_core.config import load_config
    from dataswarms_core.errors import DataSwarmsError

    console = Console(soft_wrap=True, markup=False, highlight=False)  # paths: one line, printed verbatim
    try:
        cfg = load_config(
            config,
            {
                "task.source": task,
                "pso.max_iterations": iterations,
                "seed": seed,
                "storage.root": output,
                "run_name": run_name,
                "scoring.objective": objective,
            },
        )
    except DataSwarmsError as exc:
        console.print(f"error: {exc}", style="red")
        raise typer.Exit(2) from None
    if resume and not cfg.run_name:
        console.print("error: --resume needs --run-name (or use: dataswarms resume RUN_URL)", style="red")
        raise typer.Exit(2)
    if not cfg.run_name:
        cfg = cfg.model_copy(update={"run_name": stages.default_run_name(cfg)})
    try:
        stages.preflight(cfg, resume)
    except DataSwarmsError as exc:
        console.print(f"error: {exc}", style="red")
        raise typer.Exit(2) from None
    _execute(cfg, resume=resume, force=force, retries=retries, console=console)


@app.command()
def resume(
    run_url: Annotated[
        str, typer.Argument(help="The run folder or URL, e.g. ./runs/NAME or s3://bucket/runs/NAME.")
    ],
    force: ForceOption = False,
    retries: RetriesOption = 0,
    endpoint_url: Annotated[
        str | None, typer.Option(help="S3-compatible endpoint of the run's storage (else the stored one).")
    ] = None,
) -> None:
    """Continue a run from its newest complete checkpoint, with the configuration it was started with."""
    _quiet_environment()
    import yaml
    from pydantic import ValidationError
    from rich.console import Console

    from dataswarms_core import stages
    from dataswarms_core.config import RunConfig, validation_message
    from dataswarms_core.errors import ConfigError, DataSwarmsError, StorageError
    from dataswarms_core.storage import Store

    console = Console(soft_wrap=True, markup=False, highlight=False)
    root, _, name = run_url.rstrip("/").rpartition("/")
    try:
        probe_options = {"client_kwargs": {"endpoint_url": endpoint_url}} if endpoint_url else {}
        store = Store(run_url.rstrip("/"), probe_options)
        if not store.exists("config.yaml"):
            raise StorageError(f"{store.root}: no run here (config.yaml not found)")
        stored = yaml.safe_load(store.read_text("config.yaml"))
        if not isinstance(stored, dict) or not isinstance(stored.get("storage"), dict):
            raise ConfigError(f"{store.url('config.yaml')}: not a dataswarms run configuration")
        dropped = sorted(stored["storage"].get("options") or {})
        stored["storage"]["options"] = {}  # never stored; credentials come from the environment
        stored["storage"]["root"] = root or "."
        if endpoint_url:
            stored["storage"]["endpoint_url"] = endpoint_url
        cfg = RunConfig.model_validate({**stored, "run_name": name})
        if dropped:
            console.print(
                f"note: storage options {dropped} were not stored with the run; credentials come "
                "from the environment (AWS_* variables)"
            )
        stages.preflight(cfg, resume=True)
    except typer.Exit:
        raise
    except DataSwarmsError as exc:
        console.print(f"error: {exc}", style="red")
        raise typer.Exit(2) from None
    except ValidationError as exc:
        console.print(f"error: {validation_message(f'{run_url}/config.yaml', exc)}", style="red")
        raise typer.Exit(2) from None
    except yaml.YAMLError as exc:
        console.print(f"error: {run_url}/config.yaml: invalid YAML ({str(exc).splitlines()[0]})", style="red")
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - storage unreachable, bad URL: one line, not a traceback
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        console.print(f"error: {run_url}: cannot read the run ({type(exc).__name__}: {detail})", style="red")
        raise typer.Exit(2) from None
    _execute(cfg, resume=True, force=force, retries=retries, console=console)


@app.command()
def version() -> None:
    """Print the dataswarms version."""
    from dataswarms_core import __version__

    typer.echo(__version__)


def main() -> None:
    """Entry point of the ``dataswarms`` script."""
    app()


if __name__ == "__main__":
    main()
