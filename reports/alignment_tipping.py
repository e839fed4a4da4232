"""Tipping point of the endpoint alignment: how far the control's progression dates must move.

The shift in days of the control arm's progression dates (deaths and censoring untouched) at
which the standard analysis' 95% limit of the landmark difference reaches 0 and that of the HR
reaches 1 (positive = control progressions later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reports.alignment_versions import compare_on
from reports.compare import ArmComparison
from reports.estimate import json_number

TIPPING_MAX_DAYS = 365.0


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
            cache[delta] = compare_on(frame, cols, t, e.astype(float), landmarks, unit, None,
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
