"""Rubin's rules: pool one analysis run on each of ``m`` imputed data sets.

For estimates ``Q_1..Q_m`` with complete-data variances ``U_1..U_m`` (on the analysis scale):

* pooled estimate ``Qbar = mean(Q)``; within variance ``Ubar = mean(U)``; between variance
  ``B = var(Q)`` (``ddof = 1``); total ``T = Ubar + (1 + 1/m) B``;
* relative increase in variance ``r = (1 + 1/m) B / Ubar``, ``lambda = (1 + 1/m) B / T``;
* Barnard-Rubin (1999) degrees of freedom with complete-data df ``dfcom``:
  ``df_old = (m - 1) / lambda^2``, ``df_obs = (dfcom + 1) / (dfcom + 3) dfcom (1 - lambda)``,
  ``df = df_old df_obs / (df_old + df_obs)`` (``df_old`` when ``dfcom`` is infinite), with
  ``lambda`` floored at 1e-4 as R ``mice:::barnard.rubin`` does;
* fraction of missing information ``fmi = (r + 2 / (df + 3)) / (r + 1)``;
* limits ``Qbar +- t_{df, 1 - alpha/2} sqrt(T)``.

This is R ``mice::pool.scalar(Q, U, n = dfcom + 1, k = 1)`` and ``mice::pool`` on a list of
fits (tests/fixtures/mi_pm_a). The study analysis pools through these functions in
`reports.analysis_mi` (one typed `StudyAnalysis`). The scale matters: hazard ratios are
pooled as log HR, survival probabilities on the complementary log-log scale ``log(-log S)``
(the SE carried there by the delta method ``se_S / (S |log S|)``) and back-transformed,
differences of probabilities and RMST as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from reports.cox import HazardRatio
from reports.errors import EstimationError
from reports.estimate import Estimate, json_number

SCALES = ("identity", "log", "cloglog", "logit")
_LAMBDA_FLOOR = 1e-4  # mice:::barnard.rubin


@dataclass(frozen=True, slots=True)
class RubinPooled:
    """Rubin's-rules pooling of one scalar on its analysis scale.

    Attributes
    ----------
    estimate, se, lower, upper : float
        ``Qbar``, ``sqrt(T)`` and the t-based limits, on the analysis ``scale``.
    within, between, total : float
        ``Ubar``, ``B`` and ``T``.
    riv, lambda_, fmi, df, dfcom : float
        Relative increase in variance, proportion of variance due to missingness, fraction of
        missing information, Barnard-Rubin df and the complete-data df used.
    m : int
        Number of imputations.
    scale : str
        ``"identity"``, ``"log"``, ``"cloglog"`` or ``"logit"``.
    conf_level : float
    """

    estimate: float
    se: float
    lower: float
    upper: float
    within: float
    between: float
    total: float
    riv: float
    lambda_: float
    fmi: float
    df: float
    dfcom: float
    m: int
    scale: str
    conf_level: float

    def to_dict(self) -> dict:
        """results.json ``pooling`` object (analysis scale; null for NA; ``dfcom`` null = inf)."""
        f = json_number
        return {"m": self.m, "scale": self.scale, "estimate": f(self.estimate), "se": f(self.se),
                "lower": f(self.lower), "upper": f(self.upper), "within": f(self.within),
                "between": f(self.between), "total": f(self.total), "riv": f(self.riv),
                "lambda": f(self.lambda_), "fmi": f(self.fmi), "df": f(self.df),
                "dfcom": f(self.dfcom)}

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame."""
        return pd.DataFrame([self.to_dict()])


def barnard_rubin_df(m: int, between: float, total: float, dfcom: float = math.inf) -> float:
    """Barnard-Rubin degrees of freedom (R ``mice:::barnard.rubin``)."""
    lam = max((1 + 1 / m) * between / total, _LAMBDA_FLOOR) if total > 0 else _LAMBDA_FLOOR
    df_old = (m - 1) / lam**2
    if math.isinf(dfcom):
        return df_old
    df_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    return df_old * df_obs / (df_old + df_obs)


def rubin_pool(
    estimates: Sequence[float],
    variances: Sequence[float],
    *,
    dfcom: float = math.inf,
    conf_level: float = 0.95,
    scale: str = "identity",
) -> RubinPooled:
    """Pool ``m`` estimates and their complete-data variances by Rubin's rules.

    Parameters
    ----------
    estimates, variances : sequence of float, of shape (m,)
        Per-imputation estimate and squared SE, both on the analysis scale.
    dfcom : float, default=inf
        Complete-data degrees of freedom (R ``pool.scalar(n = dfcom + 1, k = 1)``).
    conf_level : float, default=0.95
    scale : str
        Only recorded (the values are already on that scale).

    Returns
    -------
    RubinPooled
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    m = len(q)
    if m < 2 or u.shape != q.shape:
        raise EstimationError(f"Rubin's rules need m >= 2 estimates with one variance each; "
                              f"got {m} estimates and {u.size} variances.")
    if not (np.isfinite(q).all() and np.isfinite(u).all()) or (u < 0).any():
        bad = np.flatnonzero(~np.isfinite(q) | ~np.isfinite(u) | (u < 0)) + 1
        raise EstimationError(f"imputations {bad.tolist()} have no finite estimate or variance.")
    qbar, ubar, b = float(q.mean()), float(u.mean()), float(q.var(ddof=1))
    total = ubar + (1 + 1 / m) * b
    df = barnard_rubin_df(m, b, total, dfcom)
    riv = (1 + 1 / m) * b / ubar if ubar > 0 else math.inf
    lam = (1 + 1 / m) * b / total if total > 0 else 0.0
    fmi = (riv + 2 / (df + 3)) / (riv + 1) if math.isfinite(riv) else 1.0
    half = float(student_t.ppf(1 - (1 - conf_level) / 2, df)) * math.sqrt(total)
    return RubinPooled(qbar, math.sqrt(total), qbar - half, qbar + half, ubar, b, total, riv,
                       lam, fmi, df, float(dfcom), m, scale, conf_level)


def _forward(scale: str, x: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimate and SE on the analysis scale (delta method)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale == "log":
            return np.log(x), se / x
        if scale == "cloglog":
            return np.log(-np.log(x)), se / (x * np.abs(np.log(x)))
        if scale == "logit":
            return np.log(x / (1 - x)), se / (x * (1 - x))
    return x, se


def _inverse(scale: str, g: float) -> float:
    if scale == "log":
        return math.exp(g)
    if scale == "cloglog":
        return math.exp(-math.exp(g))
    if scale == "logit":
        return 1 / (1 + math.exp(-g))
    return g


def _inverse_slope(scale: str, g: float) -> float:
    """d(natural) / d(analysis) at ``g``: carries the pooled SE back (delta method)."""
    x = _inverse(scale, g)
    return {"log": x, "cloglog": x * math.log(x) * -1 if x > 0 else 0.0,
            "logit": x * (1 - x)}.get(scale, 1.0)


def pool_estimates(
    estimates: Sequence[Estimate],
    *,
    scale: str,
    dfcom: float = math.inf,
    conf_level: float = 0.95,
) -> tuple[Estimate, RubinPooled | None]:
    """Pool per-imputation :class:`Estimate` objects on ``scale``; back to the natural scale.

    Returns the pooled ``Estimate`` (natural scale: estimate and limits back-transformed, SE by
    the delta method; the limits of a decreasing transform swap) and the
    :class:`RubinPooled` record on the analysis scale. When an imputation is not estimable
    (e.g. the landmark lies beyond its last follow-up) the result is not estimable, with the
    reason, and no record.
    """
    if scale not in SCALES:
        raise EstimationError(f"scale must be one of {SCALES}; got {scale!r}.")
    method = (f"Rubin's rules over {len(estimates)} imputations on the {scale} scale, "
              f"Barnard-Rubin df, t {conf_level:.0%} limits")
    missing = [i + 1 for i, e in enumerate(estimates) if not (e.estimable and np.isfinite(e.se))]
    if missing:
        reason = next((e.reason for e in estimates if e.reason), None) or "not estimable"
        return Estimate.not_estimable(f"not estimable in imputations {missing}: {reason}",
                                      conf_level, method), None
    x = np.array([e.estimate for e in estimates])
    se = np.array([e.se for e in estimates])
    g, gse = _forward(scale, x, se)
    if not (np.isfinite(g).all() and np.isfinite(gse).all()):
        return Estimate.not_estimable(f"an estimate lies on the boundary of the {scale} scale "
                                      "in some imputation", conf_level, method), None
    p = rubin_pool(g, gse**2, dfcom=dfcom, conf_level=conf_level, scale=scale)
    lo, hi = sorted((_inverse(scale, p.lower), _inverse(scale, p.upper)))
    est = _inverse(scale, p.estimate)
    return Estimate(est, abs(_inverse_slope(scale, p.estimate)) * p.se, lo, hi, conf_level,
                    method), p


def pool_hazard_ratios(
    hrs: Sequence[HazardRatio],
    *,
    dfcom: float | None = None,
    conf_level: float = 0.95,
) -> tuple[HazardRatio, RubinPooled]:
    """Pool per-imputation Cox hazard ratios on the log scale (robust SE as each one's).

    ``dfcom`` defaults to mice's choice for ``coxph`` fits, the number of events minus one
    (of the first imputation, as ``mice:::get.dfcom``). The p-value is two-sided from
    ``t(df)``. ``se_log_naive`` is NaN: a model-based SE has no pooled counterpart.
    """
    if dfcom is None:
        dfcom = max(hrs[0].events - 1, 1)
    p = rubin_pool([h.log_hr for h in hrs], [h.se_log**2 for h in hrs], dfcom=dfcom,
                   conf_level=conf_level, scale="log")
    p_value = float(2 * student_t.sf(abs(p.estimate) / p.se, p.df)) if p.se > 0 else math.nan
    method = (f"Cox log HR pooled by Rubin's rules over {p.m} imputations (per imputation: "
              f"{hrs[0].method}), Barnard-Rubin df = {p.df:.4g}, t {conf_level:.0%} limits")
    n = round(float(np.mean([h.n for h in hrs])))  # mean over imputations
    events = round(float(np.mean([h.events for h in hrs])))
    hr = HazardRatio(math.exp(p.estimate), math.exp(p.lower), math.exp(p.upper), p.se, p_value,
                     conf_level, method, p.estimate, math.nan, n, events,
                     all(h.converged for h in hrs))
    return hr, p


def pool_curves(curves: Sequence, *, conf_level: float | None = None):
    """Kaplan-Meier curves of ``m`` imputed designs combined into one `SurvivalCurve`.

    At each time of any curve: survival = the mean over imputations (what MatchThem users
    plot); pointwise limits by Rubin's rules on log(-log S) (infinite complete-data df), the
    SE carried back by the delta method; weighted numbers at risk, events and censorings the
    mean over imputations (so may be fractional). Identical curves give themselves back
    (survival, SE and numbers), with log-log limits.
    """
    from dataclasses import replace

    from reports.km import SurvivalCurve

    curves = tuple(curves)
    if len(curves) < 2:
        raise EstimationError(f"pooling curves needs m >= 2; got {len(curves)}.")
    first: SurvivalCurve = curves[0]
    level = first.conf_level if conf_level is None else conf_level
    time = np.unique(np.concatenate([c.time for c in curves]))
    at = [c.at(time) for c in curves]
    m = len(curves)
    s = np.vstack([a["surv"].to_numpy(float) for a in at])
    se = np.vstack([a["std_err"].to_numpy(float) for a in at])
    surv = s.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        g, gse = _forward("cloglog", s, se)
        qbar, ubar = g.mean(axis=0), (gse**2).mean(axis=0)
        b = g.var(axis=0, ddof=1)
        total = ubar + (1 + 1 / m) * b
        lam = np.maximum(np.where(total > 0, (1 + 1 / m) * b / total, 0.0), _LAMBDA_FLOOR)
        df = (m - 1) / lam**2
        half = student_t.ppf(1 - (1 - level) / 2, df) * np.sqrt(total)
        lower = np.exp(-np.exp(qbar + half))
        upper = np.exp(-np.exp(qbar - half))
        std_err = np.sqrt(total) * surv * np.abs(np.log(surv))
    ok = np.isfinite(qbar) & np.isfinite(total)
    lower = np.where(ok, lower, np.where(surv >= 1, 1.0, np.nan))
    upper = np.where(ok, upper, np.where(surv >= 1, 1.0, np.nan))
    std_err = np.where(ok, std_err, np.where(surv >= 1, 0.0, np.nan))

    def mean_at(attr: str) -> np.ndarray:
        out = np.zeros((m, time.size))
        for k, c in enumerate(curves):
            vals = getattr(c, attr)
            if vals is None:
                return np.full(time.size, np.nan)
            out[k, np.searchsorted(time, c.time)] = vals
        return out.mean(axis=0)

    n_risk = np.vstack([a["n_risk"].to_numpy(float) for a in at]).mean(axis=0)
    rows = np.vstack([a["n_risk_rows"].to_numpy(float) for a in at]).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_log = np.where(surv > 0, std_err / surv, np.nan)
    return replace(
        first, time=time, n_risk=n_risk, n_event=mean_at("n_event"),
        n_censor=mean_at("n_censor"), surv=surv, std_err=std_err, se_log=se_log, lower=lower,
        upper=upper, conf_type="log-log", conf_level=level,
        n_events=round(float(np.mean([c.n_events for c in curves]))),
        sum_weights=float(np.mean([c.sum_weights for c in curves])),
        ess=float(np.mean([c.ess for c in curves])),
        max_time=float(np.min([c.max_time for c in curves])), n_risk_rows=rows)
