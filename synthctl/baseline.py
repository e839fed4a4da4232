"""The report's baseline table: trial vs registry pool vs synthetic control, with SMDs.

Continuous covariates show mean (SD), binary ones and each level of a categorical one show a
percentage; the synthetic control is weighted by the design's weights. SMDs come from the
design's balance table (design.json) when it has a row of the same name; otherwise (a
covariate row the design did not see, e.g. with missing values left out) they come from
`matching.balance.balance_table` on the patients with a value: the same statistics and
conventions as design.json (MatchIt's denominators).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from connectors import columns as cn
from matching.balance import balance_table, weighted_mean, weighted_var


def _known(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = ~np.isnan(x)
    return x[ok], w[ok]


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean over the non-missing values (`matching.balance.weighted_mean`)."""
    return weighted_mean(*_known(x, w))


def _wsd(x: np.ndarray, w: np.ndarray) -> float:
    """Weighted SD over the non-missing values (`matching.balance.weighted_var`, R cov.wt)."""
    xk, wk = _known(x, w)
    return float(np.sqrt(weighted_var(xk, wk))) if len(xk) >= 2 else float("nan")


def _smd(x: np.ndarray, is_t: np.ndarray, w_sel: np.ndarray, estimand: str,
         prop: bool) -> tuple[float, float]:
    """SMD before (trial vs pool) and after (trial vs weighted control) from
    `matching.balance.balance_table`, on the patients with a value."""
    ok = ~np.isnan(x)
    t = is_t[ok]
    if t.all() or not t.any():
        return float("nan"), float("nan")
    w = np.where(t, 1.0, w_sel[ok])
    row = balance_table(pd.DataFrame({"x": x[ok]}), t, weights=w, binary={"x": prop},
                        estimand=estimand).frame.iloc[0]
    return float(row["smd_before"]), float(row["smd_after"])


def _columns(frame: pd.DataFrame, cov: str) -> list[tuple[str, np.ndarray, bool]]:
    """(label, numeric values with NaN, is_proportion) rows for one covariate."""
    s = frame[cov]
    if pd.api.types.is_bool_dtype(s) or (
        pd.api.types.is_numeric_dtype(s) and set(s.dropna().unique()) <= {0, 1}
        and s.nunique(dropna=True) == 2
    ):
        # a 0/1 number shows the share of 1s; say so, it is not a mean of a scale
        label = cov if pd.api.types.is_bool_dtype(s) else f"{cov} = 1"
        return [(label, pd.to_numeric(s.astype("Float64"), errors="coerce")
                 .astype(float).to_numpy(), True)]
    if pd.api.types.is_numeric_dtype(s):
        return [(cov, pd.to_numeric(s, errors="coerce").astype(float).to_numpy(), False)]
    rows = []
    for level in sorted(s.dropna().astype(str).unique()):
        vals = np.where(s.isna(), np.nan, (s.astype(str) == level).astype(float))
        rows.append((f"{cov}: {level}", vals, True))
    return rows


def readable_variable(variable: str, labels: Mapping[str, str]) -> str:
    """A baseline-table row label (``cov``, ``cov = 1``, ``cov: level``, ``cov: missing``, as
    `baseline_table` writes them) with the covariate's readable label (``labels[cov]``)."""
    for cov in sorted(labels, key=len, reverse=True):
        if variable == cov:
            return labels[cov]
        for sep in (" = ", ": "):
            if variable.startswith(cov + sep):
                return labels[cov] + variable[len(cov):]
    return variable


def baseline_table(
    frame: pd.DataFrame,
    weights: np.ndarray,
    included: np.ndarray,
    covariates: list[str],
    *,
    estimand: str = "ATT",
    balance: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """Formatted baseline table.

    Parameters
    ----------
    frame : DataFrame
        Both arms at index (``arm`` column), covariates only.
    weights, included : ndarray of shape (n_rows,)
        The design's weights and selection flags (cohort.csv).
    balance : mapping, optional
        covariate -> {"smd_before", "smd_after"} from design.json, preferred when present.

    Returns
    -------
    DataFrame
        variable, trial, pool, control, smd_before, smd_after (strings).
    """
    is_t = (frame[cn.ARM] == cn.TRIAL).to_numpy()
    w_sel = np.where(included & ~is_t, weights, 0.0)
    ones = np.ones(len(frame))
    rows = []
    for cov in covariates:
        for label, x, prop in _columns(frame, cov):
            t, p, c = x[is_t], x[~is_t], x
            mt, mp, mc = _wmean(t, ones[is_t]), _wmean(p, ones[~is_t]), _wmean(c, w_sel)
            st, sp = _wsd(t, ones[is_t]), _wsd(p, ones[~is_t])
            bal = balance or {}
            known = (bal.get(label) or bal.get(label.replace(": ", "_"))
                     or (bal.get(cov) if label == f"{cov} = 1" else None))
            if known:
                smd_b, smd_a = known.get("smd_before"), known.get("smd_after")
            else:
                smd_b, smd_a = _smd(x, is_t, w_sel, estimand, prop)
            fmt = _fmt_prop if prop else _fmt_mean
            rows.append({
                "variable": label,
                "trial": fmt(mt, st), "pool": fmt(mp, sp), "control": fmt(mc, _wsd(c, w_sel)),
                "smd_before": _fmt_smd(smd_b), "smd_after": _fmt_smd(smd_a),
            })
        miss = frame[cov].isna().to_numpy().astype(float)
        if miss.any():
            rows.append({
                "variable": f"{cov}: missing",
                "trial": _fmt_prop(miss[is_t].mean(), 0),
                "pool": _fmt_prop(miss[~is_t].mean(), 0),
                "control": _fmt_prop(_wmean(miss, w_sel), 0),
                "smd_before": "", "smd_after": "",
            })
    return pd.DataFrame(rows, columns=["variable", "trial", "pool", "control", "smd_before",
                                       "smd_after"])


def _fmt_prop(m: float, _sd: float) -> str:
    return "NA" if not np.isfinite(m) else f"{100 * m:.1f}%"


def _fmt_mean(m: float, sd: float) -> str:
    if not np.isfinite(m):
        return "NA"
    return f"{m:.1f} ({sd:.1f})" if np.isfinite(sd) else f"{m:.1f}"


def _fmt_smd(x) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    return f"{x:.3f}" if np.isfinite(x) else "NA"
