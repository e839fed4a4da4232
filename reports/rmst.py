"""Restricted mean survival time (RMST) up to ``tau`` as R ``summary(survfit, rmean=tau)``.

Two SEs, chosen like the curve's variance:

* counts (integer weights, Greenwood curve): survfit's printed ``se(rmean)`` (survival 3.5-3
  ``survmean``), the Greenwood-type sum ``sum_j (area after t_j up to tau)^2 d_j /
  (Y_j (Y_j - d_j))``;
* non-integer weights or clusters (IJ curve): the infinitesimal-jackknife SE,
  ``sqrt(sum_g U_g^2)`` with ``U_g`` the weighted influence of cluster ``g`` on the RMST
  (`ij_rmst_influence`; R ``residuals(fit, times = tau, type = "sojourn",
  weighted = TRUE)``). survfit's printed SE applies the Greenwood sum to weighted counts and
  so changes with the scale of the weights (x1, x23.4, x100 give 0.58, 0.12, 0.058 on the
  tests' fixture where the IJ SE is 0.611 at every scale): it is not used for weights.
"""

from __future__ import annotations

import numpy as np

from reports.estimate import Estimate, wald_difference, wald_estimate
from reports.km import SurvivalCurve, _ij_pieces


def rmst(curve: SurvivalCurve, tau: float, influence: np.ndarray | None = None) -> Estimate:
    """RMST on ``[0, tau]``; NA (with reason) when ``tau`` > last follow-up.

    Parameters
    ----------
    curve : SurvivalCurve
        Fitted weighted KM curve.
    tau : float
        Truncation time, in ``curve.time_unit`` (e.g. 52 weeks).
    influence : ndarray, optional
        Influence of each cluster (or row) on the RMST (`ij_rmst_influence`
        summed within clusters): the SE is then the IJ one, else survfit's ``se(rmean)``.

    Returns
    -------
    Estimate
        Area under the curve from 0 to ``tau`` (time units); limits are Wald,
        ``estimate +/- z se``.
    """
    se_name = ("infinitesimal-jackknife SE" if influence is not None
               else "survfit se(rmean)")
    method = f"RMST (survfit rmean, tau={tau:g}), {se_name}, Wald {curve.conf_level:.0%}"
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
    if influence is None:  # survfit's se(rmean), on counts
        with np.errstate(divide="ignore", invalid="ignore"):
            hh = np.where(y - d == 0, 0.0, d / (y * (y - d)))
    else:
        hh = np.zeros_like(y)
    keep = t <= tau
    temptime = np.r_[t[keep], tau]
    tempsurv = np.r_[s[keep], s[keep][-1]]
    hh = np.r_[hh[keep], 0.0]
    delta = np.diff(np.r_[0.0, temptime])
    rect = delta * np.r_[1.0, tempsurv[:-1]]
    var = float(np.sum(np.cumsum(rect[1:][::-1]) ** 2 * hh[::-1][1:]))
    est = float(np.sum(rect))
    se = float(np.sqrt(var if influence is None else np.sum(np.square(influence))))
    return wald_estimate(est, se, curve.conf_level, method)


def rmst_difference(trial: Estimate, control: Estimate, conf_level: float) -> Estimate:
    """Trial minus control RMST, independent arms, Wald limits."""
    return wald_difference(
        trial,
        control,
        conf_level,
        f"difference of RMST, SE sqrt(se1^2 + se2^2), Wald {conf_level:.0%}",
    )


def ij_rmst_influence(
    time: np.ndarray, event: np.ndarray, weights: np.ndarray, tau: float
) -> np.ndarray:
    """Per-row weighted IJ influence on the RMST up to ``tau`` (R ``residuals(survfit(...,
    influence = TRUE), times = tau, type = "sojourn", weighted = TRUE)``).

    The integral over ``[0, tau]`` of the landmark influence of `ij_influence_at`:
    ``-w_i [(delta_i A(T_i) - G(T_i)) int_{T_i}^tau S dt - int_0^{min(T_i, tau)} S G dt]``
    (the first term only when ``T_i <= tau``). ``sum_g (sum_{i in g} u_i)^2`` is the IJ
    variance: unlike survfit's printed ``se(rmean)`` it does not change with the scale of
    the weights.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    w, ut, idx, g, a, surv = _ij_pieces(time, event, weights)
    # step functions on [0, ut_0), [ut_0, ut_1), ... cut at tau; cumulative integrals at ut_j
    seg_end = np.minimum(np.r_[ut[1:], np.inf], tau)
    length = np.maximum(seg_end - np.minimum(ut, tau), 0.0)
    first = min(float(ut[0]), tau) if ut.size else tau
    cum_s = first + np.r_[0.0, np.cumsum(surv * length)]  # int_0^{ut_j} S, j = 0..m
    cum_sg = np.r_[0.0, np.cumsum(surv * g * length)]  # S G = 0 before ut_0
    total_s = cum_s[-1]
    inside = time <= tau
    j = np.where(inside, idx, 0)
    after = np.where(inside, total_s - cum_s[j], 0.0)  # int_{T_i}^tau S
    sg_before = np.where(inside, cum_sg[j], cum_sg[-1])  # int_0^{min(T_i, tau)} S G
    return -w * ((event * a[idx] - g[idx]) * after * inside - sg_before)
