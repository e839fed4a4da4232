"""Weighted Kaplan-Meier with R ``survfit``'s default variance (survival 3.5-3).

Why our own: lifelines' weighted `KaplanMeierFitter` applies Greenwood's formula to weighted
counts whatever the weights are, while ``survfit`` switches to the infinitesimal-jackknife (IJ)
robust variance when the weights are not integers or a cluster is given. Trial statisticians
check our standard errors against ``survfit``, so we follow its rules exactly:

* ``robust`` is chosen as in ``survfitKM``: IJ when a cluster is given or any weight is not an
  integer, Greenwood otherwise (``variance="auto"``); either can be forced.
* Greenwood: ``var(log S(t)) = sum d / (Y (Y - d))`` over event times, with weighted ``d``/``Y``.
* IJ: ``var(S(t)) = sum_g U_g(t)^2`` with ``U_g`` the weighted influence of cluster ``g``
  (each row its own cluster when none is given), computed here in O(n log n) with cumulative
  sums instead of survfitkm.c's loop over clusters at every event time.
* ``std_err`` is on the probability scale, as ``summary.survfit`` reports it; confidence
  limits use ``conf.type`` "log" (R's default), "log-log", "plain", "logit" or "arcsin"
  exactly as survival 3.5-3's ``survfit_confint`` (capped to [0, 1] where R caps them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from matching.base import Estimator
from reports._inputs import (
    check_conf_level,
    check_option,
    cluster_codes,
    event_array,
    require_columns,
    time_array,
    weight_array,
)

ConfType = Literal["log", "log-log", "plain", "logit", "arcsin"]
Variance = Literal["auto", "greenwood", "ij"]
CONF_TYPES: tuple[str, ...] = ("log", "log-log", "plain", "logit", "arcsin")
VARIANCES: tuple[str, ...] = ("auto", "greenwood", "ij")


@dataclass(frozen=True, slots=True, eq=False)
class SurvivalCurve:
    """A fitted weighted Kaplan-Meier curve, one row per distinct observed time.

    Attributes
    ----------
    time : ndarray of shape (n_times,)
        Distinct observed times (events and censorings), in ``time_unit``.
    n_risk, n_event, n_censor : ndarray of shape (n_times,)
        Weighted numbers at risk, with an event, censored (R ``survfit``'s ``n.risk`` ...).
    n_risk_rows : ndarray of shape (n_times,)
        Rows (patients, when one row each) of positive weight at risk: the unweighted count
        shown beside the weighted one.
    surv : ndarray
        Kaplan-Meier survival probability just after each time.
    std_err : ndarray
        Standard error of ``surv`` on the probability scale (``summary.survfit``'s std.err).
    se_log : ndarray
        Standard error of ``log(surv)`` (what ``survfit_confint`` transforms).
    lower, upper : ndarray
        Pointwise confidence limits (``conf_type``, ``conf_level``); NaN where undefined.
    variance : {"greenwood", "ij"}
        Greenwood, or the infinitesimal-jackknife robust variance (``cluster`` names its unit).
    """

    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    std_err: np.ndarray
    se_log: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    variance: str
    conf_type: str
    conf_level: float
    n_rows: int
    n_events: int
    sum_weights: float
    ess: float
    cluster: str | None = None
    time_unit: str | None = None
    label: str | None = None
    max_time: float = field(default=np.nan)
    n_risk_rows: np.ndarray | None = None

    @property
    def method(self) -> str:
        """How the SE and limits were obtained (goes into results.json ``method``)."""
        var = (
            "Greenwood"
            if self.variance == "greenwood"
            else f"infinitesimal jackknife (robust, cluster={self.cluster or 'row'})"
        )
        return f"Kaplan-Meier, {var} SE, {self.conf_type}-scale {self.conf_level:.0%} limits"

    def at(self, times: np.ndarray | list[float] | float) -> pd.DataFrame:
        """Values at ``times`` as ``summary(fit, times=, extend=TRUE)`` gives them.

        Before the first time the curve is 1 with SE 0; after the last time the last value is
        carried forward and ``n_risk`` is 0, exactly as R does. Column ``beyond_follow_up``
        flags the times after ``max_time``: callers that must not extrapolate use it.
        """
        t = np.atleast_1d(np.asarray(times, dtype=float))
        idx = np.searchsorted(self.time, t, side="right") - 1  # last time <= t
        before = idx < 0
        j = np.clip(idx, 0, None)

        def pick(arr: np.ndarray, at_zero: float) -> np.ndarray:
            if arr.size == 0:
                return np.full(t.shape, at_zero)
            return np.where(before, at_zero, arr[j])

        nr_idx = np.searchsorted(self.time, t, side="left")  # first time >= t
        n_risk = np.append(self.n_risk, 0.0)[nr_idx]
        rows = self.n_risk_rows if self.n_risk_rows is not None else np.full(self.time.size,
                                                                              np.nan)
        return pd.DataFrame(
            {
                "time": t,
                "n_risk": n_risk,
                "n_risk_rows": np.append(rows, 0.0)[nr_idx],
                "surv": pick(self.surv, 1.0),
                "std_err": pick(self.std_err, 0.0),
                "lower": pick(self.lower, 1.0),
                "upper": pick(self.upper, 1.0),
                "beyond_follow_up": t > self.max_time,
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """The curve as a DataFrame (one row per distinct time)."""
        return pd.DataFrame(
            {
                "time": self.time,
                "n_risk": self.n_risk,
                "n_event": self.n_event,
                "n_censor": self.n_censor,
                "surv": self.surv,
                "std_err": self.std_err,
                "lower": self.lower,
                "upper": self.upper,
            }
        )

    def summary(self) -> pd.DataFrame:
        """Event times only, like ``summary(survfit)`` without ``times``."""
        frame = self.to_frame()
        return frame[frame["n_event"] > 0].reset_index(drop=True)

    def to_dict(self) -> dict:
        """JSON-ready dict of the curve and how it was estimated."""
        out = {
            k: [None if not np.isfinite(v) else float(v) for v in col]
            for k, col in self.to_frame().items()
        }
        out.update(
            method=self.method,
            n=self.n_rows,
            events=self.n_events,
            sum_weights=self.sum_weights,
            ess=self.ess,
            time_unit=self.time_unit,
        )
        return out

    def __repr__(self) -> str:
        return (
            f"SurvivalCurve(label={self.label!r}, n={self.n_rows}, ess={self.ess:.1f}, "
            f"events={self.n_events}, variance={self.variance!r}, conf_type={self.conf_type!r})"
        )


def conf_limits(
    surv: np.ndarray, se_log: np.ndarray, conf_type: str, conf_level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits as R ``survfit_confint`` (``se_log`` is the SE of log S).

    "plain": S -/+ z se(S) within [0, 1]; "log": exp(log S -/+ z se_log), upper capped at 1;
    "log-log": on log(-log S); "logit": on log(S / (1 - S)), with the SE of the logit
    se_log / (1 - S); "arcsin": on asin(sqrt S), SE 0.5 se_log sqrt(S / (1 - S)), kept within
    [0, pi/2]. NaN where the transform is undefined (S = 0, and S = 1 for log-log / logit).
    """
    from scipy.special import ndtri  # = norm.ppf; scipy.stats costs seconds to import

    z = ndtri(1 - (1 - conf_level) / 2)
    surv = np.asarray(surv, dtype=float)
    se_log = np.asarray(se_log, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            lower = np.exp(np.log(xx) - z * se_log)
            upper = np.minimum(np.exp(np.log(xx) + z * se_log), 1.0)
        elif conf_type == "log-log":
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            se2 = z * se_log / np.log(xx)
            lower = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
            upper = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
        elif conf_type == "plain":
            se2 = z * se_log * surv
            lower = np.maximum(surv - se2, 0.0)
            upper = np.minimum(surv + se2, 1.0)
        elif conf_type == "logit":
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            se2 = z * se_log / (1 - xx)
            lg = np.log(xx / (1 - xx))
            lower = 1 - 1 / (1 + np.exp(lg - se2))
            upper = 1 - 1 / (1 + np.exp(lg + se2))
        elif conf_type == "arcsin":
            xx = np.where(surv == 0, np.nan, surv)
            se2 = 0.5 * z * se_log * np.sqrt(xx / (1 - xx))
            a = np.arcsin(np.sqrt(xx))
            lower = np.sin(np.maximum(0.0, a - se2)) ** 2
            upper = np.sin(np.minimum(np.pi / 2, a + se2)) ** 2
        else:  # pragma: no cover - guarded by callers
            raise ValueError(conf_type)
    return lower, upper


def _ij_q(
    order_t: np.ndarray,
    ut_index: np.ndarray,
    n_times: int,
    event: np.ndarray,
    w: np.ndarray,
    a_inc: np.ndarray,
    g_cum: np.ndarray,
    cluster: np.ndarray | None,
) -> np.ndarray:
    """Q(t) = var(S(t)) / S(t)^2 of the IJ variance at each distinct time.

    ``U_g(t) = -S(t) [a_g(t) - G(t) b_g(t)]`` where, for the rows ``i`` of cluster ``g``,
    ``a_g(t) = sum_{T_i <= t} w_i (delta_i A(T_i) - G(T_i))`` and ``b_g(t) = sum_{T_i > t} w_i``;
    ``A = 1 / (Y - d)`` at event times and ``G`` is the Greenwood sum. ``sum_g (a - G b)^2``
    is kept as three running sums (of a^2, ab, b^2) updated by the rows leaving the risk set.
    """
    c = w * (event * a_inc[ut_index] - g_cum[ut_index])  # per row, in sorted-time order
    if cluster is None:
        d_aa, d_ab = c * c, np.zeros_like(c)
        d_bb = -(w * w)
        bb0 = float(np.sum(w * w))
    else:
        cl = cluster[order_t]
        o = np.lexsort((np.arange(cl.size), cl))  # by cluster, then time order
        cl_o, c_o, w_o = cl[o], c[o], w[o]
        tot = np.bincount(cl_o, weights=w_o)
        a_after = _group_cumsum(c_o, cl_o)
        b_after = tot[cl_o] - _group_cumsum(w_o, cl_o)
        first = np.r_[True, cl_o[1:] != cl_o[:-1]]
        a_before = np.where(first, 0.0, np.r_[0.0, a_after[:-1]])
        b_before = np.where(first, tot[cl_o], np.r_[0.0, b_after[:-1]])
        d_aa, d_ab, d_bb = np.empty_like(c), np.empty_like(c), np.empty_like(c)
        d_aa[o] = a_after**2 - a_before**2
        d_ab[o] = a_after * b_after - a_before * b_before
        d_bb[o] = b_after**2 - b_before**2
        bb0 = float(np.sum(tot * tot))
    p_aa = np.cumsum(np.bincount(ut_index, weights=d_aa, minlength=n_times))
    p_ab = np.cumsum(np.bincount(ut_index, weights=d_ab, minlength=n_times))
    p_bb = bb0 + np.cumsum(np.bincount(ut_index, weights=d_bb, minlength=n_times))
    q = p_aa - 2 * g_cum * p_ab + g_cum**2 * p_bb
    return np.maximum(q, 0.0)


def _group_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each new value of the (sorted) ``groups``."""
    cs = np.cumsum(values)
    start = np.r_[True, groups[1:] != groups[:-1]]
    return cs - _ffill(np.where(start, cs - values, np.nan))


def _ffill(x: np.ndarray) -> np.ndarray:
    idx = np.where(np.isnan(x), 0, np.arange(x.size))
    np.maximum.accumulate(idx, out=idx)
    return x[idx]


def are_counts(w: np.ndarray) -> bool:
    """Whether case weights are counts (survfit's Greenwood case): all integers, as R checks,
    and below 2^31 (a float above 2^53 is always an "integer": entropy-balancing weights of
    1e160 are not counts, and Greenwood's Y (Y - d) would overflow on them)."""
    w = np.asarray(w, dtype=float)
    return bool(np.all(w == np.floor(w)) and np.all(w < 2.0**31))


def _unit_scale(w: np.ndarray) -> np.ndarray:
    """Weights divided by their largest value: the IJ variance and the ESS do not depend on
    the weights' scale, and squares of large weights (entropy balancing can give 1e160)
    overflow where those of the rescaled weights do not."""
    top = float(np.max(w)) if w.size else 0.0
    return w / top if np.isfinite(top) and top > 0 else w


def ij_influence_at(
    time: np.ndarray, event: np.ndarray, weights: np.ndarray, at: float
) -> np.ndarray:
    """Per-row weighted IJ influence on S(at): ``sum_g (sum_{i in g} u_i)^2`` is var(S(at)).

    ``u_i = -S(at) w_i [delta_i 1{T_i <= at} / (Y(T_i) - d(T_i)) - G(min(at, T_i))]`` with
    ``G`` the Greenwood sum; summing ``u_i`` within clusters shared by two curves gives the
    covariance of their landmark estimates (matched pairs span both arms).
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    w, ut, idx, g, a, surv = _ij_pieces(time, event, weights)
    j = np.searchsorted(ut, at, side="right") - 1  # last distinct time <= at
    if j < 0:
        return np.zeros_like(w)
    s_at, g_at = surv[j], g[j]
    if s_at == 0:
        return np.zeros_like(w)
    before = time <= at
    inner = np.where(before, event * a[idx] - g[idx], -g_at)
    return -s_at * w * inner


def _ij_pieces(time: np.ndarray, event: np.ndarray, weights: np.ndarray):
    """What the IJ influences of the KM curve are built from: unit-scaled weights ``w``,
    distinct times ``ut`` and each row's index ``idx`` into them, and per distinct time the
    Greenwood sum ``G``, ``A = 1 / (Y - d)`` and the survival ``S``."""
    w = _unit_scale(np.asarray(weights, dtype=float))
    ut, idx, _, d_w, d_n, y = _risk_table(time, event, w)
    live = (d_n > 0) & (d_w > 0) & (y > d_w)
    with np.errstate(divide="ignore", invalid="ignore"):
        haz = np.where((d_n > 0) & (d_w > 0), d_w / y, 0.0)
        g = np.cumsum(np.where(live, d_w / (y * (y - d_w)), 0.0))
        a = np.where(live, 1.0 / (y - d_w), 0.0)
    return w, ut, idx, g, a, np.cumprod(1.0 - haz)


def _risk_table(time: np.ndarray, event: np.ndarray, w: np.ndarray):
    """Distinct times, each row's index into them, and per distinct time the weighted count
    leaving, weighted events, event count and weighted number at risk (cumulative sums)."""
    ut, idx = np.unique(time, return_inverse=True)
    m = ut.size
    n_at = np.bincount(idx, weights=w, minlength=m)
    d_w = np.bincount(idx, weights=w * event, minlength=m)
    d_n = np.bincount(idx, weights=event, minlength=m)
    y = np.cumsum(n_at[::-1])[::-1]
    return ut, idx, n_at, d_w, d_n, y


def km_estimate(
    time: np.ndarray,
    event: np.ndarray,
    weights: np.ndarray | None = None,
    cluster: np.ndarray | None = None,
    *,
    variance: Variance = "auto",
    conf_type: ConfType = "log",
    conf_level: float = 0.95,
    cluster_name: str | None = None,
    time_unit: str | None = None,
    label: str | None = None,
) -> SurvivalCurve:
    """Weighted Kaplan-Meier curve from arrays (validated: see `WeightedKM` for frames).

    Same numbers as R ``survfit(Surv(time, event) ~ 1, weights=, cluster=)``; ``cluster``
    holds integer codes (one per row) or None.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    w = np.ones_like(time) if weights is None else np.asarray(weights, dtype=float)
    if variance == "auto":
        robust = cluster is not None or not are_counts(w)
        variance = "ij" if robust else "greenwood"
    # the IJ curve does not depend on the weights' scale: compute it on unit-scaled weights,
    # whose squares and products cannot overflow (entropy weights reach 1e160), and report
    # the weighted counts on the original scale (Greenwood is for counts: left as they are)
    wc = _unit_scale(w) if variance == "ij" else w
    count_scale = float(w.max() / wc.max()) if variance == "ij" and wc.size and wc.max() > 0 \
        else 1.0
    order_t = np.argsort(time, kind="stable")
    ts, es, ws = time[order_t], event[order_t], wc[order_t]
    ut, ut_index, n_at, d_w, d_n, y = _risk_table(ts, es, ws)
    m = ut.size
    has_event = (d_n > 0) & (d_w > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        haz = np.where(has_event, d_w / y, 0.0)
        surv = np.cumprod(1.0 - haz)
        live = has_event & (y > d_w)
        greenwood_inc = np.where(live, d_w / (y * (y - d_w)), 0.0)
        a_inc = np.where(live, 1.0 / (y - d_w), 0.0)
    all_dead = has_event & ~(y > d_w)
    g_cum = np.cumsum(greenwood_inc)
    if variance == "greenwood":
        # survfitkm.c adds d/(Y(Y-d)), infinite when every one at risk dies
        v = np.where(np.cumsum(all_dead) > 0, np.inf, g_cum)
        se_log = np.sqrt(v)
        with np.errstate(invalid="ignore"):
            std_err = se_log * surv
    else:
        cl = None if cluster is None else np.asarray(cluster)
        q = _ij_q(order_t, ut_index, m, es, ws, a_inc, g_cum, cl)
        # survfitkm.c updates the IJ variance at event times only: carry it over censoring
        # times exactly (recomputing there differs in the last bits, which matters to ties
        # in quantile.survfit's reading of the confidence band)
        last_event = np.maximum.accumulate(np.where(has_event, np.arange(m), -1))
        q = np.where(last_event >= 0, q[np.clip(last_event, 0, None)], 0.0)
        q = np.where(surv == 0, 0.0, q)
        se_log = np.sqrt(q)
        std_err = surv * se_log
    lower, upper = conf_limits(surv, se_log, conf_type, conf_level)
    wu = _unit_scale(w)
    sw, sw2 = float(wu.sum()), float((wu * wu).sum())
    return SurvivalCurve(
        time=ut,
        n_risk=y * count_scale,
        n_event=d_w * count_scale,
        n_censor=(n_at - d_w) * count_scale,
        surv=surv,
        std_err=std_err,
        se_log=se_log,
        lower=lower,
        upper=upper,
        variance=variance,
        conf_type=conf_type,
        conf_level=conf_level,
        n_rows=int(time.size),
        n_events=int(event.sum()),
        sum_weights=float(w.sum()),
        ess=(sw * sw / sw2) if sw2 > 0 else 0.0,
        cluster=cluster_name if variance == "ij" else None,
        time_unit=time_unit,
        label=label,
        max_time=float(ut[-1]) if m else np.nan,
        n_risk_rows=np.cumsum(np.bincount(ut_index, weights=(ws > 0).astype(float),
                                          minlength=m)[::-1])[::-1],
    )


class WeightedKM(Estimator):
    """Weighted Kaplan-Meier fitter with ``survfit``'s default variance.

    Parameters
    ----------
    conf_type : {"log", "log-log"}, default="log"
        Transform of the pointwise limits (R's ``conf.type``; "log" is R's default).
    conf_level : float, default=0.95
        Confidence level of the limits.
    variance : {"auto", "greenwood", "ij"}, default="auto"
        "auto" follows ``survfitKM``: the infinitesimal jackknife when a cluster is given or
        a weight is not an integer, Greenwood otherwise.

    Attributes
    ----------
    curve_ : SurvivalCurve
        The fitted curve (times in the unit of ``duration_col``).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 2, 3, 5], "e": [1, 1, 0, 1, 0]})
    >>> round(float(WeightedKM().fit(df, "t", "e").curve_.surv[-1]), 4)
    0.3
    """

    def __init__(
        self,
        conf_type: ConfType = "log",
        *,
        conf_level: float = 0.95,
        variance: Variance = "auto",
    ) -> None:
        self.conf_type = conf_type
        self.conf_level = conf_level
        self.variance = variance

    def fit(
        self,
        frame: pd.DataFrame,
        duration_col: str,
        event_col: str,
        weights_col: str | None = None,
        cluster_col: str | None = None,
        *,
        time_unit: str | None = None,
        label: str | None = None,
    ) -> WeightedKM:
        """Fit the curve to ``frame`` (one row per patient or patient x index line)."""
        check_option("conf_type", self.conf_type, CONF_TYPES)
        check_option("variance", self.variance, VARIANCES)
        level = check_conf_level(self.conf_level)
        require_columns(
            frame,
            {
                "duration_col": duration_col,
                "event_col": event_col,
                "weights_col": weights_col,
                "cluster_col": cluster_col,
            },
        )
        self.curve_ = km_estimate(
            time_array(frame, duration_col),
            event_array(frame, event_col),
            weight_array(frame, weights_col),
            cluster_codes(frame, cluster_col),
            variance=self.variance,
            conf_type=self.conf_type,
            conf_level=level,
            cluster_name=cluster_col,
            time_unit=time_unit,
            label=label,
        )
        return self


def nelson_aalen_at(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """The marginal Nelson-Aalen cumulative hazard at each row's own time, shape (n,).

    ``H(t_i) = sum over event times s <= t_i of d(s) / n(s)`` over all rows (unweighted);
    tied rows get the value after their time. White & Royston (2009, Stat Med 28:1982)
    recommend it with the event indicator as the outcome's predictors in an imputation model.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    order = np.argsort(time, kind="stable")
    t, e = time[order], event[order]
    at_risk = len(t) - np.searchsorted(t, t, side="left")  # rows with time >= t
    h = np.cumsum(e / at_risk)
    last = np.searchsorted(t, t, side="right") - 1  # ties: the value after the last tie
    out = np.empty_like(h)
    out[order] = h[last]
    return out
