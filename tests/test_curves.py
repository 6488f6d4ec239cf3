"""Generalisation curves (docs/method.md §6): the frame, the markdown table and the plot of several runs."""

from __future__ import annotations

import math

from dataswarms_core.curves import COLUMNS, curve_frame, curves_markdown, plot_curves
from dataswarms_core.records import CurvePoint


def _point(k: int, held: float | None, pool: float, share: float, accuracy: float | None = 0.0) -> CurvePoint:
    return CurvePoint(iteration=k, test_taker=f"t{k % 2}", pool_score=pool, held_out_score=held,
                      held_out_accuracy=accuracy, generated_share=share, replaced=int(share * 10))  # fmt: skip


CURVES = {
    "adversarial": [
        _point(0, 0.25, 0.5, 0.2),
        _point(1, None, 0.4, 0.4, None),
    ],  # iteration 1: nothing judged
    "static": [_point(0, 0.25, 0.6, 0.0, 0.125), _point(1, 0.5, 0.7, 0.0)],
}


def test_frame_keeps_missing_held_out_scores_missing():
    frame = curve_frame(CURVES)
    assert list(frame.columns) == COLUMNS and len(frame) == 4
    assert frame["run"].tolist() == ["adversarial", "adversarial", "static", "static"]
    assert frame["held_out_score"].iloc[0] == 0.25 and math.isnan(frame["held_out_score"].iloc[1])
    assert math.isnan(frame["held_out_accuracy"].iloc[1]) and frame["held_out_accuracy"].iloc[2] == 0.125
    assert frame["pool_score"].tolist() == [0.5, 0.4, 0.6, 0.7]


def test_markdown_table_puts_the_runs_side_by_side():
    table = curves_markdown(curve_frame(CURVES)).splitlines()
    assert table[0] == (
        "| iteration | adversarial: held-out | adversarial: accuracy | adversarial: pool | adversarial: generated "
        "| static: held-out | static: accuracy | static: pool | static: generated |"
    )
    assert table[2] == "| 0 | 0.2500 | 0.0000 | 0.5000 | 20% | 0.2500 | 0.1250 | 0.6000 | 0% |"
    assert (
        table[3] == "| 1 | — | — | 0.4000 | 40% | 0.5000 | 0.0000 | 0.7000 | 0% |"
    )  # missing shown as missing
    # A run with fewer iterations leaves its cells missing.
    short = curves_markdown(curve_frame({**CURVES, "static": CURVES["static"][:1]})).splitlines()
    assert short[3].endswith("| — | — | — | — |")


def test_plot_is_a_png():
    png = plot_curves(curve_frame(CURVES), "adversarial vs static")
    assert png.startswith(b"\x89PNG") and len(png) > 5000
