"""E-values for unmeasured confounding (VanderWeele & Ding 2017), EValue R package conventions.

The E-value is the minimum strength of association, on the risk-ratio scale, that an
unmeasured confounder would need with both the treatment and the outcome to explain away the
observed association: ``E = RR + sqrt(RR (RR - 1))`` for RR >= 1 (invert a protective RR
first). As ``EValue::evalues.HR(rare = FALSE)``, a hazard ratio for a common outcome (PFS
events are common) is first converted with ``RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``
(VanderWeele 2020). For the confidence interval the E-value is computed for the limit closer
to the null, and is 1 when the interval contains the null. A non-null ``true`` value is
handled as in ``EValue::threshold``: ``E = (RR + sqrt(RR (RR - true))) / true`` on the
"away from true" side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.errors import EstimationError
from reports.estimate import json_number


@dataclass(frozen=True, slots=True)
class EValue:
    """E-values of a ratio estimate and of its confidence limit closer to the null."""

    measure: str
    estimate_rr: float
    lower_rr: float
    upper_rr: float
    evalue_point: float
    evalue_ci: float
    method: str

    def to_dict(self) -> dict:
        """JSON-ready dict (results.json ``endpoints.PFS.evalues.<key>``)."""
        f = json_number
        return {
            "measure": self.measure,
            "rr": f(self.estimate_rr),
            "rr_lower": f(self.lower_rr),
            "rr_upper": f(self.upper_rr),
            "point": f(self.evalue_point),
            "ci": f(self.evalue_ci),
            "method": self.method,
        }

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame."""
        return pd.DataFrame([self.to_dict()])


def hr_to_rr(hr: float) -> float:
    """Common-outcome conversion of a hazard ratio to a risk ratio (VanderWeele 2020)."""
    return float((1 - 0.5 ** np.sqrt(hr)) / (1 - 0.5 ** np.sqrt(1 / hr)))


def _threshold(rr: float, true: float) -> float:
    if not np.isfinite(rr):
        return float("nan")
    if rr < true:
        rr, true = 1 / rr, 1 / true
    ratio = rr / true
    return float(ratio + np.sqrt(ratio * (ratio - 1)))


def evalue_rr(
    est: float,
    lo: float = np.nan,
    hi: float = np.nan,
    *,
    true: float = 1.0,
    measure: str = "RR",
    method: str | None = None,
) -> EValue:
    """E-value for a risk ratio and its CI (``EValue::evalues.RR``)."""
    for name, value in (("est", est), ("lo", lo), ("hi", hi), ("true", true)):
        if np.isfinite(value) and value <= 0:
            raise EstimationError(f"{name} must be a ratio > 0, got {value!r}")
    if np.isfinite(lo) and np.isfinite(hi) and lo > hi:
        raise EstimationError(f"lower limit {lo!r} is above upper limit {hi!r}")
    point = _threshold(est, true)
    if (np.isfinite(lo) and np.isfinite(hi) and lo <= true <= hi) or est == true:
        ci = 1.0
    elif est > true:
        ci = _threshold(lo, true) if np.isfinite(lo) else float("nan")
    else:
        ci = _threshold(hi, true) if np.isfinite(hi) else float("nan")
    return EValue(
        measure,
        est,
        lo,
        hi,
        point,
        ci,
        method or "E-value (VanderWeele & Ding 2017), EValue::evalues.RR",
    )


def evalue_hr(
    est: float, lo: float = np.nan, hi: float = np.nan, *, rare: bool = False, true: float = 1.0
) -> EValue:
    """E-value for a hazard ratio and its CI (``EValue::evalues.HR``; common outcome default)."""
    if rare:
        conv, method = (lambda x: x), "E-value, rare outcome (HR taken as RR), EValue::evalues.HR"
    else:
        conv = hr_to_rr
        method = (
            "E-value, common outcome: RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)), "
            "EValue::evalues.HR(rare = FALSE)"
        )
    for name, value in (("est", est), ("lo", lo), ("hi", hi)):
        if np.isfinite(value) and value <= 0:
            raise EstimationError(f"{name} must be a hazard ratio > 0, got {value!r}")
    vals = [conv(v) if np.isfinite(v) else float("nan") for v in (est, lo, hi)]
    return evalue_rr(*vals, true=conv(true), measure="HR", method=method)


def landmark_risk_ratio(
    s_trial: float, se_trial: float, s_control: float, se_control: float, conf_level: float = 0.95
) -> tuple[float, float, float]:
    """Risk ratio of progression by the landmark, trial vs control, with delta-method CI.

    Risk = 1 - S(t); ``var(log(1 - S)) = se^2 / (1 - S)^2``; limits on the log scale.
    """
    from scipy.stats import norm

    r1, r0 = 1 - s_trial, 1 - s_control
    if not (r1 > 0 and r0 > 0):
        nan = float("nan")
        return nan, nan, nan
    rr = r1 / r0
    se = float(np.hypot(se_trial / r1, se_control / r0))
    z = norm.ppf(1 - (1 - conf_level) / 2)
    return float(rr), float(rr * np.exp(-z * se)), float(rr * np.exp(z * se))
