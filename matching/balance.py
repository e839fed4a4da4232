"""Covariate balance before and after matching or weighting (MatchIt / cobalt conventions).

For each covariate (and the distance), per arm: weighted means; the standardised mean
difference (SMD); the variance ratio; the eCDF mean and max differences (the max is the
weighted two-sample Kolmogorov-Smirnov statistic, reported again as ``ks``).

Conventions (those of MatchIt's ``summary(m, standardize = TRUE)`` and cobalt's ``bal.tab``):

- SMD = (mean_trial - mean_control) / s, where ``s`` always comes from the UNADJUSTED sample,
  so before and after are on the same scale. ATT: ``s`` is the trial arm's SD (``sd()``,
  n - 1 denominator); ATE/ATO: ``sqrt((s_trial^2 + s_control^2) / 2)``. A binary (0/1)
  covariate uses ``sqrt(p (1 - p))`` for each arm's SD, as MatchIt does. If that SD is 0 (a
  level no trial patient has), the pooled SD is used instead and the row says so in ``note``.
- Weighted variances are ``sum w (x - m)^2 / (sum w - sum w^2 / sum w)``; the variance
  ratio is trial / control and is NaN for binary covariates (MatchIt prints nothing there).
- eCDF statistics compare the weighted eCDFs of the two arms at every observed value: the mean
  and the max of the absolute differences; for a binary covariate both equal the absolute
  difference in proportions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import MatchingError

COLUMNS = (
    "covariate", "type", "mean_trial_before", "mean_control_before", "mean_trial_after",
    "mean_control_after", "smd_before", "smd_after", "variance_ratio_before",
    "variance_ratio_after", "ecdf_mean_before", "ecdf_max_before", "ecdf_mean_after",
    "ecdf_max_after", "ks_before", "ks_after", "note",
)


@dataclass(frozen=True, slots=True)
class BalanceTable:
    """Balance statistics, one row per covariate (and a first ``distance`` row if given).

    Attributes
    ----------
    frame : pd.DataFrame
        Columns ``COLUMNS``; ``type`` is ``"distance"``, ``"binary"`` or ``"continuous"``.
    estimand : str
        ``"ATT"`` (SMD scaled by the trial arm's SD), ``"ATE"`` or ``"ATO"`` (pooled SD).
    threshold : float
        Largest acceptable absolute SMD after adjustment.
    """

    frame: pd.DataFrame
    estimand: str
    threshold: float

    @property
    def max_abs_smd(self) -> float:
        """Largest |SMD after| over the covariates (the distance row excluded)."""
        cov = self.frame[self.frame["type"] != "distance"]["smd_after"].abs()
        return float(cov.max()) if len(cov) else float("nan")

    @property
    def passed(self) -> bool:
        """Whether every covariate's |SMD after| is within ``threshold``."""
        return bool(self.max_abs_smd <= self.threshold)

    def summary(self) -> pd.DataFrame:
        """The main columns, indexed by covariate."""
        cols = ["smd_before", "smd_after", "variance_ratio_before", "variance_ratio_after",
                "ks_after"]
        return self.frame.set_index("covariate")[cols]

    def to_dict(self) -> dict:
        """design.json's ``balance``: rows, threshold, max_abs_smd, passed (NaN -> None)."""
        rows = self.frame.astype(object).where(self.frame.notna(), None).to_dict("records")
        return {"estimand": self.estimand, "threshold": self.threshold,
                "max_abs_smd": self.max_abs_smd, "passed": self.passed, "rows": rows}

    def __repr__(self) -> str:
        return (f"BalanceTable(n_covariates={int((self.frame['type'] != 'distance').sum())}, "
                f"max_abs_smd={self.max_abs_smd:.3f}, threshold={self.threshold}, "
                f"passed={self.passed})")

    def _repr_html_(self) -> str:
        """`summary` as HTML (Jupyter), captioned with the estimand and the threshold."""
        caption = (f"Balance ({self.estimand}): max |SMD| after {self.max_abs_smd:.3f}, "
                   f"threshold {self.threshold:g}, {'passed' if self.passed else 'NOT passed'}")
        return f"<p><b>{caption}</b></p>" + self.summary().to_html(
            float_format=lambda v: f"{v:.3f}", na_rep="")


def weighted_mean(x: np.ndarray, w: np.ndarray) -> float:
    sw = w.sum()
    return float(np.dot(w, x) / sw) if sw > 0 else float("nan")


def weighted_var(x: np.ndarray, w: np.ndarray) -> float:
    """Reliability-weighted variance ``sum w (x-m)^2 / (sum w - sum w^2/sum w)``.

    Equals ``sd(x)^2`` when all weights are 1.
    """
    sw = w.sum()
    if sw <= 0:
        return float("nan")
    m = np.dot(w, x) / sw
    den = sw - np.dot(w, w) / sw
    return float(np.dot(w, (x - m) ** 2) / den) if den > 0 else float("nan")


def ecdf_stats(x: np.ndarray, treated: np.ndarray, w: np.ndarray,
               order: np.ndarray | None = None) -> tuple[float, float]:
    """Mean and max |F_trial - F_control| over the observed values (weighted eCDFs).

    Evaluated at every observed value, zero-weight units included (as MatchIt does).
    ``order`` (an argsort of ``x``; the order within ties is irrelevant since the eCDFs are
    read at the last element of each run of equal values) can be passed to share one sort.
    """
    t = treated
    st, sc = w[t].sum(), w[~t].sum()
    if st <= 0 or sc <= 0:
        return float("nan"), float("nan")
    if order is None:
        order = np.argsort(x)
    xs, ts, ws = x[order], t[order], w[order]
    ft = np.cumsum(np.where(ts, ws, 0.0)) / st
    fc = np.cumsum(np.where(ts, 0.0, ws)) / sc
    last = np.r_[xs[1:] != xs[:-1], True]  # eCDF value at each distinct x
    diff = np.abs(ft[last] - fc[last])
    return float(diff.mean()), float(diff.max())


def _ecdf_before_after(x, t, w) -> tuple[tuple[float, float], tuple[float, float]]:
    """``ecdf_stats`` with unit weights and with ``w``, sharing one sort of ``x``."""
    order = np.argsort(x)  # the order within ties is irrelevant (read at run ends)
    xs, ts = x[order], t[order]
    last = np.r_[xs[1:] != xs[:-1], True]
    n_t = int(ts.sum())
    ft = np.cumsum(ts)[last] / n_t
    fc = np.cumsum(~ts)[last] / (len(ts) - n_t)
    d = np.abs(ft - fc)
    before = (float(d.mean()), float(d.max()))
    ws = w[order]
    wt = np.where(ts, ws, 0.0)
    st, sc = wt.sum(), ws.sum() - wt.sum()
    if st <= 0 or sc <= 0:
        return before, (float("nan"), float("nan"))
    d = np.abs(np.cumsum(wt)[last] / st - np.cumsum(ws - wt)[last] / sc)
    return before, (float(d.mean()), float(d.max()))


def _column_stats(x, t, it, w, sel, binary):
    """Before (unit weights) and after (``w``) statistics of one column.

    Before-sample moments use the trial rows ``it`` and whole-column sums, so a registry of
    1,000,000 rows costs a few passes per column; after-sample moments use only the rows
    with positive weight (``sel``).
    """
    n, n_t = len(x), len(it)
    n_c = n - n_t
    xt = x[it]
    mt = float(xt.mean())
    mc = float((x.sum() - xt.sum()) / n_c)
    xs, ts, ws = x[sel], t[sel], w[sel]
    mt_a = weighted_mean(xs[ts], ws[ts])
    mc_a = weighted_mean(xs[~ts], ws[~ts])
    if binary:
        sd_t, sd_c = np.sqrt(mt * (1 - mt)), np.sqrt(mc * (1 - mc))
        diff_b, diff_a = abs(mt - mc), abs(mt_a - mc_a)
        return (mt, mc, float("nan"), diff_b, diff_b), (mt_a, mc_a, float("nan"), diff_a,
                                                        diff_a), (sd_t, sd_c)
    vt = float(xt.var(ddof=1)) if n_t > 1 else float("nan")
    dev = x - mc
    dt = xt - mc
    vc = float((np.dot(dev, dev) - np.dot(dt, dt)) / (n_c - 1)) if n_c > 1 else float("nan")
    vc_a = weighted_var(xs[~ts], ws[~ts])
    vr_a = weighted_var(xs[ts], ws[ts]) / vc_a if vc_a > 0 else float("nan")
    eb, ea = _ecdf_before_after(x, t, w)
    return ((mt, mc, vt / vc if vc > 0 else float("nan"), *eb), (mt_a, mc_a, vr_a, *ea),
            (np.sqrt(vt), np.sqrt(vc)))


def _denominator(sd_t: float, sd_c: float, estimand: str) -> tuple[float, str]:
    pooled = float(np.sqrt((sd_t**2 + sd_c**2) / 2.0))
    if estimand == "ATT":
        if sd_t > 0:
            return float(sd_t), ""
        return pooled, "trial-arm SD is 0: pooled SD used"
    return pooled, ""


def balance_table(
    X: pd.DataFrame,
    treated,
    *,
    weights=None,
    binary: dict | None = None,
    distance=None,
    estimand: str = "ATT",
    threshold: float = 0.1,
) -> BalanceTable:
    """Balance of ``X`` between arms before (unit weights) and after (``weights``).

    Parameters
    ----------
    X : pd.DataFrame of shape (n_patients, n_covariates)
        Numeric covariates, every level of a categorical as its own 0/1 column.
    treated : array-like of bool, shape (n_patients,)
        True for the trial arm.
    weights : array-like of float, shape (n_patients,), optional
        Matching or balancing weights (0 = not selected). ``None`` means all 1.
    binary : dict, optional
        Column -> whether it is binary; inferred (values only 0/1) when absent.
    distance : array-like, optional
        The matching distance (PS or logit PS), reported as the first row, ``"distance"``.
    estimand : {"ATT", "ATE", "ATO"}
        Chooses the SMD denominator (module docstring).
    threshold : float, default=0.1
        Pass/fail limit on |SMD after|.

    Returns
    -------
    BalanceTable
        Same numbers as MatchIt 4.7.2 ``summary(m, standardize = TRUE)`` (``sum.all`` before,
        ``sum.matched`` after) for ATT.
    """
    t = np.asarray(treated, dtype=bool)
    n = len(t)
    if not t.any() or t.all():
        raise MatchingError("balance_table needs patients in both arms.")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != t.shape or not np.isfinite(w).all() or (w < 0).any():
        raise MatchingError("weights must be finite, non-negative, one per patient.")
    cols = {}
    if distance is not None:
        cols["distance"] = (np.asarray(distance, dtype=float), "distance")
    for c in X.columns:
        x = X[c].to_numpy(dtype=float)
        isbin = binary[c] if binary is not None and c in binary else bool(
            np.isin(x, (0.0, 1.0)).all())
        cols[c] = (x, "binary" if isbin else "continuous")
    rows = []
    it = np.flatnonzero(t)
    sel = np.flatnonzero(w > 0)
    for name, (x, kind) in cols.items():
        isbin = kind == "binary"
        b, a, (sd_t, sd_c) = _column_stats(x, t, it, w, sel, isbin)
        den, note = _denominator(sd_t, sd_c, estimand)

        def smd(mt, mc, den=den, x=x):
            diff = mt - mc
            tiny = 1e-12 * max(1.0, float(np.abs(x).max()))
            if den > tiny:
                return diff / den
            # both arms constant: equal (rounding only) or perfectly separated
            return 0.0 if abs(diff) <= 1e3 * tiny else float(np.copysign(np.inf, diff))

        rows.append({
            "covariate": name, "type": kind,
            "mean_trial_before": b[0], "mean_control_before": b[1],
            "mean_trial_after": a[0], "mean_control_after": a[1],
            "smd_before": smd(b[0], b[1]), "smd_after": smd(a[0], a[1]),
            "variance_ratio_before": b[2], "variance_ratio_after": a[2],
            "ecdf_mean_before": b[3], "ecdf_max_before": b[4],
            "ecdf_mean_after": a[3], "ecdf_max_after": a[4],
            "ks_before": b[4], "ks_after": a[4], "note": note,
        })
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return BalanceTable(frame=frame, estimand=estimand, threshold=float(threshold))
