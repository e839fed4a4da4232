"""`Estimate`: one number with its SE, limits and the name of the method (results.json object)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import norm


def json_number(x: float | None) -> float | None:
    """A float for JSON, None for NA/inf."""
    return float(x) if x is not None and np.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with standard error and confidence limits.

    ``estimate``/``se``/``lower``/``upper`` are NaN when the quantity is not estimable; then
    ``reason`` says why (e.g. landmark beyond the last follow-up). ``method`` names how the
    SE and limits were obtained. ``analytic`` holds the analytic (se, lower, upper) when the
    primary ones come from the bootstrap.
    """

    estimate: float
    se: float
    lower: float
    upper: float
    conf_level: float
    method: str
    reason: str | None = None
    analytic: tuple[float, float, float] | None = None

    @classmethod
    def not_estimable(cls, reason: str, conf_level: float, method: str) -> Estimate:
        """An NA estimate carrying its reason."""
        nan = float("nan")
        return cls(nan, nan, nan, nan, conf_level, method, reason)

    @property
    def estimable(self) -> bool:
        """Whether a point estimate exists."""
        return bool(np.isfinite(self.estimate))

    def with_bootstrap(self, se: float, lower: float, upper: float, method: str) -> Estimate:
        """Copy with bootstrap SE/limits as primary and the analytic ones kept aside."""
        return replace(
            self,
            se=se,
            lower=lower,
            upper=upper,
            method=method,
            analytic=(self.se, self.lower, self.upper),
        )

    def to_dict(self) -> dict:
        """results.json estimate object (None for NA)."""
        out: dict = {
            "estimate": json_number(self.estimate),
            "se": json_number(self.se),
            "lower": json_number(self.lower),
            "upper": json_number(self.upper),
            "method": self.method,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.analytic is not None:
            se, lo, hi = self.analytic
            out["analytic"] = {
                "se": json_number(se),
                "lower": json_number(lo),
                "upper": json_number(hi),
            }
        return out

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame."""
        return pd.DataFrame([self.to_dict()])


def ratio_dict(ratio, *, extra: dict | None = None, reason: str | None = None) -> dict:
    """The results.json object of a ratio estimate (hazard ratio, risk or odds ratio).

    ``ratio`` has ``estimate``, ``lower``, ``upper``, ``se_log``, ``p_value``, ``method`` and
    ``analytic`` (``(se_log, lower, upper)`` after a bootstrap, else None); ``extra`` keys
    follow ``method``, then ``reason`` and ``analytic`` when present (None -> JSON null).
    """
    f = json_number
    out = {
        "estimate": f(ratio.estimate),
        "lower": f(ratio.lower),
        "upper": f(ratio.upper),
        "se_log": f(ratio.se_log),
        "p_value": f(ratio.p_value),
        "method": ratio.method,
        **(extra or {}),
    }
    if reason is not None:
        out["reason"] = reason
    if ratio.analytic is not None:
        se, lo, hi = ratio.analytic
        out["analytic"] = {"se_log": f(se), "lower": f(lo), "upper": f(hi)}
    return out


def z_quantile(conf_level: float) -> float:
    """The two-sided standard-normal quantile of ``conf_level`` (1.959964 for 0.95)."""
    return float(norm.ppf(1 - (1 - conf_level) / 2))


def wald_limits(est: float, se: float, conf_level: float) -> tuple[float, float]:
    """Wald limits ``est -/+ z se`` on the scale of ``est`` (exponentiate for a log ratio)."""
    z = z_quantile(conf_level)
    return float(est - z * se), float(est + z * se)


def wald_p_value(est: float, se: float) -> float:
    """Two-sided Wald p-value of H0: the parameter is 0, ``2 P(Z > |est / se|)``; NaN when
    ``se`` is 0 (R's ``summary.glm``/``coxph`` give NaN or Inf there)."""
    return float(2 * norm.sf(abs(est / se))) if se > 0 else float("nan")


def wald_estimate(est: float, se: float, conf_level: float, method: str) -> Estimate:
    """An `Estimate` with Wald limits ``est -/+ z se`` (probability or time scale)."""
    lo, hi = wald_limits(est, se, conf_level)
    return Estimate(float(est), float(se), lo, hi, conf_level, method)


def wald_difference(a: Estimate, b: Estimate, conf_level: float, method: str) -> Estimate:
    """``a - b`` for independent arms: SE = sqrt(se_a^2 + se_b^2), Wald limits."""
    if not (a.estimable and b.estimable):
        reason = a.reason or b.reason or "one arm is not estimable"
        return Estimate.not_estimable(reason, conf_level, method)
    return wald_estimate(a.estimate - b.estimate, float(np.hypot(a.se, b.se)), conf_level,
                         method)
