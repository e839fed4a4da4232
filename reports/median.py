"""Median (and other quantiles) of a Kaplan-Meier curve as R ``quantile.survfit`` gives it.

R's rules (survival 3.5-3 ``findq``), reproduced here:

* the p-quantile is the first time at which ``1 - S(t) >= p`` (within a tolerance of
  ``sqrt(machine eps)``);
* when the curve sits exactly at ``1 - p`` on a flat segment, the quantile is the midpoint of
  that segment (the time the curve reaches ``1 - p`` and the time it next drops; the last
  observed time when it never drops again);
* NA when the curve never reaches ``1 - p`` ("not reached");
* the confidence interval is read off the pointwise confidence band the same way (the lower
  limit from the lower band, the upper limit from the upper band), so an upper limit is NA
  when the upper band stays above ``1 - p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.km import SurvivalCurve

_TOL = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True, slots=True)
class QuantileEstimate:
    """A survival-time quantile with its confidence limits (NaN = not reached)."""

    prob: float
    estimate: float
    lower: float
    upper: float
    conf_level: float
    method: str
    time_unit: str | None = None
    se: float = float("nan")
    analytic: tuple[float, float] | None = None

    @property
    def reached(self) -> bool:
        """Whether the curve reaches the quantile."""
        return bool(np.isfinite(self.estimate))

    def to_dict(self) -> dict:
        """results.json ``median.<arm>`` object (None for NA)."""

        def f(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        out = {
            "estimate": f(self.estimate),
            "se": f(self.se),
            "lower": f(self.lower),
            "upper": f(self.upper),
            "method": self.method,
        }
        if self.analytic is not None:
            out["analytic"] = {
                "se": None,
                "lower": f(self.analytic[0]),
                "upper": f(self.analytic[1]),
            }
        if not self.reached:
            out["reason"] = f"not reached: the curve stays above {1 - self.prob:g}"
        return out

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame."""
        return pd.DataFrame([{"prob": self.prob, **self.to_dict()}])


def _findq(x: np.ndarray, y: np.ndarray, p: float, tol: float = _TOL) -> float:
    """R ``survival:::findq`` for one probability: x times (0 first), y = 1 - S (0 first)."""
    if not np.any(np.isfinite(y)) or np.nanmax(y) < p:
        return np.nan
    xmax = x[-1]
    # drop later duplicates (R `duplicated`, NaN counts as a value)
    key = np.where(np.isnan(y), np.inf, y)
    _, first = np.unique(key, return_index=True)
    keep = np.sort(first)
    x, y = x[keep], y[keep]
    n = y.size
    ok = ~np.isnan(y)
    pos = np.arange(n)[ok]
    yy = y[ok]
    order = np.argsort(yy, kind="stable")  # approx() sorts its x

    def right_index(shift: float) -> float:
        xs = yy[order] + shift
        if xs.size == 0 or p < xs[0] or p > xs[-1]:
            return np.nan
        return float(pos[order][np.searchsorted(xs, p, side="left")])

    i1, i2 = right_index(tol), right_index(-tol)
    if np.isnan(i1):
        return np.nan
    quant = (x[int(i1)] + x[int(i2)]) / 2 if not np.isnan(i2) else np.nan
    if p == 0:
        quant = x[0]
    if not np.isnan(y[-1]) and abs(p - y[-1]) < tol:
        quant = (x[int(i1)] + xmax) / 2
    return float(quant)


def survival_quantile(curve: SurvivalCurve, prob: float = 0.5) -> QuantileEstimate:
    """Time by which a fraction ``prob`` has had the event (0.5 = median), with CI.

    Same numbers as R ``quantile(survfit(...), probs=prob)`` (estimate, lower, upper), in the
    time unit of the curve; NaN when not reached.
    """
    x = np.r_[0.0, curve.time]
    est = _findq(x, np.r_[0.0, 1.0 - curve.surv], prob)
    lo = _findq(x, np.r_[0.0, 1.0 - curve.lower], prob)
    hi = _findq(x, np.r_[0.0, 1.0 - curve.upper], prob)
    return QuantileEstimate(
        prob=prob,
        estimate=est,
        lower=lo,
        upper=hi,
        conf_level=curve.conf_level,
        method=(
            f"quantile.survfit: first time S(t) <= {1 - prob:g} (flat-segment midpoint), "
            f"limits from the {curve.conf_type}-scale {curve.conf_level:.0%} band"
        ),
        time_unit=curve.time_unit,
    )


def median_survival(curve: SurvivalCurve) -> QuantileEstimate:
    """Median survival time with CI, as ``quantile(fit, 0.5)`` in R."""
    return survival_quantile(curve, 0.5)
