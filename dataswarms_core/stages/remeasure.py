"""Re-measuring a finished run's chosen generator on fresh samples (docs/method.md §9).

The utility reported by a search (or a baseline) is the largest of many noisy estimates, so it is biased
upwards. Here the global best of the newest checkpoint writes items again and the run's test takers and judge
score them, ``draws`` times, each draw with a seed the search never used (``derive_seed(stream seed,
"remeasure", r)``): the mean over draws, with a Student-t 95 % interval, is the honest figure. With
``held_out_test_takers`` configured, each draw's items are also answered by those test takers, which the search
never saw, and scored the same way.

Layout under the run root::

    remeasure/draw_NN/            a one-particle run of the global best: swarms/, iterations/iter_0000/
    remeasure/draw_NN/held_out/   the same items scored against the held-out test takers
    remeasure/held_out/           the held-out test takers' reference scores (when the objective needs them)
    remeasure/remeasure.json      RemeasureReport (written last)
"""

from __future__ import annotations

import math

from ..config import RunConfig
from ..pso import PSOConfig, init_swarm, load_swarm_state, save_swarm_state
from ..records import AdapterManifest, RemeasureReport, RunInfo, ScoringReport, SynthesisReport
from ..seeding import GENERATOR_SWARM, derive_seed
from ..stop import check_stop
from ..storage import Store
from .layout import REFERENCE_SCORES, completed_iterations, iter_key, swarm_iter_key, swarm_key
from .scoring import score, score_reference
from .synthesis import synthesize

REMEASURE_DIR = "remeasure"
REPORT = f"{REMEASURE_DIR}/remeasure.json"
HELD_OUT = "held_out"


def remeasure_seed(config: RunConfig, draw: int) -> int:
    """Seed of re-measurement draw ``draw`` (1, 2, ...): ``derive_seed(config.stream_seed, "remeasure", draw)``,
    a stream no stage of the search draws from."""
    return derive_seed(config.stream_seed, "remeasure", draw)


def held_out_config(config: RunConfig) -> RunConfig:
    """The configuration the held-out test takers are trained and scored with: ``test_takers`` replaced by
    ``held_out_test_takers`` and the seed ``derive_seed(seed, "held-out-test-takers")`` (other clusters, other
    training examples and SFT seeds than the search's test takers).

    Raises:
        ValueError: the configuration has no ``held_out_test_takers``.
    """
    if config.held_out_test_takers is None:
        raise ValueError("held_out_test_takers: not configured")
    return config.model_copy(
        update={
            "test_takers": config.held_out_test_takers,
            "held_out_test_takers": None,
            "seed": derive_seed(config.seed, "held-out-test-takers"),
        }
    )


def t_interval(values: list[float], confidence: float = 0.95) -> tuple[float | None, float | None, float | None]:
    """Mean and Student-t interval of ``values`` (``mean ± t_{(1+c)/2, n−1} · s / √n``; scipy.stats.t).

    Returns:
        (mean, low, high); low and high are None with fewer than 2 values, everything None with none.
    """
    from scipy import stats

    n = len(values)
    if n == 0:
        return None, None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def remeasure(
    config: RunConfig,
    info: RunInfo,
    run: Store,
    takers: AdapterManifest,
    draws: int,
    held_out: AdapterManifest | None = None,
) -> RemeasureReport:
    """Re-measure the global best of the run's newest checkpoint ``draws`` times on fresh samples; write
    ``remeasure/remeasure.json`` and return it. A draw whose scoring was written already is read, not redone.

    Args:
        takers: the run's trained test takers (the search's own).
        draws: number of fresh draws, ≥ 1.
        held_out: the trained adapters of ``held_out_test_takers`` (trained with :func:`held_out_config`);
            given, each draw's items are scored against them too. Ignored without ``held_out_test_takers``.

    Raises:
        ValueError: ``draws`` < 1, or the run has no completed iteration.
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    k = completed_iterations(run)
    if k == 0:
        raise ValueError(f"{run.root}: no completed iteration to re-measure")
    state = load_swarm_state(run, swarm_key(GENERATOR_SWARM, k))
    best = state.names[state.global_best_particle]
    held_cfg = held_out_config(config) if held_out is not None and config.held_out_test_takers else None
    seconds = 0.0  # the work's own seconds, read back from its reports (reused draws report the same)
    if held_cfg is not None and run.exists(REFERENCE_SCORES):  # the objective needs the takers' reference
        seconds += score_reference(held_cfg, info, run.child(REMEASURE_DIR, HELD_OUT), held_out).seconds
    utilities: list[float | None] = []
    held_utilities: list[float | None] = []
    held_names: list[str] = []
    seeds = []
    scoring_key = swarm_iter_key(0, GENERATOR_SWARM, "scoring.json")
    for r in range(1, draws + 1):
        check_stop()
        seed = remeasure_seed(config, r)
        seeds.append(seed)
        sub = run.child(REMEASURE_DIR, f"draw_{r:02d}")
        cfg = config.model_copy(update={"seed": seed, "refresh": 0, "continue_from": None})
        single = init_swarm(
            [state.global_best], PSOConfig(), cfg.stream_seed, names=[best], metadata=dict(state.metadata)
        )
        if not sub.exists(scoring_key):
            save_swarm_state(single, sub, swarm_key(GENERATOR_SWARM, 0))
            if run.exists(REFERENCE_SCORES):  # novelty's reference means: the run's own
                sub.write_bytes(REFERENCE_SCORES, run.read_bytes(REFERENCE_SCORES))
            synthesize(cfg, info, sub, 0)
            score(cfg, info, sub, 0, takers)
        report = ScoringReport.read(sub, scoring_key)
        seconds += SynthesisReport.read(sub, iter_key(0, "synthesis.json")).seconds + report.seconds
        utilities.append(None if best in report.missing_utilities else report.utilities[0])
        if held_cfg is None:
            continue
        held = sub.child(HELD_OUT)
        if not held.exists(scoring_key):  # the same items, the same answer seed, other test takers
            save_swarm_state(single, held, swarm_key(GENERATOR_SWARM, 0))
            reference = run.child(REMEASURE_DIR, HELD_OUT)
            if reference.exists(REFERENCE_SCORES):
                held.write_bytes(REFERENCE_SCORES, reference.read_bytes(REFERENCE_SCORES))
            items = iter_key(0, "items.jsonl")
            held.write_bytes(items, sub.read_bytes(items))
            score(cfg.model_copy(update={"test_takers": held_cfg.test_takers}), info, held, 0, held_out)
        held_report = ScoringReport.read(held, scoring_key)
        seconds += held_report.seconds
        held_names = held_report.test_takers
        held_utilities.append(None if best in held_report.missing_utilities else held_report.utilities[0])
    got = [u for u in utilities if u is not None]
    mean, low, high = t_interval(got)
    held_got = [u for u in held_utilities if u is not None]
    h_mean, h_low, h_high = t_interval(held_got)
    result = RemeasureReport(
        run_name=info.run_name, search=config.search, generator=best, checkpoint_iteration=k,
        in_search_utility=state.global_best_utility, seeds=seeds, utilities=utilities, missing=len(utilities) - len(got),
        mean=mean, ci_low=low, ci_high=high, held_out_test_takers=held_names, held_out_utilities=held_utilities,
        held_out_missing=len(held_utilities) - len(held_got), held_out_mean=h_mean, held_out_ci_low=h_low,
        held_out_ci_high=h_high, seconds=round(seconds, 3),
    )  # fmt: skip
    result.write(run, REPORT)
    return result
