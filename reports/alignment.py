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
  arm's weighted NPMLE conditional on the interval (`TurnbullCurve.sample_within`) and the
  event is placed at the first grid visit at or after it; the landmark rates, their
  difference, the HR and the RMST are estimated on each imputed set (the primary estimators,
  `reports.compare.compare_arms`) and combined by Rubin's rules.

Why Rubin's rules: each imputed data set is a complete-data analysis with its own analytic
variance W_m; the spread B of the M estimates is the uncertainty about where in its interval
each progression lies. T = mean(W) + (1 + 1/M) B, t limits with Rubin's (1987) degrees of
freedom. The NPMLE is plugged in, not drawn from its posterior (an "improper" imputation), so
B slightly understates that uncertainty; our simulation measures the coverage. With
``bootstrap > 0`` the design-re-running bootstrap is the right place: each replicate refits
the NPMLE and imputes on its resample, so the bootstrap spread contains the NPMLE's
uncertainty; that nesting is the analysis entry point's job (the bootstrap calls this
function per replicate with ``imputations`` small) and is not done here.

Randomness: one `numpy.random.SeedSequence` from ``random_state``, spawned into one child per
imputation, so imputation m is the same whatever the order or number of workers.

Tipping point (`tipping_point`): the shift in days of the control arm's progression dates
(deaths and censoring untouched) at which the standard analysis' 95% limit of the landmark
difference reaches 0 and that of the HR reaches 1 (positive = control progressions later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from reports._inputs import (
    _first_bad,
    check_conf_level,
    event_array,
    require_columns,
    time_array,
    weight_array,
)
from reports.compare import ArmComparison, RMSTComparison, compare_arms
from reports.cox import HazardRatio
from reports.errors import EstimationError
from reports.estimate import Estimate, json_number
from reports.landmark import LandmarkComparison
from reports.turnbull import TurnbullCurve, turnbull_estimate

VERSIONS: tuple[str, ...] = ("right_point", "midpoint", "left_point", "turnbull", "harmonised")
GAP_DIFFERENCE_WARNING = 0.25  # warn when the arms' median gaps differ by more than 25%
TIPPING_MAX_DAYS = 365.0
GRID_WINDOW = 0.1  # visit window of the grid, as a fraction of grid_every (6 weeks: +/- 4.2 d)


@dataclass(frozen=True, slots=True)
class VersionEstimates:
    """One version of the comparison, with exactly the primary shapes."""

    name: str
    landmarks: tuple[LandmarkComparison, ...]
    hazard_ratio: HazardRatio | None
    rmst: RMSTComparison | None
    method: str

    def to_dict(self) -> dict:
        """``{landmarks, hazard_ratio, rmst, method}`` (shapes of the primary ones)."""
        out: dict = {"landmarks": [lm.to_dict() for lm in self.landmarks]}
        if self.name != "turnbull":
            out["hazard_ratio"] = None if self.hazard_ratio is None else self.hazard_ratio.to_dict()
            out["rmst"] = None if self.rmst is None else self.rmst.to_dict()
        out["method"] = self.method
        return out


@dataclass(frozen=True, slots=True)
class TippingPoint:
    """Shift (days) of the control progression dates that tips each 95% limit to the null."""

    landmarks: tuple[tuple[float, float | None, str], ...]  # (time, shift days, limit name)
    hazard_ratio: tuple[float | None, str]
    max_days: float
    method: str

    def to_dict(self) -> dict:
        """results.json ``alignment.tipping_point``."""
        return {
            "landmarks": [
                {"time": t, "shift_days": json_number(s), "limit": lim}
                for t, s, lim in self.landmarks
            ],
            "hazard_ratio": {"shift_days": json_number(self.hazard_ratio[0]),
                             "limit": self.hazard_ratio[1]},
            "max_days": self.max_days,
            "method": self.method,
        }


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


def progression_intervals(
    frame: pd.DataFrame, *, time_col: str, event_col: str, left_col: str,
    exact_col: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` of each row as ``Surv(type = "interval2")``.

    Events: ``(left_col, time]``, exact when ``exact_col`` is true (a death) or when
    ``left_col`` equals the time; censored rows: ``(time, NaN)``. Raises `EstimationError`
    naming the column and rows with a missing left end, or one after the event time.
    """
    t = time_array(frame, time_col)
    e = event_array(frame, event_col).astype(bool)
    left = pd.to_numeric(frame[left_col], errors="coerce").to_numpy(float, na_value=np.nan)
    bad = e & (~np.isfinite(left) | (left < 0))
    if bad.any():
        raise EstimationError(f"column {left_col!r}: missing or negative last progression-free "
                              f"time in {_first_bad(frame.index, bad)}")
    after = e & (left > t)
    if after.any():
        raise EstimationError(f"column {left_col!r}: last progression-free assessment after the "
                              f"event time ({time_col!r}) in {_first_bad(frame.index, after)}")
    exact = np.zeros(t.size, bool) if exact_col is None else frame[exact_col].fillna(False)
    exact = np.asarray(exact, dtype=bool) | (left == t)
    lo = np.where(e & ~exact, left, t)
    hi = np.where(e, t, np.nan)
    return lo, hi


def rubin(est: np.ndarray, var: np.ndarray, conf_level: float) -> tuple[float, float, float, float]:
    """Rubin's rules: (estimate, total SE, lower, upper), t limits with Rubin's df."""
    est, var = np.asarray(est, float), np.asarray(var, float)
    ok = np.isfinite(est) & np.isfinite(var)
    if not ok.any():
        nan = float("nan")
        return nan, nan, nan, nan
    est, var = est[ok], var[ok]
    m = est.size
    q, w = float(est.mean()), float(var.mean())
    b = float(est.var(ddof=1)) if m > 1 else 0.0
    total = w + (1 + 1 / m) * b
    if b > 0 and m > 1:
        r = (1 + 1 / m) * b / w if w > 0 else np.inf
        df = (m - 1) * (1 + 1 / r) ** 2
        crit = float(student_t.ppf(1 - (1 - conf_level) / 2, df))
    else:
        crit = float(student_t.ppf(1 - (1 - conf_level) / 2, 1e9))
    se = float(np.sqrt(total))
    return q, se, q - crit * se, q + crit * se


@dataclass(frozen=True, slots=True)
class _Columns:
    time: str
    event: str
    arm: str
    treated: object
    weight: str | None
    cluster: str | None
    km_cluster: str | None


def _compare(frame, cols: _Columns, time_values, event_values, landmarks, unit, tau, level):
    f = frame.assign(**{"_t": time_values, "_e": event_values})
    return compare_arms(f, time_col="_t", event_col="_e", arm_col=cols.arm,
                        treated_value=cols.treated, weight_col=cols.weight,
                        cluster_col=cols.cluster, km_cluster_col=cols.km_cluster,
                        landmarks=landmarks, time_unit=unit, rmst_tau=tau, conf_level=level)


def _version(name: str, comp: ArmComparison, method: str) -> VersionEstimates:
    return VersionEstimates(name, comp.landmarks, comp.hazard_ratio, comp.rmst, method)


def _pooled(values: list[Estimate], level: float, method: str, clip: bool) -> Estimate:
    est = np.array([v.estimate for v in values])
    var = np.array([v.se for v in values]) ** 2
    q, se, lo, hi = rubin(est, var, level)
    if not np.isfinite(q):
        reason = next((v.reason for v in values if v.reason), "not estimable")
        return Estimate.not_estimable(reason, level, method)
    if clip:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    return Estimate(q, se, lo, hi, level, method)


def grid_cell(lo: np.ndarray, hi: np.ndarray, grid_every: float, window: float) -> np.ndarray:
    """Grid visit (time) of each interval that is one grid cell up to the visit window, else NaN.

    ``(lo, hi]`` with ``lo`` within ``window`` x ``grid_every`` of grid visit k - 1 (or the
    index, k = 1) and ``hi`` within it of visit k is a progression found at scheduled visit k
    after a progression-free visit k - 1: it is read at visit k, without imputation (a visit
    window is an operational tolerance, not information on when the progression happened).
    """
    k_lo = np.round(lo / grid_every)
    k_hi = np.round(hi / grid_every)
    tol = window * grid_every + 1e-9
    with np.errstate(invalid="ignore"):
        cell = ((np.abs(lo - k_lo * grid_every) <= tol) & (np.abs(hi - k_hi * grid_every) <= tol)
                & (k_hi - k_lo == 1))
    return np.where(cell, k_hi * grid_every, np.nan)


def _harmonised(frame, cols, lo, hi, is_trial, w, grid_every, m_imp, seed, landmarks, unit, tau,
                level, impute_trial: bool = True, window: float = GRID_WINDOW
                ) -> tuple[VersionEstimates, dict[str, TurnbullCurve]]:
    e = np.isfinite(hi)
    interval = e & (hi > lo)
    curves = {name: turnbull_estimate(lo[mask], hi[mask], w[mask], time_unit=unit, label=name)
              for name, mask in (("trial", is_trial), ("control", ~is_trial))}
    t_obs = np.where(e, hi, lo)
    cell = np.where(interval, grid_cell(lo, np.where(e, hi, 0.0), grid_every, window), np.nan)
    on_cell = np.isfinite(cell) & (impute_trial | ~is_trial)
    t_obs = np.where(on_cell, cell, t_obs)
    interval = interval & ~on_cell
    comps = []
    for child in np.random.SeedSequence(seed).spawn(m_imp):
        rng = np.random.default_rng(child)
        t_imp = t_obs.copy()
        for name, mask in (("trial", is_trial), ("control", ~is_trial)):
            if name == "trial" and not impute_trial:
                continue  # the trial arm read as observed (its own schedule is the grid)
            rows = interval & mask
            latent = curves[name].sample_within(lo[rows], hi[rows], rng)
            t_imp[rows] = np.ceil(latent / grid_every - 1e-9) * grid_every
        comps.append(_compare(frame, cols, t_imp, e.astype(float), landmarks, unit, tau, level))
    how = (f"harmonised to a visit grid every {grid_every:g} {unit or ''}: a progression found "
           f"at a scheduled visit (interval one grid cell within a {window:.0%} visit window) "
           f"read at that visit, other progression times imputed {m_imp} times from each "
           "arm's weighted Turnbull NPMLE within the progression interval and placed at the "
           "next grid visit; Rubin's rules, t limits")
    lms = []
    for k, lm0 in enumerate(comps[0].landmarks):
        per = [c.landmarks[k] for c in comps]
        lms.append(LandmarkComparison(
            lm0.time, lm0.unit,
            _pooled([p.trial for p in per], level, how + " (probability scale)", True),
            _pooled([p.control for p in per], level, how + " (probability scale)", True),
            _pooled([p.difference for p in per], level, how, False),
        ))
    hrs = [c.hazard_ratio for c in comps]
    b, se, blo, bhi = rubin(np.array([h.log_hr for h in hrs]),
                            np.array([h.se_log for h in hrs]) ** 2, level)
    h0 = hrs[0]
    hr = HazardRatio(
        estimate=float(np.exp(b)), lower=float(np.exp(blo)), upper=float(np.exp(bhi)),
        se_log=se, p_value=float(2 * student_t.sf(abs(b / se), 1e9)) if se > 0 else np.nan,
        conf_level=level, method=how + f" on log HR of: {h0.method}", log_hr=b,
        se_log_naive=float(np.mean([h.se_log_naive for h in hrs])), n=h0.n, events=h0.events,
        converged=all(h.converged for h in hrs),
    )
    rm = None
    if comps[0].rmst is not None:
        r0 = comps[0].rmst
        rm = RMSTComparison(
            r0.tau, r0.unit,
            _pooled([c.rmst.trial for c in comps], level, how, False),
            _pooled([c.rmst.control for c in comps], level, how, False),
            _pooled([c.rmst.difference for c in comps], level, how, False),
        )
    return VersionEstimates("harmonised", tuple(lms), hr, rm, how), curves


def harmonised_estimate(
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
    exact_col: str | None = None,
    landmarks: Sequence[float] = (),
    time_unit: str | None = None,
    rmst_tau: float | None = None,
    imputations: int = 20,
    random_state: int | None = 0,
    conf_level: float = 0.95,
    impute_trial: bool = True,
    grid_window: float = GRID_WINDOW,
) -> VersionEstimates:
    """Only the harmonised version of `align_endpoint` (same arguments; for simulations).

    ``impute_trial=False`` keeps the trial arm as observed and moves only the control arm
    onto the grid (for a grid that is the trial's own schedule; experimental, see
    benchmarks/README.md "Endpoint alignment").
    """
    level = check_conf_level(conf_level)
    cols = _Columns(time_col, event_col, arm_col, treated_value, weight_col, cluster_col, None)
    lo, hi = progression_intervals(frame, time_col=time_col, event_col=event_col,
                                   left_col=left_col, exact_col=exact_col)
    is_trial = (frame[arm_col] == treated_value).to_numpy()
    w = weight_array(frame, weight_col)
    lms = tuple(float(x) for x in landmarks)
    harm, _ = _harmonised(frame, cols, lo, hi, is_trial, w, float(grid_every), int(imputations),
                          random_state, lms, time_unit, rmst_tau, level, impute_trial,
                          _check_window(grid_window))
    return harm


def _check_window(window: float) -> float:
    if not (np.isfinite(window) and 0 <= window < 0.5):
        raise EstimationError(f"grid_window must be in [0, 0.5), got {window!r}")
    return float(window)


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
    cols = _Columns(time_col, event_col, arm_col, treated_value, weight_col, cluster_col,
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
        "right_point": _version("right_point", _compare(frame, cols, t, e, *args),
                                "event at the assessment that found the progression"),
        "midpoint": _version("midpoint", _compare(frame, cols, (lo + t) / 2, e, *args),
                             "event midway between the last progression-free assessment and "
                             "the one that found the progression"),
        "left_point": _version("left_point", _compare(frame, cols, lo, e, *args),
                               "event at the last progression-free assessment"),
    }
    harm, curves = _harmonised(frame, cols, lo, hi, is_trial, w, float(grid_every),
                               int(imputations), random_state, *args, impute_trial,
                               _check_window(grid_window))
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


def _limit(est: float, lower: float, upper: float, null: float) -> tuple[str, float]:
    return ("lower", lower) if est >= null else ("upper", upper)


def tipping_point(frame, cols, lo, hi, is_trial, landmarks, unit, level, days_per_unit,
                  max_days: float = TIPPING_MAX_DAYS) -> TippingPoint:
    """Shift (days) of control progression dates moving each 95% limit to the null.

    Progressions of the control arm move by ``delta`` days (clipped at their last
    progression-free time below, so an event stays after it, and at 0); the standard
    analysis is re-run. Landmark difference: its lower limit (when the estimate is >= 0, else
    the upper one) reaches 0; HR: its upper limit (HR <= 1, else the lower) reaches 1. Each
    limit is monotone in ``delta`` up to KM steps: we scan 7-day steps and bisect to 0.5 day.
    None when the null is not reached within ``max_days``.
    """
    e = np.isfinite(hi)
    prog = e & (hi > lo) & ~is_trial
    base = np.where(e, hi, lo)
    cache: dict[float, ArmComparison] = {}

    def comp(delta: float) -> ArmComparison:
        if delta not in cache:
            t = base.copy()
            shifted = base[prog] + delta / days_per_unit
            t[prog] = np.maximum(shifted, np.maximum(lo[prog], 0.0))
            cache[delta] = _compare(frame, cols, t, e.astype(float), landmarks, unit, None,
                                    level)
        return cache[delta]

    c0 = comp(0.0)

    def solve(value) -> float | None:
        f0 = value(c0)
        if not np.isfinite(f0):
            return None
        for direction in (1.0, -1.0):
            prev = 0.0
            for step in np.arange(7.0, max_days + 7.0, 7.0):
                d = direction * min(step, max_days)
                f = value(comp(d))
                if np.isfinite(f) and np.sign(f) != np.sign(f0):
                    a, b = prev, d
                    while abs(b - a) > 0.5:
                        mid = 0.5 * (a + b)
                        if np.sign(value(comp(mid))) == np.sign(f0):
                            a = mid
                        else:
                            b = mid
                    return float(0.5 * (a + b))
                prev = d
        return None

    out_lm = []
    for k, lm in enumerate(c0.landmarks):
        d = lm.difference
        if not d.estimable:
            out_lm.append((lm.time, None, "not estimable"))
            continue
        name, _ = _limit(d.estimate, d.lower, d.upper, 0.0)
        out_lm.append((lm.time, solve(lambda c, k=k, name=name:
                                      getattr(c.landmarks[k].difference, name)), name))
    hr = c0.hazard_ratio
    hname = "upper" if hr.estimate <= 1 else "lower"
    hshift = solve(lambda c: np.log(getattr(c.hazard_ratio, hname)))
    method = ("control-arm progression dates shifted by the given days (positive = later, "
              "clipped at the last progression-free assessment), standard analysis re-run; "
              f"the shift where the {level:.0%} limit reaches the null (0 for the landmark "
              "difference, 1 for the HR), to 0.5 day")
    return TippingPoint(tuple(out_lm), (hshift, hname), max_days, method)
