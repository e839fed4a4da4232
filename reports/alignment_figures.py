"""Endpoint-alignment figure: days between assessments per arm (weighted ECDF, pure matplotlib)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.figures import CONTROL_COLOR, TRIAL_COLOR


def _ecdf(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(values) & (weights > 0)
    v, w = values[keep], weights[keep]
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    return v, np.cumsum(w) / w.sum() if w.size else w


def gap_figure(
    trial_gaps: np.ndarray,
    control_gaps: np.ndarray,
    control_weights: np.ndarray | None = None,
    *,
    grid_days: float | None = None,
) -> Figure:
    """Weighted ECDF of each patient's mean days between assessments, trial vs control.

    Parameters
    ----------
    trial_gaps, control_gaps : array
        Per patient, the mean days between assessments (index to first scan included);
        NaN (no post-index assessment) is left out.
    control_weights : array, optional
        The design's weights of the control patients (ones when None).
    grid_days : float, optional
        The common grid's spacing in days, drawn as a vertical line.
    """
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.add_subplot()
    tg = np.asarray(trial_gaps, dtype=float)
    cg = np.asarray(control_gaps, dtype=float)
    cw = np.ones(cg.size) if control_weights is None else np.asarray(control_weights, float)
    for values, weights, color, label in (
        (tg, np.ones(tg.size), TRIAL_COLOR, "trial"),
        (cg, cw, CONTROL_COLOR, "synthetic control (weighted)"),
    ):
        x, y = _ecdf(values, weights)
        if x.size:
            ax.step(np.r_[x[0], x], np.r_[0.0, y], where="post", color=color, lw=1.8,
                    label=f"{label}, median {x[np.searchsorted(y, 0.5)]:.0f} d")
    if grid_days is not None:
        ax.axvline(grid_days, color="#555555", ls=":", lw=1, label=f"grid ({grid_days:g} d)")
    ax.set_xlabel("mean days between assessments, per patient")
    ax.set_ylabel("cumulative share of patients")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
