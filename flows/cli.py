"""The ``dataswarms`` command line (typer + rich): ``run``, ``resume``, ``export``, ``evaluate``, ``compare``,
``refresh``, ``deploy``, ``serve`` and ``version``.

The commands only parse options, build the run's configuration and hand it to
:func:`dataswarms.flows._run.execute`. The helpers live next to this file: ``_environment`` (quiet defaults),
``_stored_config`` (what ``resume`` rebuilds from ``<run>/config.yaml``), ``_run`` (the flow run),
``_server`` (the Prefect API, or a temporary server), ``_progress`` (the progress bar) and ``_report`` (what
is printed).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.console import Console

from dataswarms_core.objectives import OBJECTIVES

from ._environment import quiet_environment

app = typer.Typer(
    name="dataswarms",
    help="Data Swarms (arXiv 2506.00741) as Prefect flows: particle swarm optimisation of LoRA data "
    "generators so the evaluation items they write optimise an objective (difficulty, separation, novelty, "
    "consistency, realistic, or a weighted composite).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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


def _console() -> Console:
    return Console(soft_wrap=True, markup=False, highlight=False)  # paths: one line, printed verbatim


def _fail(console: Console, message: str) -> typer.Exit:
    console.print(f"error: {message}", style="red")
    return typer.Exit(2)


@contextlib.contextmanager
def _stoppable() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP before the flow starts (loading, preflight) end the command quietly with
    ``128 + signum`` (click would print "Aborted!" and exit 1 on Ctrl-C; SIGTERM would kill it unhandled)."""
    from dataswarms_core.stop import exit_code, stop_signals

    try:
        with stop_signals():
            yield
    except KeyboardInterrupt as exc:
        raise typer.Exit(exit_code(exc)) from None


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
            help="Objective to maximise (scoring.objective): "
            + ", ".join(OBJECTIVES.names())
            + " or composite (a weighted sum: scoring.composite_weights)."
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="'data-swarms' (a generator swarm against fixed test takers) or 'adversarial' (generators "
            "and test takers co-evolve, docs/method.md §6); the config's 'mode' by default."
        ),
    ] = None,
    pool: Annotated[
        str | None,
        typer.Option(
            help="Adversarial mode: 'adversarial' (generated items replace pool entries), 'static' (the "
            "control: the pool stays real dev items), or 'both': the two runs one after the other (NAME-adversarial, "
            "NAME-static), then their curves in one plot and table (dataswarms compare); adversarial.pool by default."
        ),
    ] = None,
    base_model: Annotated[
        str | None,
        typer.Option(
            help="Base model (model.base_model): built-in name, local folder, or Hugging Face id (org/name: "
            "from the HF cache, downloaded once when online)."
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="Local generation backend (model.backend): 'hf' (transformers) or 'vllm' (CUDA GPU)."),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            help="How the generators are searched (search): 'pso' (the method) or a baseline at the same budget: "
            "'seed-best', 'base-model', 'random' (docs/method.md §9)."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run of this name from its newest checkpoint.")
    ] = False,
    force: ForceOption = False,
    retries: RetriesOption = 0,
) -> None:
    """Run a Data Swarms search (or, with --mode adversarial, Adversarial Swarms); print where the outputs are
    and how to see the run in the Prefect UI."""
    with _stoppable():
        quiet_environment()
        # Imported here: they load torch and Prefect (seconds), which `dataswarms --help` should not wait for.
        from dataswarms_core import stages
        from dataswarms_core.config_files import load_config
        from dataswarms_core.errors import DataSwarmsError

        console = _console()
        overrides = {
            "task.source": task,
            "pso.max_iterations": iterations,
            "seed": seed,
            "storage.root": output,
            "run_name": run_name,
            "scoring.objective": objective,
            "mode": mode,
            "adversarial.pool": None if pool == "both" else pool,
            "model.base_model": base_model,
            "model.backend": backend,
            "search": search,
        }
        try:
            cfg = load_config(config, overrides)
        except DataSwarmsError as exc:
            raise _fail(console, str(exc)) from None
        if pool is not None and cfg.mode != "adversarial":
            raise _fail(console, f"--pool {pool} applies to adversarial mode only; add --mode adversarial")
        if resume and not cfg.run_name:
            raise _fail(console, "--resume needs --run-name (or use: dataswarms resume RUN_URL)")
        configs = [cfg]
        if pool == "both":  # the adversarial run and its static control, then their curves side by side
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            configs = [
                cfg.model_copy(update={"adversarial": cfg.adversarial.model_copy(update={"pool": p})})
                for p in ("adversarial", "static")
            ]
            configs = [
                c.model_copy(update={
                    "run_name": f"{cfg.run_name}-{c.adversarial.pool}" if cfg.run_name
                    else stages.default_run_name(c, stamp=stamp),
                })  # fmt: skip
                for c in configs
            ]
        configs = [c if c.run_name else c.model_copy(update={"run_name": stages.default_run_name(c)}) for c in configs]
        try:
            for c in configs:
                stages.preflight(c, resume, force)
        except DataSwarmsError as exc:
            raise _fail(console, str(exc)) from None
        from ._run import execute  # Prefect loads only once the inputs passed the checks

        for c in configs:
            execute(c, resume=resume, force=force, retries=retries, console=console)
        if len(configs) > 1:
            _print_comparison(console, [stages.run_store(c) for c in configs], configs[0])


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
    with _stoppable():
        quiet_environment()
        # Imported here: they load torch and Prefect (seconds), which `dataswarms --help` should not wait for.
        from dataswarms_core import stages
        from dataswarms_core.errors import DataSwarmsError

        from ._stored_config import load_stored_config, read_error_message

        console = _console()
        try:
            stored = load_stored_config(run_url, endpoint_url)
            if stored.dropped_options:
                console.print(
                    f"note: storage options {stored.dropped_options} were not stored with the run; credentials "
                    "come from the environment (AWS_* variables)"
                )
            stages.preflight(stored.config, resume=True, force=force)
        except DataSwarmsError as exc:
            raise _fail(console, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - storage unreachable during preflight: one line, not a traceback
            raise _fail(console, read_error_message(run_url, exc)) from None
        from ._run import execute  # Prefect loads only once the inputs passed the checks

        execute(stored.config, resume=True, force=force, retries=retries, console=console)


EndpointOption = Annotated[
    str | None,
    typer.Option(help="S3-compatible endpoint of the storage (else the stored one / AWS default)."),
]


@app.command()
def export(
    run_url: Annotated[
        str, typer.Argument(help="The run folder or URL, e.g. ./runs/NAME or s3://bucket/runs/NAME.")
    ],
    iteration: Annotated[
        int | None,
        typer.Option(
            help="Export the checkpoint after this many completed iterations (default: newest).", min=1
        ),
    ] = None,
    items: Annotated[int | None, typer.Option(help="Target number of items (export.items).", min=1)] = None,
    max_extra_calls: Annotated[
        int | None, typer.Option(help="Calls allowed beyond the first round (export.max_extra_calls).", min=0)
    ] = None,
    answers: Annotated[str | None, typer.Option(help="'reference-model' or 'none' (export.answers).")] = None,
    reference_model: Annotated[
        str | None, typer.Option(help="Model spec writing reference answers (export.reference_model).")
    ] = None,
    endpoint_url: EndpointOption = None,
    retries: RetriesOption = 0,
) -> None:
    """Write the benchmark package of a finished or interrupted run's checkpoint (its global best's items,
    dataset card, adapter and harness task files) under <run>/packages/iter_NNNN."""
    with _stoppable():
        quiet_environment()
        from pydantic import ValidationError

        from dataswarms_core import stages
        from dataswarms_core.config import RunConfig
        from dataswarms_core.config_files import validation_message
        from dataswarms_core.errors import DataSwarmsError
        from dataswarms_core.model_spec import check_model_spec, parse_model_spec
        from dataswarms_core.models import check_model
        from dataswarms_core.stages.package import package_key

        from ._stored_config import load_stored_config, read_error_message

        console = _console()
        overrides = {
            "items": items, "max_extra_calls": max_extra_calls, "answers": answers,
            "reference_model": reference_model,
        }  # fmt: skip
        try:
            stored = load_stored_config(run_url, endpoint_url).config
            section = {**stored.export.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
            try:
                cfg = RunConfig.model_validate({**stored.model_dump(), "export": section})
            except ValidationError as exc:
                raise _fail(console, validation_message("export options", exc)) from None
            run_store = stages.run_store(cfg)
            completed = stages.completed_iterations(run_store)
            if completed == 0:
                raise _fail(console, f"{run_store.root}: no completed iteration to export yet")
            if iteration is not None and iteration > completed:
                raise _fail(
                    console,
                    f"--iteration {iteration}: the run has {completed} completed iterations (1 to {completed})",
                )
            check_model(cfg.model.base_model)
            if cfg.export.answers == "reference-model" and cfg.export.reference_model:
                check_model_spec(
                    parse_model_spec(cfg.export.reference_model),
                    cfg.storage.fsspec_options(),
                    "--reference-model",
                )
        except DataSwarmsError as exc:
            raise _fail(console, str(exc)) from None
        except typer.Exit:
            raise
        except Exception as exc:  # noqa: BLE001 - storage unreachable: one line, not a traceback
            raise _fail(console, read_error_message(run_url, exc)) from None
        from ._report import print_package
        from ._run import run_flow
        from .package import data_swarms_package

        manifest = run_flow(
            data_swarms_package,
            {"config": cfg, "iteration": iteration},
            console,
            what="export",
            again="the package was not finished (no package.json); run the same command again to write it",
            retries=retries,
        )
        print_package(console, manifest, run_store.url(package_key(manifest.checkpoint_iteration)))


@app.command()
def evaluate(
    benchmark_url: Annotated[
        str, typer.Argument(help="A benchmark package folder or URL, e.g. ./runs/NAME/packages/iter_0003.")
    ],
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="[LABEL=]SPEC, repeatable. SPEC: a local model folder or built-in name (smollm2-135m-instruct); "
            "MODEL+ADAPTER_FOLDER; or NAME@http://HOST:PORT/v1 (OpenAI-compatible endpoint, key from "
            "OPENAI_API_KEY).",
        ),
    ],
    output: Annotated[
        str | None, typer.Option(help="Where evaluations/ and leaderboard/ go (default: the package folder).")
    ] = None,
    endpoint_url: EndpointOption = None,
    retries: RetriesOption = 0,
) -> None:
    """Every model answers every item of a benchmark package, the run's judge scores the answers; print the
    leaderboard (mean with bootstrap 95 % interval, failures, and Kendall's tau against the real test items)."""
    with _stoppable():
        quiet_environment()
        from dataswarms_core.errors import DataSwarmsError
        from dataswarms_core.model_spec import parse_model_spec, probe_endpoint
        from dataswarms_core.stages.evaluate import check_specs, open_package

        from ._stored_config import read_error_message

        console = _console()
        options = {"client_kwargs": {"endpoint_url": endpoint_url}} if endpoint_url else {}
        try:
            package = open_package(benchmark_url, options)
            specs = [parse_model_spec(m) for m in model]
            check_specs(specs, options, package)
            for spec in specs:
                probe_endpoint(spec)
        except DataSwarmsError as exc:
            raise _fail(console, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - storage unreachable: one line, not a traceback
            raise _fail(console, read_error_message(benchmark_url, exc)) from None
        console.print(
            f"evaluating {len(specs)} models on {package.manifest.name} version {package.manifest.version} "
            f"({len(package.items)} items, {len(package.tests)} real test items, judge {package.config.judge.name})"
        )
        from ._report import print_leaderboard
        from ._run import run_flow
        from .evaluate import data_swarms_evaluate

        board = run_flow(
            data_swarms_evaluate,
            {
                "package_url": package.store.root,
                "models": model,
                "output_url": output,
                "storage_options": options,
            },
            console,
            what="evaluation",
            again="finished models are stored; run the same command again to evaluate the others",
            retries=retries,
        )
        print_leaderboard(console, board)


def _print_comparison(console: Console, stores: list, cfg: Any, output: str | None = None) -> None:
    """Write and print the comparison of the generalisation curves of ``stores`` (finished adversarial runs)."""
    from dataswarms_core.stages.adversarial import compare_runs
    from dataswarms_core.storage import Store, join

    names = "--".join(s.root.rstrip("/").rsplit("/", 1)[-1] for s in stores)
    target = output or join(cfg.storage.root, "comparisons", names[:200])
    comparison = compare_runs(stores, Store(target, cfg.storage.options_for(target)))
    console.print(comparison.markdown, markup=False, highlight=False)
    console.print("written:")
    for name, where in comparison.outputs.items():
        console.print(f"  {name:<20} {where}")


@app.command()
def compare(
    run_urls: Annotated[
        list[str] | None,
        typer.Argument(help="Adversarial runs to compare (folders or URLs), e.g. the --pool adversarial run and its "
                       "--pool static control. Without them: the search against its baselines (--task ...)."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(help="Folder or URL of the comparison (default: <storage root>/comparisons/<name>)."),
    ] = None,
    endpoint_url: EndpointOption = None,
    config: Annotated[
        str, typer.Option("--config", "-c", help="Baselines: YAML file or built-in config of the runs.")
    ] = "quickstart",
    task: Annotated[str | None, typer.Option(help="Baselines: built-in task or data file.")] = None,
    objective: Annotated[str | None, typer.Option(help="Baselines: the objective (scoring.objective).")] = None,
    seeds: Annotated[int, typer.Option(help="Baselines: runs per strategy, seeds seed, seed+1, ...", min=1)] = 3,
    search: Annotated[
        list[str] | None,
        typer.Option(
            "--search",
            help="Baselines: a strategy to run; repeat the option for several (default: all of pso, seed-best, "
        "base-model, prompted, random, cma-es).",
        ),
    ] = None,
    draws: Annotated[
        int, typer.Option(help="Baselines: fresh re-measurements of each chosen generator.", min=1)
    ] = 3,
    iterations: Annotated[int | None, typer.Option(help="Baselines: iterations per run.", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Baselines: first master seed.", min=0)] = None,
) -> None:
    """With RUN_URLs: put the generalisation curves of adversarial runs (held-out test score of each iteration's
    best test taker) in one plot and one table. Without: run the search and its baselines at equal budget for
    several seeds, re-measure each chosen generator on fresh samples, and print the table (docs/method.md §9)."""
    with _stoppable():
        quiet_environment()
        from dataswarms_core import stages
        from dataswarms_core.errors import DataSwarmsError

        from ._stored_config import load_stored_config, read_error_message

        console = _console()
        if not run_urls:
            _compare_baselines(console, config, task, objective, seeds, search, draws, iterations, seed, output)
            return
        stores, configs, url = [], [], run_urls[0]
        try:
            for url in run_urls:
                configs.append(load_stored_config(url, endpoint_url).config)
                stores.append(stages.run_store(configs[-1]))
            url = output or run_urls[0]
            _print_comparison(console, stores, configs[0], output)
        except (DataSwarmsError, ValueError) as exc:
            raise _fail(console, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - storage unreachable: one line, not a traceback
            raise _fail(console, read_error_message(url, exc)) from None


def _compare_baselines(
    console: Console, config: str, task: str | None, objective: str | None, seeds: int, searches: list[str] | None,
    draws: int, iterations: int | None, seed: int | None, output: str | None,
) -> None:  # fmt: skip
    """``dataswarms compare --task ...``: check everything, then run the comparison flow and print its table."""
    from dataswarms_core import stages
    from dataswarms_core.baselines import SEARCHES
    from dataswarms_core.config_files import load_config
    from dataswarms_core.errors import ConfigError, DataSwarmsError
    from dataswarms_core.stages.comparison import comparison_markdown

    overrides = {"task.source": task, "scoring.objective": objective, "pso.max_iterations": iterations, "seed": seed}
    try:
        cfg = load_config(config, overrides)
        for name in searches or []:
            if name not in SEARCHES:
                raise ConfigError(f"--search: unknown search strategy {name!r}; known: {', '.join(SEARCHES.names())}")
        from .baselines import DEFAULT_SEARCHES, comparison_runs

        first = comparison_runs(cfg, seeds, list(searches or DEFAULT_SEARCHES))[0]
        stages.preflight(first, resume=True, force=False)  # the runs differ in seed, strategy and name only
    except DataSwarmsError as exc:
        raise _fail(console, str(exc)) from None
    from ._run import run_flow
    from .baselines import comparison_url, data_swarms_compare

    table = run_flow(
        data_swarms_compare,
        {"config": cfg, "seeds": seeds, "searches": searches, "draws": draws, "output_url": output},
        console, what="comparison", again="finished runs are kept; run the same command again to continue",
    )  # fmt: skip
    console.print(comparison_markdown(table, per_run=False))
    console.print(f"Per-run table and files: {output or comparison_url(cfg)}/baselines.md, baselines.json, runs.csv")


@app.command()
def sweep(
    config: Annotated[str, typer.Option("--config", "-c", help="YAML file or built-in config of the trials.")] = "quickstart",
    task: Annotated[str | None, typer.Option(help="Built-in task or data file.")] = None,
    objective: Annotated[
        str | None, typer.Option(help="The objective (scoring.objective; default: the config's).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Sweep name (default: <task>-<objective>-<sampler>); runs sweep-<name>-tNNN.")
    ] = None,
    trials: Annotated[int, typer.Option(help="Trials (at most the grid's size with --sampler grid).", min=1)] = 8,
    sampler: Annotated[str, typer.Option(help="Optuna sampler: tpe, random or grid.")] = "tpe",
    space: Annotated[
        str | None,
        typer.Option(help="YAML file: dotted setting -> {low, high[, log, integer, grid: [values]]} or "
                     "{choices: [...]}; integer ranges keep their whole numbers. Default: pso.inertia, "
                     "pso.cognitive, pso.social, pso.repel, pso.step_length, pso.step_length_factor, "
                     "seed_generators.n_generators."),
    ] = None,
    draws: Annotated[
        int, typer.Option(help="0: a trial's value is its in-search best; N: its best re-measured N times.", min=0)
    ] = 0,
    deployment: Annotated[
        str | None,
        typer.Option(help="Run trials as flow runs of this deployment (e.g. data-swarms-search/NAME from "
                     "dataswarms deploy), spread over its work pool's workers; default: in this process."),
    ] = None,
    parallel: Annotated[int, typer.Option(help="Trials asked and run at a time (with --deployment).", min=1)] = 1,
    iterations: Annotated[int | None, typer.Option(help="Iterations per trial.", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Master seed of every trial and of the sampler.", min=0)] = None,
    output: Annotated[
        str | None, typer.Option(help="Folder or URL of the results (default: <storage root>/sweeps/<name>).")
    ] = None,
) -> None:
    """Sweep the search's settings with optuna: each trial a search run (a subflow, or a flow run of
    --deployment), then a table, a plot and the best settings as a config file (docs/method.md §10)."""
    with _stoppable():
        quiet_environment()
        from dataswarms_core import stages
        from dataswarms_core.config_files import load_config
        from dataswarms_core.errors import ConfigError, DataSwarmsError
        from dataswarms_core.stages.layout import task_stem
        from dataswarms_core.storage import join
        from dataswarms_core.sweep import (
            DEFAULT_SPACE,
            SAMPLERS,
            check_space,
            load_space,
            sweep_markdown,
            trial_config,
        )

        console = _console()
        overrides = {"task.source": task, "scoring.objective": objective, "pso.max_iterations": iterations, "seed": seed}
        try:
            cfg = load_config(config, overrides)
            if sampler not in SAMPLERS:
                raise ConfigError(f"--sampler: unknown sweep sampler {sampler!r}; known: {', '.join(SAMPLERS.names())}")
            dims = list(load_space(space) if space else DEFAULT_SPACE)
            sweep_name = name or f"{task_stem(cfg)}-{cfg.scoring.objective}-{sampler}"
            check_space(cfg, dims, sweep_name, space or "the default sweep space")
            if deployment is not None:
                from .deploy import check_api
                from .sweep import check_deployment

                api_url = check_api("sweep --deployment")  # the deployment's workers poll a running server
                try:
                    check_deployment(deployment)
                except DataSwarmsError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the server is down: one line, not a traceback
                    raise ConfigError(f"--deployment: cannot reach the Prefect API at {api_url} ({exc})") from None
            probe = trial_config(cfg, {}, sweep_name, 0).model_copy(update={"run_name": f"sweep-{sweep_name}-check"})
            stages.preflight(probe, resume=False, force=False)  # the trials differ in their settings and name only
        except DataSwarmsError as exc:
            raise _fail(console, str(exc)) from None
        from ._run import run_flow
        from .sweep import data_swarms_sweep

        out = output or join(cfg.storage.root, "sweeps", sweep_name)
        table = run_flow(
            data_swarms_sweep,
            {"config": cfg, "name": sweep_name, "trials": trials, "sampler": sampler, "space": dims, "draws": draws,
             "deployment": deployment, "parallel": parallel, "output_url": out},
            console, what="sweep", again="finished trials are kept; run the same command again to continue",
        )  # fmt: skip
        console.print(sweep_markdown(table), markup=False, highlight=False)
        console.print(f"written: {out} (sweep.md|csv|json, sweep.png" + (", best.yaml)" if table.best_params else ")"))


ConfigsOption = Annotated[
    list[str],
    typer.Option(
        "--config", "-c",
        help="Benchmark configuration (YAML with a 'benchmark' section: name, models, schedules), repeatable.",
    ),
]  # fmt: skip


def _benchmark_configs(console: Console, sources: list[str], overrides: dict[str, Any]) -> list[Any]:
    """Load and check benchmark configurations (one line and exit 2 on the first problem)."""
    from dataswarms_core.config_files import load_config
    from dataswarms_core.errors import DataSwarmsError

    from .deploy import check_benchmarks

    try:
        configs = [load_config(src, overrides) for src in sources]
        check_benchmarks(configs, sources)
    except DataSwarmsError as exc:
        raise _fail(console, str(exc)) from None
    return configs


def _service_inputs(console: Console, sources: list[str], command: str) -> tuple[list[Any], str]:
    """The checked benchmark configurations and the Prefect API URL of ``deploy`` / ``serve``."""
    from dataswarms_core.errors import DataSwarmsError

    from .deploy import check_api

    configs = _benchmark_configs(console, sources, {})
    try:
        return configs, check_api(command)
    except DataSwarmsError as exc:
        raise _fail(console, str(exc)) from None


@app.command()
def refresh(
    config: Annotated[
        str, typer.Option("--config", "-c", help="YAML file with a 'benchmark' section, or a built-in config.")
    ] = "quickstart",
    benchmark: Annotated[str | None, typer.Option(help="Benchmark name (benchmark.name).")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Model spec evaluated on every version (benchmark.models), repeatable."),
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="Storage root (storage.root): runs and benchmarks/<name>/ go there.")
    ] = None,
    iterations: Annotated[int | None, typer.Option(help="PSO iterations per refresh.", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Master seed.", min=0)] = None,
    retries: RetriesOption = 0,
) -> None:
    """Write the next version of a benchmark: continue its search (refresh number in every random stream),
    publish the package as benchmarks/<name>/vNNNN, evaluate the registered models, and print the leaderboard
    with its change against the previous version."""
    with _stoppable():
        quiet_environment()
        from dataswarms_core import stages
        from dataswarms_core.errors import DataSwarmsError
        from dataswarms_core.refresh import change_markdown, plan_refresh

        console = _console()
        overrides = {
            "benchmark.name": benchmark, "benchmark.models": model or None, "storage.root": output,
            "pso.max_iterations": iterations, "seed": seed,
        }  # fmt: skip
        (cfg,) = _benchmark_configs(console, [config], overrides)
        try:
            plan = plan_refresh(cfg)
            stages.preflight(plan.config, resume=True, force=False)
        except DataSwarmsError as exc:
            raise _fail(console, str(exc)) from None
        console.print(
            f"benchmark {plan.benchmark}: refresh {plan.refresh} (search {plan.config.run_name}"
            + (f", continuing {plan.previous.run_name}" if plan.previous else "")
            + f"), then {len(cfg.benchmark.models)} models evaluated on {plan.version_url}"
        )
        from dataswarms_core.records import LeaderboardChange
        from dataswarms_core.storage import Store, join

        from ._run import run_flow
        from .refresh import data_swarms_refresh

        row = run_flow(
            data_swarms_refresh, {"config": cfg}, console, what="refresh", retries=retries,
            again="finished steps are kept; run the same command again to continue this refresh",
        )  # fmt: skip
        folder = Store(join(plan.version_url, "leaderboard"), cfg.storage.fsspec_options())
        console.print(change_markdown(LeaderboardChange.read(folder, "change.json")))
        console.print(f"version {row.version}: {row.items} items at {plan.version_url} (index: {plan.benchmark_url}/benchmark.json)")


@app.command()
def deploy(
    config: ConfigsOption,
    work_pool: Annotated[
        str, typer.Option(help="Work pool the deployments run on (created as a process pool if missing).")
    ] = "dataswarms",
) -> None:
    """Register each benchmark's refresh (on its schedules), search and evaluation flows as deployments on a
    Prefect server (PREFECT_API_URL); workers polling the work pool run them."""
    with _stoppable():
        quiet_environment()
        from .deploy import deploy

        console = _console()
        configs, api = _service_inputs(console, config, "deploy")
        names = deploy(configs, work_pool)
        console.print(f"deployed on {api} (work pool {work_pool}):")
        for name in names:
            console.print(f"  {name}")
        console.print(
            f"start a worker: prefect worker start --pool {work_pool}\n"
            f"run a refresh now: prefect deployment run '{names[0]}'"
        )


@app.command()
def serve(config: ConfigsOption) -> None:
    """Serve each benchmark's refresh (on its schedules), search and evaluation flows from this process (for a
    laptop), against a Prefect server (PREFECT_API_URL); stop with Ctrl-C."""
    with _stoppable():
        quiet_environment()
        from .deploy import serve

        console = _console()
        configs, api = _service_inputs(console, config, "serve")
        console.print(f"serving {3 * len(configs)} deployments on {api}; Ctrl-C stops")
        serve(configs)


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
