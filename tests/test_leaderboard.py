"""The leaderboard of a benchmark package: means leave missing scores out (never 0), ranks and ties, bootstrap
intervals, Kendall's τ between the benchmark and the real test items, and the table, markdown and plot."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import bootstrap

from dataswarms_core.leaderboard import (
    MISSING,
    build_leaderboard,
    leaderboard_frame,
    leaderboard_markdown,
    mean_interval,
    plot_leaderboard,
)
from dataswarms_core.records import LeaderboardRow, ModelEvaluation


def _eval(model, scores, test_scores=(), *, version="v1", judge="expected-score"):
    return ModelEvaluation(
        model=model, spec=f"hf:{model}", model_key=f"key-{model}", benchmark_version=version, judge=judge,
        items=len(scores), answered=sum(s is not None for s in scores), answer_failures=0,
        judge_failures=sum(s is None for s in scores), scores=list(scores), test_items=len(test_scores),
        test_answered=len(test_scores), test_scores=list(test_scores), seconds=1.0,
    )  # fmt: skip


def _board(evaluations, **kwargs):
    return build_leaderboard(evaluations, benchmark="bench", version="v1", judge="expected-score", **kwargs)


def _row(board, model):
    return next(r for r in board.rows if r.model == model)


def test_means_leave_missing_scores_out_and_rank_by_mean():
    board = _board([_eval("b", [0.2, 0.4, None]), _eval("a", [1.0, None, 0.5])])
    assert [r.model for r in board.rows] == ["a", "b"]
    assert _row(board, "a").mean == pytest.approx(0.75)  # (1.0 + 0.5) / 2, not (1.0 + 0 + 0.5) / 3
    assert _row(board, "b").mean == pytest.approx(0.3)
    assert [r.rank for r in board.rows] == [1, 2]
    assert (board.items, board.test_items, board.benchmark_version, board.bootstrap_resamples) == (
        3,
        0,
        "v1",
        2000,
    )


def test_equal_means_are_ranked_by_label_and_models_without_a_score_last():
    board = _board([_eval("zeta", [0.0, 0.0]), _eval("c", [0.5, 0.5]), _eval("none", [None, None]),
                    _eval("b", [0.25, 0.75]), _eval("a", [1.0, 0.0])])  # fmt: skip
    assert [(r.rank, r.model) for r in board.rows] == [(1, "a"), (2, "b"), (3, "c"), (4, "zeta"), (5, "none")]
    last = board.rows[-1]
    assert (last.mean, last.ci_low, last.ci_high, last.answered) == (None, None, None, 0)
    assert _row(board, "zeta").mean == 0.0  # a real 0 ranks above a missing mean


def test_interval_contains_the_mean_lies_within_the_scores_and_is_reproducible():
    scores = [0.1, 0.4, None, 0.5, 0.9, 1.0, 0.3]
    board = _board([_eval("m", scores)], seed=7)
    row = board.rows[0]
    assert row.mean == pytest.approx(3.2 / 6)
    assert 0.1 <= row.ci_low <= row.mean <= row.ci_high <= 1.0
    assert row.ci_low < row.ci_high
    again = _board([_eval("other", [0.0] * 7), _eval("m", scores)], seed=7)  # other models change nothing
    assert (_row(again, "m").ci_low, _row(again, "m").ci_high) == (row.ci_low, row.ci_high)
    # the same as scipy's percentile bootstrap with a generator seeded the same way
    kept = np.array([s for s in scores if s is not None])
    ref = bootstrap((kept,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(7))
    assert (row.ci_low, row.ci_high) == pytest.approx(
        (ref.confidence_interval.low, ref.confidence_interval.high)
    )
    wider = _board([_eval("m", scores)], seed=7, confidence=0.99).rows[0]
    assert wider.ci_low <= row.ci_low and wider.ci_high >= row.ci_high


def test_degenerate_intervals():
    assert mean_interval([]) == (None, None, None)
    assert mean_interval([None, None]) == (None, None, None)
    assert mean_interval([None, 0.4]) == (0.4, None, None)  # one score: no spread, no interval
    assert mean_interval([0.6, 0.6, None, 0.6]) == (0.6, 0.6, 0.6)  # all equal: both bounds the mean
    board = _board([_eval("one", [0.8, None])])
    assert (board.rows[0].mean, board.rows[0].ci_low, board.rows[0].ci_high) == (0.8, None, None)
    with pytest.raises(ValueError, match="finite"):
        mean_interval([0.5, math.nan])


def test_kendall_tau_on_hand_computed_examples():
    reversed_ = _board([_eval("a", [0.9], [0.1]), _eval("b", [0.5], [0.5]), _eval("c", [0.1], [0.9])])
    assert reversed_.kendall_tau == pytest.approx(-1.0)
    assert reversed_.kendall_p == pytest.approx(
        1 / 3
    )  # exact test: 1 of the 3! orders is as extreme each way
    assert [(r.model, r.rank, r.test_rank) for r in reversed_.rows] == [("a", 1, 3), ("b", 2, 2), ("c", 3, 1)]
    same = _board([_eval("a", [0.9], [0.7]), _eval("b", [0.5], [0.6]), _eval("c", [0.1], [0.2])])
    assert same.kendall_tau == pytest.approx(1.0)
    # pairs (a,b) discordant, (a,c) and (b,c) concordant: (2 - 1) / 3
    one_swap = _board([_eval("a", [0.9], [0.5]), _eval("b", [0.5], [0.9]), _eval("c", [0.1], [0.1])])
    assert one_swap.kendall_tau == pytest.approx(1 / 3)


def test_kendall_tau_only_over_models_with_both_means():
    board = _board([_eval("a", [0.9], [0.1]), _eval("b", [0.5], [None]), _eval("c", [0.1], [0.9]),
                    _eval("d", [None], [0.5])])  # fmt: skip
    assert board.kendall_tau == pytest.approx(-1.0)  # a and c only
    assert [(r.model, r.test_rank) for r in board.rows] == [("a", 3), ("b", None), ("c", 1), ("d", 2)]
    assert "over 2 models" in leaderboard_markdown(board)


def test_kendall_tau_not_given():
    single = _board([_eval("a", [0.9], [0.1])])
    assert (single.kendall_tau, single.kendall_p) == (None, None)
    assert "fewer than 2 models" in leaderboard_markdown(single)
    tied = _board([_eval("a", [0.9], [0.5]), _eval("b", [0.1], [0.5])])  # all test means tied: tau NaN
    assert (tied.kendall_tau, tied.kendall_p) == (None, None)
    assert "undefined" in leaderboard_markdown(tied)
    no_test = _board([_eval("a", [0.9]), _eval("b", [0.1])])
    assert (no_test.kendall_tau, no_test.kendall_p) == (None, None)
    assert "no real test items" in leaderboard_markdown(no_test)


def test_validation_errors():
    with pytest.raises(ValueError, match="no evaluations"):
        _board([])
    with pytest.raises(ValueError, match=r"benchmark_version.*'v1': a.*'v2': b"):
        _board([_eval("a", [0.5]), _eval("b", [0.5], version="v2")])
    with pytest.raises(ValueError, match=r"benchmark_version 'v2'.*'v1'"):
        _board([_eval("a", [0.5], version="v2")])
    with pytest.raises(ValueError, match=r"judge.*'expected-score': a.*'other': b"):
        _board([_eval("a", [0.5]), _eval("b", [0.5], judge="other")])
    with pytest.raises(ValueError, match="duplicate model labels: a"):
        _board([_eval("a", [0.5]), _eval("b", [0.5]), _eval("a", [0.1])])
    with pytest.raises(ValueError, match="items"):
        _board([_eval("a", [0.5]), _eval("b", [0.5, 0.1])])
    with pytest.raises(ValueError, match="cached names models that were not evaluated: x"):
        _board([_eval("a", [0.5])], cached={"x"})
    short = _eval("a", [0.5, 0.6]).model_copy(update={"items": 3})
    with pytest.raises(ValueError, match="2 scores for 3 items"):
        _board([short])
    with pytest.raises(ValueError, match="confidence"):
        _board([_eval("a", [0.5])], confidence=1.0)


def test_cached_flag():
    board = _board([_eval("a", [0.5]), _eval("b", [0.4])], cached=["b"])
    assert (_row(board, "a").cached, _row(board, "b").cached) == (False, True)
    assert "Reused from an earlier evaluation of this version: `b`" in leaderboard_markdown(board)


def test_frame_columns_and_missing_values(tmp_path):
    board = _board([_eval("a", [0.5, 1.0], [0.2, 0.4]), _eval("b", [None, None], [None, 0.5])])
    frame = leaderboard_frame(board)
    assert list(frame.columns) == list(LeaderboardRow.model_fields)
    assert list(frame["model"]) == ["a", "b"]
    assert frame["mean"].dtype == "float64" and math.isnan(frame.loc[1, "mean"])
    assert frame.loc[0, "mean"] == pytest.approx(0.75)
    assert list(frame["test_rank"]) == [2, 1]
    frame.to_csv(tmp_path / "board.csv", index=False)
    frame.to_parquet(tmp_path / "board.parquet")
    import pandas as pd

    back = pd.read_parquet(tmp_path / "board.parquet")
    assert list(back.columns) == list(frame.columns) and back["mean"].isna().tolist() == [False, True]


def test_markdown_shows_missing_as_dash_never_zero():
    board = _board([_eval("a", [1.0, 0.5], [0.2, 0.6]), _eval("b", [0.5, None], [None, None]),
                    _eval("c", [None, None], [0.3, 0.3])])  # fmt: skip
    text = leaderboard_markdown(board)
    assert text.startswith("# Leaderboard: `bench` (version `v1`)")
    assert "expected-score" in text and "2 benchmark items, 2 real test items" in text
    header = ("| rank | model | mean [95 % CI] | answered / items | answer failures | judge failures | "
              "test mean [95 % CI] | test rank |")  # fmt: skip
    assert header in text
    a, b, c = _row(board, "a"), _row(board, "b"), _row(board, "c")
    assert f"| 1 | `a` | 0.750 [{a.ci_low:.3f}, {a.ci_high:.3f}] | 2 / 2 | 0 | 0 | 0.400 [" in text
    assert f"| 2 | `b` | 0.500 [{MISSING}, {MISSING}] | 1 / 2 | 0 | 1 | {MISSING} | {MISSING} |" in text
    assert f"| 3 | `c` | {MISSING} | 0 / 2 | 0 | 2 | 0.300 [0.300, 0.300] | 2 |" in text
    assert c.mean is None and b.test_rank is None
    assert "not given (fewer than 2 models have both a benchmark and a test mean (1))" in text  # only a
    no_test = leaderboard_markdown(_board([_eval("a", [0.5])]))
    assert "test mean" not in no_test and "no real test items" in no_test


def test_plot_returns_png_with_and_without_test_scores():
    with_test = _board([_eval("a", [1.0, 0.5], [0.2, 0.6]), _eval("b", [None, None], [0.4, None]),
                        _eval("c", [0.3, 0.1], [None, None])])  # fmt: skip
    without = _board(
        [_eval("a", [1.0, 0.5, 0.7]), _eval("b", [None, None, None]), _eval("c", [0.2, 0.2, 0.2])]
    )
    for board in (with_test, without):
        png = plot_leaderboard(board)
        assert png.startswith(b"\x89PNG") and len(png) > 1000
