"""The leaderboard of a benchmark package (``dataswarms evaluate``): every model's mean judge score with a
bootstrap interval, its rank, the same on the package's real test items, and Kendall's τ between the two
rankings; as a record, a table (CSV / Parquet), a markdown report and a bar chart.

A pure library (numpy, scipy, pandas, matplotlib): no Prefect, no storage. Missing is missing throughout: a
``None`` score (the answer or its judgement failed) is left out of the mean, never counted as 0, and a model
without any score has no mean, comes last and is shown as "—" (markdown) or "no score" (plot).

Formulas:

- mean: the arithmetic mean of a model's non-missing scores (judge scores, in [0, 1]).
- interval: the bootstrap percentile interval of the mean over items (Efron & Tibshirani 1993, *An
  Introduction to the Bootstrap*, ch. 13): resample the scores with replacement ``resamples`` times, take the
  ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means
  (``scipy.stats.bootstrap(..., method="percentile")``).
- Kendall's τ: tau-b between the models' means on the package and on the real test items, with its two-sided
  p-value (``scipy.stats.kendalltau``, variant ``"b"``, which corrects for ties; see the scipy docs).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from .records import Leaderboard, LeaderboardRow, ModelEvaluation
from .report import png_bytes

MISSING = "—"
"""How a missing value is shown in the markdown report."""

_BATCH_ELEMENTS = 2_000_000
"""At most this many resampled scores are held at once (batch × items), to bound the bootstrap's memory."""


# -- statistics ----------------------------------------------------------------------------------------------
def _finite_scores(values: Sequence[float | None], what: str) -> np.ndarray:
    """The non-missing scores as a float array (shape (n,), n >= 0).

    Raises:
        ValueError: a score is NaN or infinite (a missing score is None, never NaN).
    """
    kept = np.asarray([v for v in values if v is not None], dtype=float)
    if kept.size and not np.all(np.isfinite(kept)):
        raise ValueError(f"{what}: scores must be finite numbers or None (missing), got NaN or infinity")
    return kept


def _bootstrap_kwargs(seed: int) -> dict[str, Any]:
    """The random-generator keyword of the installed scipy: ``rng`` (scipy >= 1.15) or ``random_state``."""
    from scipy.stats import bootstrap

    generator = np.random.default_rng(seed)
    if "rng" in inspect.signature(bootstrap).parameters:
        return {"rng": generator}
    return {"random_state": generator}  # pragma: no cover - scipy < 1.15


def mean_interval(
    scores: Sequence[float | None], *, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float | None, float | None, float | None]:
    """Mean of the non-missing scores and its bootstrap percentile interval (Efron & Tibshirani 1993).

    Args:
        scores: one score per item, None where missing (left out, never 0).
        resamples: bootstrap resamples (>= 1).
        confidence: level of the two-sided interval, in (0, 1).
        seed: seed of the interval's own generator (``np.random.default_rng(seed)``): the same scores and seed
            give the same interval, whatever else is computed.

    Returns:
        ``(mean, low, high)``. ``mean`` is None without any score. ``low`` and ``high`` are None with fewer
        than 2 scores (one score says nothing about the spread). When all scores are equal, every resample
        has the same mean, so the interval degenerates: both bounds are the mean (computed directly, without
        calling scipy). Otherwise ``low <= high`` and both lie within [min, max] of the scores (bounds are
        clipped there, which only removes floating-point rounding of the resampled means).
    """
    values = _finite_scores(scores, "mean_interval")
    if values.size == 0:
        return None, None, None
    mean = float(np.mean(values))
    if values.size < 2:
        return mean, None, None
    lo_data, hi_data = float(values.min()), float(values.max())
    if lo_data == hi_data:
        return mean, mean, mean
    from scipy.stats import bootstrap

    batch = max(1, min(resamples, _BATCH_ELEMENTS // values.size))
    result = bootstrap(
        (values,),
        np.mean,
        n_resamples=resamples,
        batch=batch,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        **_bootstrap_kwargs(seed),
    )
    low = float(np.clip(result.confidence_interval.low, lo_data, hi_data))
    high = float(np.clip(result.confidence_interval.high, lo_data, hi_data))
    return mean, low, high


def _ranks(means: dict[str, float | None]) -> dict[str, int]:
    """Rank 1 = highest mean; equal means ordered by model label (ascending, so every rank is distinct);
    models without a mean after all others, ordered by label."""
    scored = sorted((m for m, v in means.items() if v is not None), key=lambda m: (-means[m], m))  # type: ignore[operator]
    unscored = sorted(m for m, v in means.items() if v is None)
    return {m: k for k, m in enumerate(scored + unscored, start=1)}


def _kendall(pairs: list[tuple[float, float]]) -> tuple[float | None, float | None]:
    """Kendall's tau-b and two-sided p-value (scipy.stats.kendalltau) over (package mean, test mean) pairs;
    (None, None) with fewer than 2 pairs or when tau is NaN (all means tied in one of the rankings)."""
    if len(pairs) < 2:
        return None, None
    from scipy.stats import kendalltau

    x, y = zip(*pairs, strict=True)
    result = kendalltau(x, y, variant="b")
    tau, p = float(result.statistic), float(result.pvalue)
    if math.isnan(tau):
        return None, None
    return tau, None if math.isnan(p) else p


# -- the leaderboard -----------------------------------------------------------------------------------------
def _same(evaluations: Sequence[ModelEvaluation], field: str) -> Any:
    """The value of ``field`` shared by every evaluation; ValueError naming the values and models if not."""
    values: dict[Any, list[str]] = {}
    for e in evaluations:
        values.setdefault(getattr(e, field), []).append(e.model)
    if len(values) > 1:
        detail = "; ".join(f"{v!r}: {', '.join(models)}" for v, models in values.items())
        raise ValueError(f"evaluations differ in {field} (one leaderboard is one package version): {detail}")
    return next(iter(values))


def build_leaderboard(
    evaluations: Sequence[ModelEvaluation],
    *,
    benchmark: str,
    version: str,
    judge: str,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    cached: Collection[str] = (),
) -> Leaderboard:
    """Rank the models evaluated on one benchmark package version.

    Per model: the mean of its non-missing scores (None without any), the bootstrap percentile interval of
    that mean (Efron & Tibshirani 1993; see :func:`mean_interval`: None bounds with fewer than 2 scores, both
    bounds = the mean when all scores are equal), and the same on the real test items (``test_scores``).

    Ranks: ``rank`` 1 = highest mean; equal means are ordered by model label (ascending), so ranks are
    1..n and distinct; models without a mean get the last ranks (by label). ``test_rank`` likewise among the
    models with a test mean (1..k); None for the others. ``rows`` are in ``rank`` order.

    Kendall's τ: tau-b (``scipy.stats.kendalltau``) between the package means and the test means of the
    models having both (ties in means count as ties, not as the label order of the ranks); ``kendall_tau`` and
    ``kendall_p`` are None with fewer than 2 such models or when τ is undefined (NaN: all means tied in one of
    the two rankings).

    Deterministic: every interval uses its own generator seeded with ``seed``, so the same evaluations and
    seed give the same leaderboard, and a model's interval does not depend on the other models.

    Args:
        evaluations: one per model (any order), all of package version ``version`` and judge ``judge``.
        benchmark: the package's name (shown in the report).
        version: the package version (``BenchmarkManifest.version``).
        judge: the judge used.
        resamples: bootstrap resamples per interval (>= 1).
        confidence: level of the intervals, in (0, 1).
        seed: seed of the bootstrap.
        cached: labels of the models whose evaluation was reused from the cache (``LeaderboardRow.cached``).

    Returns:
        The :class:`~dataswarms_core.records.Leaderboard` (``files`` empty: the caller fills it in).

    Raises:
        ValueError: no evaluations; evaluations of another version or judge than ``version`` / ``judge``, or
            differing among themselves in version, judge, item or test item count (naming the values and
            models); duplicate model labels; a score list whose length is not the item count; a NaN or
            infinite score; a label in ``cached`` that is not evaluated; ``resamples`` < 1 or
            ``confidence`` outside (0, 1).
    """
    if not evaluations:
        raise ValueError("no evaluations: a leaderboard needs at least one model")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    labels = [e.model for e in evaluations]
    duplicates = sorted({m for m in labels if labels.count(m) > 1})
    if duplicates:
        raise ValueError(f"duplicate model labels: {', '.join(duplicates)} (give each model its own label)")
    for field, expected in (("benchmark_version", version), ("judge", judge)):
        found = _same(evaluations, field)
        if found != expected:
            raise ValueError(
                f"evaluations have {field} {found!r} ({', '.join(labels)}), the leaderboard is for {expected!r}"
            )
    items = _same(evaluations, "items")
    test_items = _same(evaluations, "test_items")
    for e in evaluations:
        if len(e.scores) != e.items or len(e.test_scores) != e.test_items:
            raise ValueError(
                f"model {e.model}: {len(e.scores)} scores for {e.items} items and {len(e.test_scores)} test "
                f"scores for {e.test_items} test items (one score or None per item)"
            )
    unknown = sorted(set(cached) - set(labels))
    if unknown:
        raise ValueError(f"cached names models that were not evaluated: {', '.join(unknown)}")

    stats: dict[str, tuple[tuple[float | None, ...], tuple[float | None, ...]]] = {}
    for e in evaluations:
        own = mean_interval(e.scores, resamples=resamples, confidence=confidence, seed=seed)
        test = mean_interval(e.test_scores, resamples=resamples, confidence=confidence, seed=seed)
        stats[e.model] = (own, test)
    ranks = _ranks({m: s[0][0] for m, s in stats.items()})
    test_means = {m: s[1][0] for m, s in stats.items() if s[1][0] is not None}
    test_ranks = _ranks(test_means)  # type: ignore[arg-type]

    rows = []
    for e in sorted(evaluations, key=lambda e: ranks[e.model]):
        (mean, low, high), (test_mean, test_low, test_high) = stats[e.model]
        rows.append(
            LeaderboardRow(
                rank=ranks[e.model],
                model=e.model,
                spec=e.spec,
                mean=mean,
                ci_low=low,
                ci_high=high,
                items=e.items,
                answered=e.answered,
                answer_failures=e.answer_failures,
                judge_failures=e.judge_failures,
                test_mean=test_mean,
                test_ci_low=test_low,
                test_ci_high=test_high,
                test_rank=test_ranks.get(e.model),
                cached=e.model in cached,
            )
        )
    pairs = [(r.mean, r.test_mean) for r in rows if r.mean is not None and r.test_mean is not None]
    tau, p = _kendall(pairs)  # type: ignore[arg-type]
    return Leaderboard(
        benchmark=benchmark,
        benchmark_version=version,
        judge=judge,
        items=items,
        test_items=test_items,
        bootstrap_resamples=resamples,
        confidence=confidence,
        rows=rows,
        kendall_tau=tau,
        kendall_p=p,
    )


# -- outputs -------------------------------------------------------------------------------------------------
_FLOAT_COLUMNS = ("mean", "ci_low", "ci_high", "test_mean", "test_ci_low", "test_ci_high")


def leaderboard_frame(board: Leaderboard) -> Any:
    """The leaderboard as a table: one row per :class:`LeaderboardRow` in rank order, one column per field in
    field order (rank, model, spec, mean, ci_low, ci_high, items, ..., test_rank, cached).

    Missing stays missing: the score columns are float64 with NaN (an empty CSV cell, a null in Parquet);
    ``test_rank`` is the nullable integer dtype ``Int64`` (<NA>); ``cached`` is bool.

    Returns:
        A pandas DataFrame of shape (len(board.rows), 15).
    """
    import pandas as pd

    columns = list(LeaderboardRow.model_fields)
    frame = pd.DataFrame([r.model_dump() for r in board.rows], columns=columns)
    for c in _FLOAT_COLUMNS:
        frame[c] = pd.to_numeric(frame[c], errors="raise").astype("float64")
    frame["test_rank"] = frame["test_rank"].astype("Int64")
    frame["cached"] = frame["cached"].astype(bool)
    return frame


def _num(value: float | None) -> str:
    return MISSING if value is None or value != value else f"{value:.3f}"


def _mean_cell(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return MISSING
    return f"{_num(mean)} [{_num(low)}, {_num(high)}]"


def _tau_line(board: Leaderboard) -> str:
    both = sum(1 for r in board.rows if r.mean is not None and r.test_mean is not None)
    if board.kendall_tau is not None:
        p = "" if board.kendall_p is None else f", p = {board.kendall_p:.3f}"
        return (
            f"Kendall's τ (tau-b) between the ranking on the benchmark and on the {board.test_items} real test "
            f"items: **τ = {board.kendall_tau:.3f}**{p} (over {both} models)."
        )
    if board.test_items == 0:
        why = "the package has no real test items"
    elif both < 2:
        why = f"fewer than 2 models have both a benchmark and a test mean ({both})"
    else:
        why = "τ is undefined: all means are tied in one of the two rankings"
    return f"Kendall's τ between the ranking on the benchmark and on the real test items: not given ({why})."


def leaderboard_markdown(board: Leaderboard) -> str:
    """A markdown report of the leaderboard: title (benchmark and version), judge, item counts, the ranked
    table (rank, model, mean [CI], answered / items, answer failures, judge failures, and with real test
    items: test mean [CI], test rank), then Kendall's τ (and p) or why it is not given.

    Numbers have 3 decimals; a missing value (no mean, no interval, no test rank) is "—", never 0.
    """
    level = f"{board.confidence * 100:g} % CI"
    has_test = board.test_items > 0
    lines = [
        f"# Leaderboard: `{board.benchmark}` (version `{board.benchmark_version}`)",
        "",
        f"Judge {board.judge}; {board.items} benchmark items"
        + (f", {board.test_items} real test items" if has_test else ", no real test items")
        + f"; {len(board.rows)} models.",
        "",
    ]
    header = ["rank", "model", f"mean [{level}]", "answered / items", "answer failures", "judge failures"]
    if has_test:
        header += [f"test mean [{level}]", "test rank"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in board.rows:
        cells = [
            str(r.rank),
            f"`{r.model}`",
            _mean_cell(r.mean, r.ci_low, r.ci_high),
            f"{r.answered} / {r.items}",
            str(r.answer_failures),
            str(r.judge_failures),
        ]
        if has_test:
            cells += [
                _mean_cell(r.test_mean, r.test_ci_low, r.test_ci_high),
                MISSING if r.test_rank is None else str(r.test_rank),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Means over the items a model was scored on (a failed answer or judgement is missing, not 0); "
        f"{level}: bootstrap percentile interval over items ({board.bootstrap_resamples} resamples; "
        f"{MISSING} with fewer than 2 scored items). Equal means are ranked by model label.",
        "",
        _tau_line(board),
    ]
    cached = [r.model for r in board.rows if r.cached]
    if cached:
        lines += [
            "",
            "Reused from an earlier evaluation of this version: " + ", ".join(f"`{m}`" for m in cached),
        ]
    return "\n".join(lines) + "\n"


def plot_leaderboard(board: Leaderboard) -> bytes:
    """PNG of the models' means (bars, in rank order) with their intervals as error bars; with real test
    items, a second bar per model for the test mean (grouped bars). A model without a mean gets a "no score"
    label where its bar would be, never a bar of height 0.

    Returns:
        The PNG file's bytes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = board.rows
    has_test = any(r.test_mean is not None for r in rows)
    series = [("benchmark", "mean", "ci_low", "ci_high", "C0")]
    if has_test:
        series.append(("real test items", "test_mean", "test_ci_low", "test_ci_high", "C1"))
    width = 0.8 / len(series)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(rows) + 2), 3.5), dpi=120)
    highest, lowest = 1.0, 0.0
    for k, (label, mean_f, low_f, high_f, color) in enumerate(series):
        offset = (k - (len(series) - 1) / 2) * width
        values = [getattr(r, mean_f) for r in rows]
        drawn = [i for i, v in enumerate(values) if v is not None]
        ax.bar(x[drawn] + offset, [values[i] for i in drawn], width, color=color, label=label)
        for i in drawn:
            low, high = getattr(rows[i], low_f), getattr(rows[i], high_f)
            if low is not None and high is not None:
                mean = values[i]
                ax.errorbar(x[i] + offset, mean, yerr=[[mean - low], [high - mean]], color="black", capsize=3)
                highest, lowest = max(highest, high), min(lowest, low)
            highest, lowest = max(highest, values[i]), min(lowest, values[i])
        for i, v in enumerate(values):
            if v is None:
                ax.text(x[i] + offset, 0.02, "no score", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xlim(-0.5, max(len(rows), 1) - 0.5)
    crowded = len(rows) > 4
    ax.set_xticklabels(
        [r.model for r in rows], rotation=30 if crowded else 0, ha="right" if crowded else "center"
    )
    ax.set_ylim(lowest * 1.05, highest * 1.05)
    ax.set_ylabel(f"mean score ({board.confidence * 100:g} % CI)")
    ax.set_title(f"{board.benchmark} ({board.benchmark_version}), judge {board.judge}", fontsize=9)
    if not rows:
        ax.text(0.5, 0.5, "no models", transform=ax.transAxes, ha="center", va="center")
    if has_test:
        ax.legend(fontsize=7)
    return png_bytes(fig)
