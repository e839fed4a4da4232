"""Endpoint alignment: PFS read on a common assessment schedule (interval-censored progression).

A progression is only seen at the next scan, so an arm imaged every 8-16 weeks looks better
than one imaged every 6 weeks (the schedule bias, docs/sample_data.md). Per patient the
progression lies in ``(left, time]``: ``left`` is the last assessment without progression
(0 when none), ``time`` the scan that found it; deaths are exact; censoring is kept.

Versions of the PFS comparison (`align_endpoint`):

* ``right_point`` (standard): the event at the detecting scan, i.e. the primary analysis.
* ``midpoint`` / ``left_point``: the event at ``(left + time) / 2`` / at ``left``.
* ``turnbull``: the landmark rates of each arm's weighted Turnbull NPMLE (`reports.turnbull`),
  with R's Greenwood SE on the EM's pseudo-data (``survfit(..., robust = FALSE)``; it treats
  the allocation of each interval as observed, so it understates the uncertainty; R's
  default with non-integer weights, ``robust = TRUE``, is an infinitesimal jackknife over
  the pseudo-rows, not over patients, and is not used).
* ``harmonised``: both arms read on one grid (visits at ``grid_every``, ``2 grid_every``, ...):
  ``imputations`` times, each progression's latent time is drawn within its interval from its
  arm's weighted model conditional on the interval (``imputation_model``: by default a hazard
  constant within each grid cell, `reports.grid_hazard`; or the arm's Turnbull NPMLE,
  `TurnbullCurve.sample_within`) and the event is placed at the first grid visit at or after
  it; the landmark rates, their
  difference, the HR and the RMST are estimated on each imputed set (the primary estimators,
  `reports.compare.compare_arms`) and combined by Rubin's rules.

Why Rubin's rules: each imputed data set is a complete-data analysis with its own analytic
variance W_m; the spread B of the M estimates is the uncertainty about where in its interval
each progression lies. T = mean(W) + (1 + 1/M) B, t limits with Rubin's (1987) degrees of
freedom. The fitted model is plugged in, not drawn from its posterior (an "improper"
imputation), so B slightly understates that uncertainty; our simulation measures the coverage.
With ``bootstrap > 0`` the design-re-running bootstrap is the right place: each replicate
refits the model and imputes on its resample, so the bootstrap spread contains the NPMLE's
uncertainty; that nesting is the analysis entry point's job (the bootstrap calls this
function per replicate with ``imputations`` small) and is not done here.

Randomness: one `numpy.random.SeedSequence` from ``random_state``, spawned into one child per
imputation, so imputation m is the same whatever the order or number of workers.

Tipping point (`tipping_point`): the shift in days of the control arm's progression dates
(deaths and censoring untouched) at which the standard analysis' 95% limit of the landmark
difference reaches 0 and that of the HR reaches 1 (positive = control progressions later).

Modules: `reports.alignment_versions` (intervals, the per-version comparison, Rubin's rules,
the harmonised version), `reports.alignment_tipping` (the tipping point), this one (the
five versions, the gap diagnostics, the block's result); every public name is importable
from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from reports._inputs import check_conf_level, require_columns, weight_array
from reports.alignment_tipping import TIPPING_MAX_DAYS, TippingPoint, tipping_point
from reports.alignment_versions import (
    DEFAULT_IMPUTATION_MODEL,
    GRID_WINDOW,
    Columns,
    VersionEstimates,
    check_window,
    compare_on,
    grid_cell,
    harmonise,
    harmonised_estimate,
    progression_intervals,
    rubin,
)
from reports.compare import ArmComparison
from reports.errors import EstimationError
from reports.estimate import Estimate, json_number
from reports.landmark import LandmarkComparison
from reports.turnbull import TurnbullCurve

__all__ = ["DEFAULT_IMPUTATION_MODEL", "GAP_DIFFERENCE_WARNING", "GRID_WINDOW",
           "TIPPING_MAX_DAYS", "VERSIONS",
           "AlignmentResult", "GapSummary", "TippingPoint", "VersionEstimates",
           "align_endpoint", "gap_summary", "grid_cell", "harmonised_estimate",
           "progression_intervals", "rubin", "tipping_point"]

VERSIONS: tuple[str, ...] = ("right_point", "midpoint", "left_point", "turnbull", "harmonised")
GAP_DIFFERENCE_WARNING = 0.25  # warn when the arms' median gaps differ by more than 25%


@dataclass(frozen=True, slots=True)
class GapSummary:
    """Days between successive assessments (index to first scan included), one arm."""

    n: int
    median: float
    q1: float
    q3: float
    reason: str | None = None

    def to_dict(self) -> dict:
        """``{n, median, q1, q3}`` (or ``{n: 0, reason}`` when absent)."""
        if self.reason is not None:
            return {"n": self.n, "reason": self.reason}
        return {"n": self.n, "median": json_number(self.median), "q1": json_number(self.q1),
                "q3": json_number(self.q3)}


@dataclass(frozen=True, slots=True)
class AlignmentResult:
    """``results.json["endpoints"]["PFS"]["alignment"]``."""

    grid_every: float
    grid_unit: str | None
    gaps: dict[str, GapSummary]
    versions: dict[str, VersionEstimates]
    tipping_point: TippingPoint | None
    imputations: int
    curves: dict[str, TurnbullCurve]
    reason: str | None = None

    @property
    def gap_warning(self) -> str | None:
        """Plain-language warning when the arms' median gaps differ by > 25%, else None."""
        t, c = self.gaps.get("trial"), self.gaps.get("control")
        if t is None or c is None or t.reason or c.reason or not (t.median > 0):
            return None
        rel = abs(c.median - t.median) / t.median
        if rel <= GAP_DIFFERENCE_WARNING:
            return None
        return (f"The arms were not assessed alike: the median time between assessments is "
                f"{t.median:.0f} days in the trial and {c.median:.0f} days in the control arm "
                f"({rel:.0%} apart). Progression is only seen at a scan, so the less often "
                "imaged arm looks better on the standard (right-point) analysis; read the "
                "harmonised estimates.")

    def to_dict(self) -> dict:
        """The alignment block (``estimates`` keyed by version)."""
        out: dict = {
            "grid": {"every": self.grid_every, "unit": self.grid_unit},
            "assessment_gaps": {k: v.to_dict() for k, v in self.gaps.items()},
            "estimates": {k: v.to_dict() for k, v in self.versions.items()},
            "tipping_point": None if self.tipping_point is None else self.tipping_point.to_dict(),
            "imputations": self.imputations,
            "warning": self.gap_warning,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def gap_summary(gaps: np.ndarray, weights: np.ndarray | None = None) -> GapSummary:
    """Weighted median and quartiles of gaps (days); weights 0 and NaN gaps are left out."""
    g = np.asarray(gaps, dtype=float)
    w = np.ones(g.size) if weights is None else np.asarray(weights, dtype=float)
    keep = np.isfinite(g) & (w > 0)
    if not keep.any():
        return GapSummary(0, np.nan, np.nan, np.nan, "no post-index assessment")
    g, w = g[keep], w[keep]
    order = np.argsort(g, kind="stable")
    g, w = g[order], w[order]
    cw = np.cumsum(w) / w.sum()
    q = [float(g[min(np.searchsorted(cw, p - 1e-12), g.size - 1)]) for p in (0.25, 0.5, 0.75)]
    return GapSummary(int(g.size), q[1], q[0], q[2])


def _version(name: str, comp: ArmComparison, method: str) -> VersionEstimates:
    return VersionEstimates(name, comp.landmarks, comp.hazard_ratio, comp.rmst, method)


TURNBULL_SE = ("Greenwood SE on the EM's final pseudo-data, log-scale limits (R survfit "
               "interval2, robust = FALSE); it treats each interval's allocation to the "
               "Turnbull intervals as observed, so it understates the uncertainty")


def _turnbull_landmarks(curves, landmarks, unit, level) -> VersionEstimates:
    lms = []
    z = float(student_t.ppf(0.5 + level / 2, 1e9))
    for x in landmarks:
        ests = {}
        for name, c in curves.items():
            if x > c.max_time:
                ests[name] = Estimate.not_estimable(
                    f"landmark {x:g} is beyond the last follow-up time ({c.max_time:g}); "
                    "not extrapolated", level, c.method)
                continue
            s, se = float(c.survival_at(x)[0]), float(c.se_at(x)[0])
            with np.errstate(divide="ignore", invalid="ignore"):
                half = z * se / s if s > 0 else np.nan
            lo, hi = (s * np.exp(-half), min(s * np.exp(half), 1.0)) if s > 0 else (0.0, 0.0)
            ests[name] = Estimate(s, se, float(lo), float(hi), level,
                                  f"{c.method}; {TURNBULL_SE}")
        t, c = ests["trial"], ests["control"]
        if t.estimable and c.estimable:
            diff, se = t.estimate - c.estimate, float(np.hypot(t.se, c.se))
            d = Estimate(diff, se, diff - z * se, diff + z * se, level,
                         "difference of Turnbull NPMLE estimates, independent arms, "
                         "normal limits; " + TURNBULL_SE)
        else:
            d = Estimate.not_estimable(t.reason or c.reason or "", level, "difference")
        lms.append(LandmarkComparison(float(x), unit, t, c, d))
    method = next(iter(curves.values())).method
    return VersionEstimates("turnbull", tuple(lms), None, None, method)


def align_endpoint(
    frame: pd.DataFrame,
    *,
    time_col: str,
    event_col: str,
    left_col: str,
    grid_every: float,
    arm_col: str = "arm",
    treated_value: object = "trial",
    weight_col: str | None = None,
    cluster_col: str | None = None,
    km_cluster_col: str | None = None,
    exact_col: str | None = None,
    gap_col: str | None = None,
    landmarks: Sequence[float] = (),
    time_unit: str | None = None,
    rmst_tau: float | None = None,
    imputations: int = 20,
    random_state: int | None = 0,
    days_per_unit: float = 1.0,
    grid_label: tuple[float, str] | None = None,
    tipping: bool = True,
    conf_level: float = 0.95,
    impute_trial: bool = True,
    grid_window: float = GRID_WINDOW,
    imputation_model: str = DEFAULT_IMPUTATION_MODEL,
) -> AlignmentResult:
    """The five versions of the PFS comparison, the gap diagnostics and the tipping point.

    Parameters
    ----------
    frame : DataFrame
        One row per patient of both arms (the analysis frame of `compare_arms`).
    time_col, event_col : str
        PFS time (``time_unit``) and event (1 progression or death, 0 censored).
    left_col : str
        Last assessment without progression before the event (``time_unit``; 0 when none).
    grid_every : float
        Spacing of the common visit grid, in ``time_unit`` (e.g. 6 weeks).
    exact_col : str, optional
        True where the event is exact (a death without progression); an event whose
        ``left_col`` equals its time is exact too.
    gap_col : str, optional
        Per patient, the mean days between assessments (diagnostics only).
    imputations : int, default=20
        Number of imputed data sets of the harmonised estimate (>= 2).
    random_state : int, optional
        Seed of the imputations (one spawned child seed per imputation).
    days_per_unit : float, default=1
        Days in one ``time_unit`` (the tipping point is in days).
    grid_label : (float, str), optional
        The grid as the spec gives it (e.g. ``(6, "weeks")``), for the results.
    impute_trial : bool, default=True
        False keeps the trial arm as observed in the harmonised version (see
        `harmonised_estimate`).
    grid_window : float, default=0.1
        Visit window of the grid as a fraction of ``grid_every``: a progression interval that
        is one grid cell within it is read at that cell's visit without imputation
        (`grid_cell`); 0 turns this off except for exact grid cells.
    imputation_model : {"grid_hazard", "turnbull"}, default="grid_hazard"
        What the harmonised version draws a progression's time within its interval from
        (`IMPUTATION_MODELS`).

    Returns
    -------
    AlignmentResult
    """
    level = check_conf_level(conf_level)
    require_columns(frame, {"time_col": time_col, "event_col": event_col, "left_col": left_col,
                            "arm_col": arm_col, "weight_col": weight_col,
                            "exact_col": exact_col, "gap_col": gap_col})
    if not (np.isfinite(grid_every) and grid_every > 0):
        raise EstimationError(f"grid_every must be > 0, got {grid_every!r}")
    if int(imputations) != imputations or imputations < 2:
        raise EstimationError(f"imputations must be an integer >= 2, got {imputations!r}")
    cols = Columns(time_col, event_col, arm_col, treated_value, weight_col, cluster_col,
                    km_cluster_col)
    lo, hi = progression_intervals(frame, time_col=time_col, event_col=event_col,
                                   left_col=left_col, exact_col=exact_col)
    is_trial = (frame[arm_col] == treated_value).to_numpy()
    w = weight_array(frame, weight_col)
    e = np.isfinite(hi).astype(float)
    t = np.where(e > 0, hi, lo)
    lms = tuple(float(x) for x in landmarks)
    args = (lms, time_unit, rmst_tau, level)
    versions = {
        "right_point": _version("right_point", compare_on(frame, cols, t, e, *args),
                                "event at the assessment that found the progression"),
        "midpoint": _version("midpoint", compare_on(frame, cols, (lo + t) / 2, e, *args),
                             "event midway between the last progression-free assessment and "
                             "the one that found the progression"),
        "left_point": _version("left_point", compare_on(frame, cols, lo, e, *args),
                               "event at the last progression-free assessment"),
    }
    harm, curves = harmonise(frame, cols, lo, hi, is_trial, w, float(grid_every),
                               int(imputations), random_state, *args, impute_trial,
                               check_window(grid_window), imputation_model)
    versions["turnbull"] = _turnbull_landmarks(curves, lms, time_unit, level)
    versions["harmonised"] = harm
    gaps = {}
    for name, mask in (("trial", is_trial), ("control", ~is_trial)):
        if gap_col is None:
            gaps[name] = GapSummary(0, np.nan, np.nan, np.nan, "no assessment dates given")
        else:
            gaps[name] = gap_summary(frame[gap_col].to_numpy(float)[mask], w[mask])
    tip = (tipping_point(frame, cols, lo, hi, is_trial, lms, time_unit, level, days_per_unit)
           if tipping else None)
    every, unit = grid_label if grid_label is not None else (float(grid_every), time_unit)
    return AlignmentResult(every, unit, gaps, versions, tip, int(imputations), curves)
