"""Balance figures: a Love plot and a mirrored PS histogram. They return a Figure, never show it.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state), so they are safe in
servers and tests; ``fig.savefig(path)`` writes them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from .balance import BalanceTable


def love_plot(balance: BalanceTable, *, threshold: float | None = None,
              absolute: bool = True, labels: Mapping[str, str] | None = None) -> Figure:
    """Love plot: SMD of every covariate before and after adjustment.

    Parameters
    ----------
    balance : BalanceTable
    threshold : float, optional
        Reference line(s); defaults to ``balance.threshold``.
    absolute : bool, default=True
        Plot |SMD| (cobalt's ``abs = TRUE``).
    labels : mapping of term -> label, optional
        Tick labels of the balance terms (`matching.design_matrix.term_labels`); a term
        without one shows its name (cobalt's ``var.names``).
    """
    f = balance.frame[balance.frame["type"] != "distance"].iloc[::-1]
    before, after = f["smd_before"].to_numpy(float), f["smd_after"].to_numpy(float)
    if absolute:
        before, after = np.abs(before), np.abs(after)
    thr = balance.threshold if threshold is None else threshold
    y = np.arange(len(f))
    fig = Figure(figsize=(6.5, 0.35 * len(f) + 1.6))
    ax = fig.add_subplot()
    ax.scatter(before, y, marker="o", facecolors="none", edgecolors="0.35", label="Before")
    ax.scatter(after, y, marker="o", color="C0", label="After")
    ax.axvline(thr, color="C3", ls="--", lw=1)
    if not absolute:
        ax.axvline(-thr, color="C3", ls="--", lw=1)
        ax.axvline(0, color="0.6", lw=0.8)
    ax.set_yticks(y, [(labels or {}).get(t, t) for t in f["covariate"].tolist()])
    ax.set_xlabel(("Absolute s" if absolute else "S") + "tandardised mean difference"
                  + (" (trial-arm SD)" if balance.estimand == "ATT" else " (pooled SD)"))
    ax.legend(loc="best", frameon=True)
    ax.set_title("Covariate balance")
    fig.tight_layout()
    return fig


def ps_overlap_plot(ps, treated, weights=None, *, bins: int = 30,
                    labels: tuple[str, str] = ("Trial", "Registry")) -> Figure:
    """Mirrored histogram of the PS: trial arm above the axis, registry below.

    Parameters
    ----------
    ps : array-like of shape (n_patients,)
        Propensity scores (NaN ignored).
    treated : array-like of bool, shape (n_patients,)
    weights : array-like, optional
        If given, each arm's histogram is weighted (after adjustment); densities are shown so
        both arms are on one scale.
    """
    e = np.asarray(ps, dtype=float)
    t = np.asarray(treated, dtype=bool)
    w = np.ones(len(e)) if weights is None else np.asarray(weights, dtype=float)
    ok = np.isfinite(e)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ht, _ = np.histogram(e[ok & t], bins=edges, weights=w[ok & t], density=True)
    hc, _ = np.histogram(e[ok & ~t], bins=edges, weights=w[ok & ~t], density=True)
    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_subplot()
    width = np.diff(edges)
    ax.bar(edges[:-1], ht, width=width, align="edge", color="C1", alpha=0.8, label=labels[0])
    ax.bar(edges[:-1], -hc, width=width, align="edge", color="C0", alpha=0.8, label=labels[1])
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlabel("Propensity score")
    ax.set_ylabel("Density" + (" (weighted)" if weights is not None else ""))
    ticks = ax.get_yticks()
    ax.set_yticks(ticks, [f"{abs(v):g}" for v in ticks])
    ax.legend(frameon=False)
    ax.set_title("Propensity-score overlap")
    fig.tight_layout()
    return fig
