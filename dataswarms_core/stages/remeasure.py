"""Re-measuring a finished run's chosen generator on fresh samples (docs/method.md §9).

The utility reported by a search (or a baseline) is the largest of many noisy estimates, so it is biased
upwards. Here the global best of the newest checkpoint writes items again and the run's test takers and judge
score them, ``draws`` times, each draw with a seed the search never used (``derive_seed(stream seed,
"remeasure", r)``): the mean over draws, with a Student-t 95 % interval, is the honest figure.

Layout under the run root::

    remeasure/draw_NN/            a one-particle run of the global best: swarms/, iterations/iter_0000/
    remeasure/remeasure.json      RemeasureReport (written last)
"""

from __future__ import annotations

import math
import time

from ..config import RunConfig
from ..pso import PSOConfig, init_swarm, load_swarm_state, save_swarm_state
from ..records import AdapterManifest, RemeasureReport, RunInfo, ScoringReport
from ..seeding import GENERATOR_SWARM, derive_seed
from ..stop import check_stop
from ..storage import Store
from .layout import REFERENCE_SCORES, completed_iterations, swarm_iter_key, swarm_key
from .scoring import score
from .synthesis import synthesize

REMEASURE_DIR = "remeasure"
REPORT = f"{REMEASURE_DIR}/remeasure.json"


def remeasure_seed(config: RunConfig, draw: int) -> int:
    """Seed of re-measurement draw ``draw`` (1, 2, ...): ``derive_seed(config.stream_seed, "remeasure", draw)``,
    a stream no stage of the search draws from."""
    return derive_seed(config.stream_seed, "remeasure", draw)


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
    config: RunConfig, info: RunInfo, run: Store, takers: AdapterManifest, draws: int
) -> RemeasureReport:
    """Re-measure the global best of the run's newest checkpoint ``draws`` times on fresh samples; write
    ``remeasure/remeasure.json`` and return it. A draw whose scoring was written already is read, not redone.

    Args:
        takers: the run's trained test takers (the search's own).
        draws: number of fresh draws, ≥ 1.

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
    t0 = time.perf_counter()
    utilities: list[float | None] = []
    seeds = []
    for r in range(1, draws + 1):
        check_stop()
        seed = remeasure_seed(config, r)
        seeds.append(seed)
        sub = run.child(REMEASURE_DIR, f"draw_{r:02d}")
        scoring_key = swarm_iter_key(0, GENERATOR_SWARM, "scoring.json")
        if not sub.exists(scoring_key):
            cfg = config.model_copy(update={"seed": seed, "refresh": 0, "continue_from": None})
            single = init_swarm(
                [state.global_best], PSOConfig(), cfg.stream_seed, names=[best], metadata=dict(state.metadata)
            )
            save_swarm_state(single, sub, swarm_key(GENERATOR_SWARM, 0))
            if run.exists(REFERENCE_SCORES):  # novelty's reference means: the run's own
                sub.write_bytes(REFERENCE_SCORES, run.read_bytes(REFERENCE_SCORES))
            synthesize(cfg, info, sub, 0)
            score(cfg, info, sub, 0, takers)
        report = ScoringReport.read(sub, scoring_key)
        utilities.append(None if best in report.missing_utilities else report.utilities[0])
    got = [u for u in utilities if u is not None]
    mean, low, high = t_interval(got)
    result = RemeasureReport(
        run_name=info.run_name, search=config.search, generator=best, checkpoint_iteration=k,
        in_search_utility=state.global_best_utility, seeds=seeds, utilities=utilities, missing=len(utilities) - len(got),
        mean=mean, ci_low=low, ci_high=high, seconds=round(time.perf_counter() - t0, 3),
    )  # fmt: skip
    result.write(run, REPORT)
    return result
