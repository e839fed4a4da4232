"""The versions of the PFS comparison that read each progression somewhere in its interval.

Shared by `reports.alignment` (the five versions) and the simulation study: the interval of
each row (`progression_intervals`, R's ``Surv(type = "interval2")``), the comparison of the
two arms on given times (`compare_on`, the primary estimators of `reports.compare`), the
result shape (`VersionEstimates`), Rubin's rules, and the harmonised version
(`harmonised_estimate`): both arms read on one grid, a progression interval that is one grid
cell within the visit window (`grid_cell`) at that visit, the others drawn within their
interval from the arm's weighted model of the progression time (`IMPUTATION_MODELS`: by
default a hazard constant within each grid cell, `reports.grid_hazard`) and placed at the next
grid visit.
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
    time_array,
    weight_array,
)
from reports.alignment_options import (
    DEFAULT_IMPUTATION_MODEL,
    GRID_WINDOW,
    IMPUTATION_MODELS,
)
from reports.compare import RMSTComparison, compare_arms
from reports.cox import HazardRatio
from reports.errors import EstimationError
from reports.estimate import Estimate
from reports.grid_hazard import grid_hazard_estimate
from reports.landmark import LandmarkComparison
from reports.turnbull import TurnbullCurve, turnbull_estimate


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
class Columns:
    """Column names and options of the comparison (`compare_on`)."""

    time: str
    event: str
    arm: str
    treated: object
    weight: str | None
    cluster: str | None
    km_cluster: str | None


def compare_on(frame, cols: Columns, time_values, event_values, landmarks, unit, tau, level):
    """`compare_arms` of ``frame`` with its time and event replaced by the given arrays."""
    f = frame.assign(**{"_t": time_values, "_e": event_values})
    return compare_arms(f, time_col="_t", event_col="_e", arm_col=cols.arm,
                        treated_value=cols.treated, weight_col=cols.weight,
                        cluster_col=cols.cluster, km_cluster_col=cols.km_cluster,
                        landmarks=landmarks, time_unit=unit, rmst_tau=tau, conf_level=level)


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


def check_imputation_model(model: str) -> str:
    if model not in IMPUTATION_MODELS:
        raise EstimationError(f"imputation_model must be one of {sorted(IMPUTATION_MODELS)}, "
                              f"got {model!r}")
    return model


def harmonise(frame, cols, lo, hi, is_trial, w, grid_every, m_imp, seed, landmarks, unit, tau,
                level, impute_trial: bool = True, window: float = GRID_WINDOW,
                model: str = DEFAULT_IMPUTATION_MODEL
                ) -> tuple[VersionEstimates, dict[str, TurnbullCurve]]:
    e = np.isfinite(hi)
    interval = e & (hi > lo)
    arms = (("trial", is_trial), ("control", ~is_trial))
    curves = {name: turnbull_estimate(lo[mask], hi[mask], w[mask], time_unit=unit, label=name)
              for name, mask in arms}
    drawn_from = (curves if check_imputation_model(model) == "turnbull" else
                  {name: grid_hazard_estimate(lo[mask], hi[mask], w[mask], grid_every=grid_every,
                                              time_unit=unit, label=name)
                   for name, mask in arms})
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
            latent = drawn_from[name].sample_within(lo[rows], hi[rows], rng)
            t_imp[rows] = np.ceil(latent / grid_every - 1e-9) * grid_every
        comps.append(compare_on(frame, cols, t_imp, e.astype(float), landmarks, unit, tau, level))
    how = (f"harmonised to a visit grid every {grid_every:g} {unit or ''}: a progression found "
           f"at a scheduled visit (interval one grid cell within a {window:.0%} visit window) "
           f"read at that visit, other progression times imputed {m_imp} times from "
           f"{IMPUTATION_MODELS[model]} within the progression interval and placed at the "
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
    imputation_model: str = DEFAULT_IMPUTATION_MODEL,
) -> VersionEstimates:
    """Only the harmonised version of `align_endpoint` (same arguments; for simulations).

    ``impute_trial=False`` keeps the trial arm as observed and moves only the control arm
    onto the grid (for a grid that is the trial's own schedule; experimental, see
    benchmarks/README.md "Endpoint alignment").
    """
    level = check_conf_level(conf_level)
    cols = Columns(time_col, event_col, arm_col, treated_value, weight_col, cluster_col, None)
    lo, hi = progression_intervals(frame, time_col=time_col, event_col=event_col,
                                   left_col=left_col, exact_col=exact_col)
    is_trial = (frame[arm_col] == treated_value).to_numpy()
    w = weight_array(frame, weight_col)
    lms = tuple(float(x) for x in landmarks)
    harm, _ = harmonise(frame, cols, lo, hi, is_trial, w, float(grid_every), int(imputations),
                          random_state, lms, time_unit, rmst_tau, level, impute_trial,
                          check_window(grid_window), imputation_model)
    return harm


def check_window(window: float) -> float:
    if not (np.isfinite(window) and 0 <= window < 0.5):
        raise EstimationError(f"grid_window must be in [0, 0.5), got {window!r}")
    return float(window)
