"""Survival at landmark times: per arm, trial-minus-control difference, test against a null rate.

Per arm the numbers are R's ``summary(survfit(...), times = t, extend = TRUE)``: S(t), its
SE on the probability scale and the log (or log-log) scale limits. One deliberate difference:
R carries the last value forward past the last follow-up time; we report NA with a reason
instead, because that value is an extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from reports.estimate import Estimate, json_number, wald_difference
from reports.km import SurvivalCurve


@dataclass(frozen=True, slots=True)
class NullRateTest:
    """One-sided test of H0: S(t) <= null_rate against H1: S(t) > null_rate (Simon H0).

    The z statistic is on the scale of the confidence limits (log: ``(log S - log p0) /
    (se/S)``; log-log: ``(log(-log p0) - log(-log S)) / (se / (S |log S|))``), so the test
    rejects at level alpha exactly when the one-sided (1 - alpha) limit excludes the null.
    """

    null_rate: float
    z: float
    p_value: float
    alternative: str = "greater"
    method: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        f = json_number
        return {
            "null_rate": self.null_rate,
            "z": f(self.z),
            "p_value": f(self.p_value),
            "alternative": self.alternative,
            "method": self.method,
        }

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame."""
        return pd.DataFrame([self.to_dict()])


def landmark_survival(curve: SurvivalCurve, at: float) -> Estimate:
    """Survival probability at a landmark time.

    Parameters
    ----------
    curve : SurvivalCurve
        Fitted curve of one arm.
    at : float
        Landmark, in ``curve.time_unit`` (weeks for the spec's ``landmarks``).

    Returns
    -------
    Estimate
        S(at) on the probability scale with SE and limits (``curve.conf_type``) as in R
        ``summary(survfit(...), times=at)``; NA with a reason beyond the last follow-up.
    """
    method = curve.method
    if curve.time.size == 0:
        return Estimate.not_estimable("no patients in this arm", curve.conf_level, method)
    row = curve.at(at).iloc[0]
    if row["beyond_follow_up"]:
        return Estimate.not_estimable(
            f"landmark {at:g} is beyond the last follow-up time ({curve.max_time:g}); "
            "not extrapolated",
            curve.conf_level,
            method,
        )
    return Estimate(
        float(row["surv"]),
        float(row["std_err"]),
        float(row["lower"]),
        float(row["upper"]),
        curve.conf_level,
        method,
    )


def test_null_rate(est: Estimate, null_rate: float, conf_type: str) -> NullRateTest:
    """One-sided test of the landmark rate against ``null_rate`` (see `NullRateTest`)."""
    method = f"one-sided Wald z on the {conf_type} scale, H1: S(t) > {null_rate:g}"
    nan = float("nan")
    s, se = est.estimate, est.se
    if not est.estimable or not 0 < null_rate < 1 or not np.isfinite(se):
        return NullRateTest(null_rate, nan, nan, method=method)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the delta-method SE of the scale the interval uses (`reports.km.conf_limits`)
        if conf_type == "log-log":
            z = (np.log(-np.log(null_rate)) - np.log(-np.log(s))) / (se / (s * abs(np.log(s))))
        elif conf_type == "plain":
            z = (s - null_rate) / se
        elif conf_type == "logit":
            z = (np.log(s / (1 - s)) - np.log(null_rate / (1 - null_rate))) / (se / (s * (1 - s)))
        elif conf_type == "arcsin":
            z = (np.arcsin(np.sqrt(s)) - np.arcsin(np.sqrt(null_rate))) / (
                se / (2 * np.sqrt(s * (1 - s))))
        else:
            z = (np.log(s) - np.log(null_rate)) / (se / s)
    z = float(z)
    if np.isnan(z) and se == 0:  # no variance: the estimate is the truth under the model
        z = float(np.sign(s - null_rate) * np.inf) if s != null_rate else nan
    return NullRateTest(null_rate, z, float(norm.sf(z)) if not np.isnan(z) else nan, method=method)


test_null_rate.__test__ = False  # not a pytest test despite the name


@dataclass(frozen=True, slots=True)
class LandmarkComparison:
    """S(t) per arm, the trial-minus-control difference and the tests against the null rate."""

    time: float
    unit: str | None
    trial: Estimate
    control: Estimate
    difference: Estimate
    trial_vs_null: NullRateTest | None = None
    control_vs_null: NullRateTest | None = None

    def to_dict(self) -> dict:
        """results.json ``landmarks[i]`` object."""
        trial, control = self.trial.to_dict(), self.control.to_dict()
        if self.trial_vs_null is not None:
            trial["null_test"] = self.trial_vs_null.to_dict()
        if self.control_vs_null is not None:
            control["null_test"] = self.control_vs_null.to_dict()
        return {
            "time": self.time,
            "unit": self.unit,
            "trial": trial,
            "control": control,
            "difference": self.difference.to_dict(),
        }

    def summary(self) -> pd.DataFrame:
        """One row per arm plus the difference."""
        rows = [
            {"what": k, **v.to_dict()}
            for k, v in (
                ("trial", self.trial),
                ("control", self.control),
                ("difference", self.difference),
            )
        ]
        return pd.DataFrame(rows)


def compare_landmark(
    trial: SurvivalCurve,
    control: SurvivalCurve,
    at: float,
    *,
    null_rate: float | None = None,
    unit: str | None = None,
) -> LandmarkComparison:
    """Landmark survival per arm, difference (Wald, independent arms) and null-rate tests."""
    level = trial.conf_level
    t_est, c_est = landmark_survival(trial, at), landmark_survival(control, at)
    diff = wald_difference(
        t_est,
        c_est,
        level,
        f"difference of KM estimates, SE sqrt(se_trial^2 + se_control^2), Wald {level:.0%}",
    )
    tests = (None, None)
    if null_rate is not None:
        tests = (
            test_null_rate(t_est, null_rate, trial.conf_type),
            test_null_rate(c_est, null_rate, control.conf_type),
        )
    return LandmarkComparison(float(at), unit, t_est, c_est, diff, *tests)
