"""`compare_arms`: the PFS comparison of results.json in one call (trial vs synthetic control).

It composes the estimators: weighted KM per arm (`reports.km`), landmark rates with the
difference and the test against the null rate (`reports.landmark`), medians
(`reports.median`), the Cox hazard ratio and the weighted log-rank test (`reports.cox`), RMST
(`reports.rmst`) and E-values (`reports.evalue`).

Variance choices (all analytic; the bootstrap replaces them, see `reports.bootstrap`):

* KM per arm: as ``survfit(Surv(t, e) ~ arm, weights = w)``: the IJ robust variance when any
  weight (in either arm) is not an integer, Greenwood otherwise. ``km_cluster_col`` passes a
  cluster to the KM (``survfit(..., cluster = )``), e.g. the patient when a patient
  contributes several index lines; the match pair is deliberately *not* used for the curves
  by default, as in the MatchIt/survival reference analysis.
* Cox HR: ``coxph(Surv(t, e) ~ arm, weights = w, cluster = cluster_col)`` (``robust = TRUE``,
  each row its own cluster, when ``cluster_col`` is None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from reports._inputs import (
    check_conf_level,
    check_option,
    cluster_codes,
    event_array,
    require_columns,
    time_array,
    weight_array,
)
from reports.cox import HazardRatio, LogRankTest, cox_hazard_ratio
from reports.errors import EstimationError
from reports.estimate import Estimate, wald_estimate
from reports.evalue import EValue, evalue_hr, evalue_rr, landmark_risk_ratio
from reports.km import (
    CONF_TYPES,
    SurvivalCurve,
    are_counts,
    ij_influence_at,
    km_estimate,
)
from reports.landmark import LandmarkComparison, compare_landmark
from reports.median import QuantileEstimate, median_survival
from reports.rmst import ij_rmst_influence, rmst, rmst_difference


@dataclass(frozen=True, slots=True)
class RMSTComparison:
    """RMST per arm up to ``tau`` and the trial-minus-control difference."""

    tau: float
    unit: str | None
    trial: Estimate
    control: Estimate
    difference: Estimate

    def to_dict(self) -> dict:
        """results.json ``rmst`` object."""
        return {
            "tau": self.tau,
            "unit": self.unit,
            "trial": self.trial.to_dict(),
            "control": self.control.to_dict(),
            "difference": self.difference.to_dict(),
        }

    def summary(self) -> pd.DataFrame:
        """One row per arm plus the difference."""
        return pd.DataFrame(
            [{"what": k, **getattr(self, k).to_dict()} for k in ("trial", "control", "difference")]
        )


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """Trial vs synthetic control on one time-to-event endpoint (results.json endpoint).

    ``to_dict()`` is ``results.json["endpoints"]["PFS"]``: ``landmarks``, ``median``,
    ``hazard_ratio``, ``rmst`` (as ARCHITECTURE.md), plus ``logrank`` (weighted log-rank
    = robust Cox score test), ``evalues`` (``hazard_ratio`` and ``landmark_<t>`` risk
    ratios) and ``arms`` (n, events, sum of weights, ESS per arm).
    """

    trial_curve: SurvivalCurve
    control_curve: SurvivalCurve
    landmarks: tuple[LandmarkComparison, ...]
    median_trial: QuantileEstimate
    median_control: QuantileEstimate
    hazard_ratio: HazardRatio
    logrank: LogRankTest
    rmst: RMSTComparison | None
    evalues: dict[str, EValue] = field(default_factory=dict)
    time_unit: str | None = None
    conf_level: float = 0.95

    def to_dict(self) -> dict:
        """results.json ``endpoints.<endpoint>`` content."""
        arms = {
            name: {"n": c.n_rows, "events": c.n_events, "sum_weights": c.sum_weights, "ess": c.ess}
            for name, c in (("trial", self.trial_curve), ("control", self.control_curve))
        }
        return {
            "landmarks": [lm.to_dict() for lm in self.landmarks],
            "median": {
                "unit": self.time_unit,
                "trial": self.median_trial.to_dict(),
                "control": self.median_control.to_dict(),
            },
            "hazard_ratio": self.hazard_ratio.to_dict(),
            "rmst": None if self.rmst is None else self.rmst.to_dict(),
            "logrank": self.logrank.to_dict(),
            "evalues": {k: v.to_dict() for k, v in self.evalues.items()},
            "arms": arms,
        }

    def summary(self) -> pd.DataFrame:
        """One row per reported quantity (for printing; HTML lives in reports/html.py)."""
        rows = []
        for lm in self.landmarks:
            for arm, est in (
                ("trial", lm.trial),
                ("control", lm.control),
                ("difference", lm.difference),
            ):
                rows.append(
                    {
                        "quantity": f"S({lm.time:g} {lm.unit or ''})".replace(" )", ")"),
                        "arm": arm,
                        **_row(est),
                    }
                )
        for arm, med in (("trial", self.median_trial), ("control", self.median_control)):
            rows.append(
                {
                    "quantity": "median",
                    "arm": arm,
                    "estimate": med.estimate,
                    "se": np.nan,
                    "lower": med.lower,
                    "upper": med.upper,
                    "method": med.method,
                }
            )
        hr = self.hazard_ratio
        rows.append(
            {
                "quantity": "hazard ratio",
                "arm": "trial vs control",
                "estimate": hr.estimate,
                "se": hr.se_log,
                "lower": hr.lower,
                "upper": hr.upper,
                "method": hr.method,
            }
        )
        if self.rmst is not None:
            for arm, est in (
                ("trial", self.rmst.trial),
                ("control", self.rmst.control),
                ("difference", self.rmst.difference),
            ):
                rows.append({"quantity": f"RMST({self.rmst.tau:g})", "arm": arm, **_row(est)})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        t, c = self.trial_curve, self.control_curve
        return (
            f"ArmComparison(trial n={t.n_rows} ess={t.ess:.1f}, control n={c.n_rows} "
            f"ess={c.ess:.1f}, HR={self.hazard_ratio.estimate:.3f})"
        )


def _row(est: Estimate) -> dict:
    return {
        "estimate": est.estimate,
        "se": est.se,
        "lower": est.lower,
        "upper": est.upper,
        "method": est.method,
    }


def compare_arms(
    frame: pd.DataFrame,
    *,
    time_col: str,
    event_col: str,
    arm_col: str = "arm",
    treated_value: object = "trial",
    weight_col: str | None = None,
    cluster_col: str | None = None,
    km_cluster_col: str | None = None,
    landmarks: Sequence[float] = (),
    time_unit: str | None = None,
    null_rate: float | None = None,
    rmst_tau: float | None = None,
    conf_type: str = "log",
    conf_level: float = 0.95,
) -> ArmComparison:
    """Compare the trial arm with the (weighted or matched) control arm.

    Parameters
    ----------
    frame : DataFrame
        One row per patient (or patient x index line) of both arms, with time, event, arm,
        and optionally weight and cluster columns. Rows with weight 0 are kept (counted in
        ``arms.n``) and contribute nothing.
    time_col, event_col : str
        Follow-up time (in ``time_unit``) and event indicator (1 event, 0 censored).
    arm_col, treated_value : str, object
        Column of the arm and the value of the trial arm; every other value is control.
    weight_col : str, optional
        Case weights (matching or weighting design); None means 1.
    cluster_col : str, optional
        Cluster of the robust Cox variance (match pair for matched designs, patient for
        weighting designs); None means each row its own cluster (``robust = TRUE``).
    km_cluster_col : str, optional
        Cluster for the KM IJ variance (the patient, when patients have several rows).
    landmarks : sequence of float
        Landmark times in ``time_unit`` (e.g. ``[24]`` weeks).
    null_rate : float, optional
        Null landmark survival rate for the one-sided tests (Simon H0, e.g. 0.35).
    rmst_tau : float, optional
        Truncation time of the RMST in ``time_unit``.
    conf_type : {"log", "log-log", "plain", "logit", "arcsin"}
        Scale of the KM pointwise limits (`reports.km.CONF_TYPES`, as R's ``conf.type``).

    Returns
    -------
    ArmComparison
        ``to_dict()`` gives ``results.json["endpoints"]["PFS"]``.
    """
    check_option("conf_type", conf_type, CONF_TYPES)
    level = check_conf_level(conf_level)
    if null_rate is not None and not 0 < null_rate < 1:
        raise EstimationError(f"null_rate must be in (0, 1), got {null_rate!r}")
    require_columns(
        frame,
        {
            "time_col": time_col,
            "event_col": event_col,
            "arm_col": arm_col,
            "weight_col": weight_col,
            "cluster_col": cluster_col,
            "km_cluster_col": km_cluster_col,
        },
    )
    t, e = time_array(frame, time_col), event_array(frame, event_col)
    w = weight_array(frame, weight_col)
    is_trial = (frame[arm_col] == treated_value).to_numpy()
    if is_trial.all() or not is_trial.any():
        raise EstimationError(
            f"arm_col={arm_col!r}: need rows of both arms (trial value {treated_value!r}); "
            f"found {int(is_trial.sum())} trial and {int((~is_trial).sum())} control rows"
        )
    km_cl = cluster_codes(frame, km_cluster_col, w)
    # survfit decides robust on all the weights of the call, not per arm
    variance = "ij" if km_cl is not None or not are_counts(w) else "greenwood"
    curves = {}
    for name, mask in (("trial", is_trial), ("control", ~is_trial)):
        curves[name] = km_estimate(
            t[mask],
            e[mask],
            w[mask],
            None if km_cl is None else km_cl[mask],
            variance=variance,
            conf_type=conf_type,
            conf_level=level,
            cluster_name=km_cluster_col,
            time_unit=time_unit,
            label=name,
        )
    trial, control = curves["trial"], curves["control"]
    lms = tuple(
        compare_landmark(trial, control, float(x), null_rate=null_rate, unit=time_unit)
        for x in landmarks
    )
    if km_cl is not None and variance == "ij":
        lms = tuple(
            _clustered_difference(lm, t, e, w, km_cl, is_trial, km_cluster_col) for lm in lms
        )
    hr, lr = cox_hazard_ratio(
        t,
        e,
        is_trial.astype(float),
        w,
        cluster_codes(frame, cluster_col, w),
        cluster_name=cluster_col,
        conf_level=level,
    )
    rm = None
    if rmst_tau is not None:
        tau = float(rmst_tau)
        infl = {}
        if variance == "ij":  # the IJ SE, as the curve's (invariant to the weights' scale)
            for name, mask in (("trial", is_trial), ("control", ~is_trial)):
                u = ij_rmst_influence(t[mask], e[mask], w[mask], tau)
                infl[name] = u if km_cl is None else np.bincount(km_cl[mask], weights=u)
        rt = rmst(trial, tau, infl.get("trial"))
        rc = rmst(control, tau, infl.get("control"))
        rm = RMSTComparison(float(rmst_tau), time_unit, rt, rc, rmst_difference(rt, rc, level))
    return ArmComparison(
        trial,
        control,
        lms,
        median_survival(trial),
        median_survival(control),
        hr,
        lr,
        rm,
        evalues_of(hr, lms, level),
        time_unit,
        level,
    )


def _clustered_difference(lm, t, e, w, cl, is_trial, name) -> LandmarkComparison:
    """Difference SE with the covariance of clusters present in both arms (IJ)."""
    if not lm.difference.estimable:
        return lm
    k = int(cl.max()) + 1
    u = np.zeros(k)
    for mask, sign in ((is_trial, 1.0), (~is_trial, -1.0)):
        u += sign * np.bincount(
            cl[mask], weights=ij_influence_at(t[mask], e[mask], w[mask], lm.time), minlength=k
        )
    se = float(np.sqrt(np.sum(u * u)))
    diff = wald_estimate(
        lm.difference.estimate,
        se,
        lm.difference.conf_level,
        "difference of KM estimates, infinitesimal-jackknife SE with the "
        f"covariance of clusters ({name}) shared by the arms, "
        f"Wald {lm.difference.conf_level:.0%}",
    )
    return replace(lm, difference=diff)


def evalues_of(
    hr: HazardRatio, lms: tuple[LandmarkComparison, ...], level: float
) -> dict[str, EValue]:
    """E-values of the HR and the landmark risk ratios, from the limits they carry."""
    out: dict[str, EValue] = {}
    if np.isfinite(hr.estimate) and hr.estimate > 0:
        out["hazard_ratio"] = evalue_hr(hr.estimate, hr.lower, hr.upper, rare=False)
    for lm in lms:
        if lm.trial.estimable and lm.control.estimable:
            rr, lo, hi = landmark_risk_ratio(
                lm.trial.estimate, lm.trial.se, lm.control.estimate, lm.control.se, level
            )
            if np.isfinite(rr) and rr > 0:
                out[f"landmark_{lm.time:g}"] = evalue_rr(
                    rr,
                    lo,
                    hi,
                    measure="RR of progression by the landmark",
                    method="E-value (EValue::evalues.RR) of the risk ratio 1-S(t), trial vs "
                    "control, delta-method log-scale CI",
                )
    return out
