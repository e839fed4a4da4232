"""Kaplan-Meier figure: trial vs synthetic control, CI bands, numbers at risk (pure matplotlib).

Returns a `matplotlib.figure.Figure` built with the object API (no pyplot state), so it is
safe in workers and notebooks; writing it to a file is the caller's business
(``fig.savefig(path)``), except `save_figure` which writes to a path it is handed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from reports.compare import ArmComparison
from reports.errors import EstimationError
from reports.km import SurvivalCurve

TRIAL_COLOR = "#1f5fa8"
CONTROL_COLOR = "#c0392b"
REGISTRY_COLOR = "#7f7f7f"


def _steps(curve: SurvivalCurve, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.r_[0.0, curve.time], np.r_[1.0, values]


def _draw(ax, curve: SurvivalCurve, color: str, label: str, *, band: bool, dashed: bool = False):
    t, s = _steps(curve, curve.surv)
    ax.step(t, s, where="post", color=color, lw=1.8, ls="--" if dashed else "-", label=label)
    if band:
        _, lo = _steps(curve, np.nan_to_num(curve.lower, nan=0.0))
        _, hi = _steps(curve, np.nan_to_num(curve.upper, nan=0.0))
        ax.fill_between(t, lo, hi, step="post", color=color, alpha=0.15, lw=0)
    cens = curve.n_censor > 0
    ax.plot(curve.time[cens], curve.surv[cens], "|", color=color, ms=6, mew=1)


def km_figure(
    trial: SurvivalCurve | ArmComparison,
    control: SurvivalCurve | None = None,
    *,
    unadjusted_control: SurvivalCurve | None = None,
    landmark: float | None = None,
    null_rate: float | None = None,
    risk_times: Sequence[float] | None = None,
    time_unit: str | None = None,
    title: str | None = None,
    trial_label: str = "Trial",
    control_label: str = "Synthetic control",
    unadjusted_label: str = "Registry, unadjusted",
) -> Figure:
    """Kaplan-Meier curves of the trial and the synthetic control with a numbers-at-risk table.

    Parameters
    ----------
    trial, control : SurvivalCurve, or an ArmComparison and None
        Fitted curves (``ArmComparison.trial_curve`` / ``.control_curve``); their pointwise
        limits are drawn as bands.
    unadjusted_control : SurvivalCurve, optional
        The unweighted registry curve, drawn dashed without a band.
    landmark : float, optional
        Landmark time (dotted vertical line), in ``time_unit``.
    null_rate : float, optional
        Null landmark rate (Simon H0), dotted horizontal line.
    risk_times : sequence of float, optional
        Times of the numbers-at-risk table (default: the x ticks). The table shows the
        patients at risk per arm and, when the control's weights are not all 1, its weighted
        number at risk with the weights' scale stated (their sum and the ESS).

    Returns
    -------
    Figure
        Two axes: the curves, and the numbers at risk under them.
    """
    if isinstance(trial, ArmComparison):
        comp = trial
        trial, control = comp.trial_curve, comp.control_curve
        if landmark is None and comp.landmarks:
            landmark = comp.landmarks[0].time
        if null_rate is None and comp.landmarks and comp.landmarks[0].trial_vs_null:
            null_rate = comp.landmarks[0].trial_vs_null.null_rate
        time_unit = time_unit or comp.time_unit
    if control is None:
        raise EstimationError("km_figure needs a control curve (or an ArmComparison)")
    fig = Figure(figsize=(8, 5.6), layout="constrained")
    gs = fig.add_gridspec(2, 1, height_ratios=[4, 1.1])
    ax = fig.add_subplot(gs[0])
    tab = fig.add_subplot(gs[1], sharex=ax)
    if unadjusted_control is not None:
        _draw(ax, unadjusted_control, REGISTRY_COLOR, unadjusted_label, band=False, dashed=True)
    _draw(ax, control, CONTROL_COLOR, control_label, band=True)
    _draw(ax, trial, TRIAL_COLOR, trial_label, band=True)
    tmax = float(np.nanmax([trial.max_time, control.max_time]))
    if landmark is not None:
        ax.axvline(landmark, color="black", ls=":", lw=1)
        ax.annotate(
            f"landmark {landmark:g}",
            (landmark, 1.0),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
        )
    if null_rate is not None:
        ax.axhline(null_rate, color="black", ls=":", lw=1)
        ax.annotate(
            f"H0 rate {null_rate:.0%}",
            (0, null_rate),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, tmax * 1.02)
    ax.set_ylabel("Progression-free survival")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ticks = np.asarray(
        risk_times if risk_times is not None else [t for t in ax.get_xticks() if 0 <= t <= tmax],
        dtype=float,
    )
    rows = [(f"{trial_label}, patients", trial, TRIAL_COLOR, "n_risk_rows", "{:.0f}"),
            (f"{control_label}, patients", control, CONTROL_COLOR, "n_risk_rows", "{:.0f}")]
    weighted = control.n_risk_rows is not None and not np.allclose(control.n_risk,
                                                                    control.n_risk_rows)
    if weighted:
        rows.append((f"{control_label}, weighted", control, CONTROL_COLOR, "n_risk", "{:.1f}"))
    for y, (_name, curve, color, col, fmt) in enumerate(reversed(rows)):
        at = curve.at(ticks)[col].to_numpy()
        for t, n in zip(ticks, at, strict=True):
            tab.text(t, y, fmt.format(n), ha="center", va="center", fontsize=8, color=color)
    tab.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
    tab.set_ylim(-0.6, len(rows) - 0.4)
    tab.tick_params(axis="y", length=0, pad=14)
    for side in ("top", "right", "left"):
        tab.spines[side].set_visible(False)
    title = "Number at risk"
    if weighted:
        title += (f" (weighted: the control's weights sum to {control.sum_weights:.1f}, "
                  f"ESS {control.ess:.0f}, over {control.n_rows} patients)")
    tab.set_title(title, fontsize=8, loc="left")
    tab.set_xlabel(f"Time ({time_unit})" if time_unit else "Time")
    ax.tick_params(labelbottom=False)
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) and return the path."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path
