"""Restricted mean survival time (RMST) up to ``tau`` as R ``summary(survfit, rmean=tau)``.

The SE is survfit's ``se(rmean)`` (survival 3.5-3 ``survmean``): the Greenwood-type sum
``sum_j (area after t_j up to tau)^2 * d_j / (Y_j (Y_j - d_j))`` on the weighted counts. For
weighted data R uses this formula as well (it ignores the robust variance of the curve), so
it treats the weights as known; the bootstrap gives the design-aware interval.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from reports.estimate import Estimate, wald_difference
from reports.km import SurvivalCurve


def rmst(curve: SurvivalCurve, tau: float) -> Estimate:
    """RMST on ``[0, tau]`` with survfit's SE; NA (with reason) when ``tau`` > last follow-up.

    Parameters
    ----------
    curve : SurvivalCurve
        Fitted weighted KM curve.
    tau : float
        Truncation time, in ``curve.time_unit`` (e.g. 52 weeks).

    Returns
    -------
    Estimate
        Area under the curve from 0 to ``tau`` (time units), SE as ``se(rmean)`` in R;
        limits are Wald, ``estimate +/- z se``.
    """
    method = f"RMST (survfit rmean, tau={tau:g}), survfit se(rmean), Wald {curve.conf_level:.0%}"
    if not np.isfinite(tau) or tau <= 0:
        return Estimate.not_estimable(f"tau must be > 0, got {tau!r}", curve.conf_level, method)
    if curve.time.size == 0 or tau > curve.max_time:
        return Estimate.not_estimable(
            f"tau={tau:g} is beyond the last follow-up time ({curve.max_time:g}): "
            "the restricted mean would extrapolate the curve",
            curve.conf_level,
            method,
        )
    # survfit0: prepend time 0 with S = 1 and no events
    insert = curve.time[0] != 0
    t = np.r_[0.0, curve.time] if insert else curve.time
    s = np.r_[1.0, curve.surv] if insert else curve.surv
    y = np.r_[curve.n_risk[0], curve.n_risk] if insert else curve.n_risk
    d = np.r_[0.0, curve.n_event] if insert else curve.n_event
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(y - d == 0, 0.0, d / (y * (y - d)))
    keep = t <= tau
    temptime = np.r_[t[keep], tau]
    tempsurv = np.r_[s[keep], s[keep][-1]]
    hh = np.r_[hh[keep], 0.0]
    delta = np.diff(np.r_[0.0, temptime])
    rect = delta * np.r_[1.0, tempsurv[:-1]]
    var = float(np.sum(np.cumsum(rect[1:][::-1]) ** 2 * hh[::-1][1:]))
    est = float(np.sum(rect))
    se = float(np.sqrt(var))
    z = norm.ppf(1 - (1 - curve.conf_level) / 2)
    return Estimate(est, se, float(est - z * se), float(est + z * se), curve.conf_level, method)


def rmst_difference(trial: Estimate, control: Estimate, conf_level: float) -> Estimate:
    """Trial minus control RMST, independent arms, Wald limits."""
    return wald_difference(
        trial,
        control,
        conf_level,
        f"difference of RMST, SE sqrt(se1^2 + se2^2), Wald {conf_level:.0%}",
    )
