"""Figure of a simulation study: bias and coverage per design, with Monte Carlo error bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from synthctl.simulation.metrics import binomial_band

__all__ = ["performance_figure"]

_LABELS = {
    "landmark_diff": "S(landmark) difference",
    "log_hr": "log hazard ratio",
    "rmst_diff": "RMST difference (weeks)",
}


def performance_figure(summary: pd.DataFrame, *, nominal: float = 0.95) -> Figure:
    """Bias (left) and CI coverage (right) per design, one row per estimand.

    Error bars are +/- 1.96 Monte Carlo SEs; the coverage panels shade the binomial 99%
    band around ``nominal`` for the median number of replicates with an interval.
    """
    estimands = list(dict.fromkeys(summary["estimand"]))
    designs = list(dict.fromkeys(summary["design"]))
    fig = Figure(figsize=(9.5, 2.2 + 1.9 * len(estimands)), layout="constrained")
    axes = fig.subplots(len(estimands), 2, squeeze=False)
    y = np.arange(len(designs))
    for row, estimand in enumerate(estimands):
        sub = summary[summary["estimand"] == estimand].set_index("design").reindex(designs)
        ax_b, ax_c = axes[row]
        ax_b.errorbar(sub["bias"], y, xerr=1.96 * sub["bias_mcse"], fmt="o", color="C0", capsize=3)
        ax_b.axvline(0.0, color="grey", lw=1, ls="--")
        ax_b.set_title(f"Bias: {_LABELS.get(estimand, estimand)}", fontsize=10)
        ax_c.errorbar(
            sub["coverage"], y, xerr=1.96 * sub["coverage_mcse"], fmt="o", color="C1", capsize=3
        )
        n_ci = int(np.nanmedian(sub["n_ci"])) if sub["n_ci"].notna().any() else 0
        if n_ci > 0:
            lo, hi = binomial_band(n_ci, nominal, 0.99)
            ax_c.axvspan(lo, hi, color="C2", alpha=0.15, lw=0, label="binomial 99% band")
        ax_c.axvline(nominal, color="grey", lw=1, ls="--")
        ax_c.set_title(
            f"Coverage of {nominal:.0%} CI: {_LABELS.get(estimand, estimand)}", fontsize=10
        )
        for ax in (ax_b, ax_c):
            ax.set_yticks(y, designs if ax is ax_b else [""] * len(designs))
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    axes[-1][0].set_xlabel("estimate - truth (mean over replicates), error bars 1.96 MC SE")
    axes[-1][1].set_xlabel("share of intervals containing the truth")
    return fig
