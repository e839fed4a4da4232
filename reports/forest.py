"""Forest plot of one contrast per cohort (platform report; issue 15). Pure: rows in, Figure out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def forest_figure(
    labels: Sequence[str],
    estimates: Sequence[float | None],
    lowers: Sequence[float | None],
    uppers: Sequence[float | None],
    *,
    null: float = 0.0,
    xlabel: str = "",
    log_scale: bool = False,
) -> Figure:
    """One row per cohort: point estimate and 95% limits; missing values are left blank.

    Parameters
    ----------
    labels : sequence of str
        Row labels (cohort and contrast), top to bottom.
    estimates, lowers, uppers : sequence of float or None
        The contrast and its limits (None/NaN: not estimable, the row shows "n/a").
    null : float, default=0.0
        Value of no effect (vertical line): 0 for differences, 1 for ratios.
    log_scale : bool, default=False
        Log x axis (ratios).
    """
    n = len(labels)
    fig = Figure(figsize=(7.5, 0.55 * n + 1.3), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    for yi, est, lo, hi in zip(y, estimates, lowers, uppers, strict=True):
        if est is None or not np.isfinite(est):
            ax.annotate("n/a", (null, yi), ha="center", va="center", color="grey")
            continue
        if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [yi, yi], color="black", lw=1.4)
        ax.plot([est], [yi], "s", color="#1f4e79", ms=7)
    ax.axvline(null, color="grey", ls="--", lw=1)
    if log_scale:
        ax.set_xscale("log")
    ax.set_yticks(y, list(labels))
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(xlabel)
    return fig
