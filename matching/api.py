"""``match_cohort``: the one call that builds a design (PS -> match or weight -> balance).

Methods are dispatched through an explicit registry (``METHODS``), never built from strings.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .balance import balance_table
from .design_matrix import build_design_matrix
from .errors import MatchingError, MatchingWarning, PositivityWarning
from .nearest import NearestMatcher
from .propensity import PS_MODELS
from .result import DesignResult, kish_ess

ESTIMANDS = ("ATT", "ATE", "ATO", "ATM")
CALIPER_SCALES = ("ps", "logit")
_DEFAULTS = {"ratio": 1, "caliper": 0.2, "caliper_scale": "logit", "replace": False,
             "m_order": "largest", "exact": None, "weights": "att_odds", "stabilized": False,
             "trim": None, "truncate": None}


@dataclass(frozen=True, slots=True)
class _Context:
    """What a method runner needs (arrays over the analysed rows)."""

    ps: np.ndarray
    distance: np.ndarray
    treated: np.ndarray
    exact: np.ndarray | None
    X: pd.DataFrame
    opts: dict
    random_state: object


@dataclass(frozen=True, slots=True)
class _Outcome:
    weights: np.ndarray
    match_id: np.ndarray  # -1 = none
    details: dict
    warnings: list
    exclusions: list  # dicts: arm, reason, n


def _unmatched_trial(t: np.ndarray, w: np.ndarray, reason: str) -> list:
    n = int((t & (w <= 0)).sum())
    return [{"arm": "trial", "reason": reason, "n": n}] if n else []


def _run_nearest(ctx: _Context) -> _Outcome:
    o = ctx.opts
    m = NearestMatcher(o["ratio"], caliper=o["caliper"], replace=o["replace"],
                       m_order=o["m_order"], random_state=ctx.random_state)
    m.fit(ctx.distance, ctx.treated, exact=ctx.exact)
    msgs, t = [], ctx.treated
    excl = _unmatched_trial(t, m.weights_, "no control within the caliper / exact stratum")
    if excl:
        msgs.append(f"{excl[0]['n']} of {int(t.sum())} trial patients got no match "
                    f"(caliper {o['caliper']} SD on the {o['caliper_scale']} scale = "
                    f"{m.caliper_abs_:.4g}); they are excluded and the estimand becomes the "
                    "effect in the matched trial patients")
    short = [i for i, cs in m.matches_.items() if 0 < len(cs) < o["ratio"]]
    if short:
        msgs.append(f"{len(short)} matched trial patients got fewer than {o['ratio']} controls")
    return _Outcome(m.weights_, m.match_id_, {"caliper_abs": m.caliper_abs_,
                                              "n_matched_trial": m.n_matched_treated_},
                    msgs, excl)


def _run_optimal(ctx: _Context) -> _Outcome:
    from .optimal import OptimalMatcher

    o = ctx.opts
    m = OptimalMatcher(o["ratio"], caliper=o["caliper"]).fit(ctx.distance, ctx.treated,
                                                              exact=ctx.exact)
    excl = _unmatched_trial(ctx.treated, m.weights_, "no control within the caliper")
    msgs = [f"{excl[0]['n']} trial patients got no match within the caliper"] if excl else []
    return _Outcome(m.weights_, m.match_id_, {"caliper_abs": m.caliper_abs_,
                                              "total_distance": m.total_distance_,
                                              "n_matched_trial": m.n_matched_treated_},
                    msgs, excl)


def _run_weighting(ctx: _Context) -> _Outcome:
    from .weighting import compute_weights

    o = ctx.opts
    res = compute_weights(ctx.ps, ctx.treated, kind=o["weights"], stabilized=o["stabilized"],
                          trim=o["trim"], truncate=o["truncate"], X=ctx.X)
    return _Outcome(res.weights, np.full(len(ctx.ps), -1), res.details, res.messages,
                    res.exclusions)


METHODS = {"nearest": _run_nearest, "optimal": _run_optimal, "weighting": _run_weighting}
_METHOD_OPTIONS = {
    "nearest": {"ratio", "caliper", "caliper_scale", "replace", "m_order", "exact"},
    "optimal": {"ratio", "caliper", "caliper_scale", "exact"},
    "weighting": {"weights", "stabilized", "trim", "truncate"},
}
_WEIGHT_ESTIMAND = {"att_odds": "ATT", "entropy": "ATT", "ate": "ATE", "overlap": "ATO",
                    "matching": "ATM"}


def _check_frame(frame, treatment_col, treated_value, id_col):
    if not isinstance(frame, pd.DataFrame):
        raise MatchingError(f"frame must be a pandas DataFrame; got {type(frame).__name__}.")
    for name, col in (("treatment_col", treatment_col), ("id_col", id_col)):
        if col is not None and col not in frame.columns:
            raise MatchingError(f"{name}={col!r} is not a column of the frame.")
    arm = frame[treatment_col]
    if arm.isna().any():
        raise MatchingError(f"Column {treatment_col!r} has {int(arm.isna().sum())} missing values.")
    t = (arm == treated_value).to_numpy()
    if not t.any():
        raise MatchingError(f"No row has {treatment_col} == {treated_value!r} (the trial arm).")
    if t.all():
        raise MatchingError(f"Every row has {treatment_col} == {treated_value!r}: no control.")
    if id_col is not None and frame[id_col].duplicated().any():
        raise MatchingError(f"Column {id_col!r} has {int(frame[id_col].duplicated().sum())} "
                            "duplicated identifiers; one row per patient is expected.")
    return t


def _check_options(method, estimand, ps_model, opts) -> tuple[str, list]:
    if method not in METHODS:
        raise MatchingError(f"method must be one of {sorted(METHODS)}; got {method!r}.")
    if ps_model not in PS_MODELS:
        raise MatchingError(f"ps_model must be one of {sorted(PS_MODELS)}; got {ps_model!r}.")
    if estimand not in ESTIMANDS:
        raise MatchingError(f"estimand must be one of {ESTIMANDS}; got {estimand!r}.")
    if opts["caliper_scale"] not in CALIPER_SCALES:
        raise MatchingError(f"caliper_scale must be one of {CALIPER_SCALES}; "
                            f"got {opts['caliper_scale']!r}.")
    if method == "weighting":
        if opts["weights"] not in _WEIGHT_ESTIMAND:
            raise MatchingError(f"weights must be one of {sorted(_WEIGHT_ESTIMAND)}; "
                                f"got {opts['weights']!r}.")
        want = _WEIGHT_ESTIMAND[opts["weights"]]
        if estimand != want:
            raise MatchingError(f"weights={opts['weights']!r} targets estimand {want!r}, "
                                f"but estimand={estimand!r}; set estimand={want!r}.")
    elif estimand != "ATT":
        raise MatchingError(f"method={method!r} targets the ATT (controls matched to trial "
                            f"patients); got estimand={estimand!r}. Use method='weighting'.")
    ignored = [k for k, v in opts.items()
               if k not in _METHOD_OPTIONS[method] and v != _DEFAULTS[k] and k != "caliper"]
    msgs = [f"option {k}={opts[k]!r} is ignored with method={method!r}" for k in ignored]
    return estimand, msgs


def _exact_codes(frame, rows, exact):
    if exact is None:
        return None
    cols = [exact] if isinstance(exact, str) else list(exact)
    absent = [c for c in cols if c not in frame.columns]
    if absent:
        raise MatchingError(f"exact names {absent}, which are not columns of the frame.")
    sub = frame[cols].iloc[np.flatnonzero(rows)]
    if sub.isna().any().any():
        bad = {c: int(n) for c, n in sub.isna().sum().items() if n}
        raise MatchingError(f"exact columns have missing values: {bad}.")
    return sub.astype(str).agg("\x1f".join, axis=1).to_numpy()


def _check_overlap(ps: np.ndarray, t: np.ndarray) -> list:
    lt, lc = ps[t], ps[~t]
    if lt.min() > lc.max() or lc.min() > lt.max():
        raise MatchingError(
            "No overlap: the propensity scores of the trial arm "
            f"[{lt.min():.4g}, {lt.max():.4g}] and of the registry "
            f"[{lc.min():.4g}, {lc.max():.4g}] do not intersect; no registry patient resembles "
            "any trial patient on these covariates.")
    n_hi = int((lt > lc.max()).sum())
    if n_hi:
        msg = (f"positivity: {n_hi} trial patients have a PS above every registry patient's "
               f"(max {lc.max():.4g}); they have no comparable control")
        warnings.warn(msg, PositivityWarning, stacklevel=3)
        return [msg]
    return []


def match_cohort(
    frame: pd.DataFrame,
    covariates: Sequence[str],
    *,
    treatment_col: str = "arm",
    treated_value: object = "trial",
    id_col: str | None = "patient_id",
    method: str = "nearest",
    estimand: str = "ATT",
    ps_model: str = "logistic",
    ratio: int = 1,
    caliper: float | None = 0.2,
    caliper_scale: str = "logit",
    replace: bool = False,
    m_order: str = "largest",
    exact: Sequence[str] | str | None = None,
    weights: str = "att_odds",
    stabilized: bool = False,
    trim: float | str | None = None,
    truncate: float | None = None,
    missing: str = "error",
    balance_threshold: float = 0.1,
    random_state: int | np.random.Generator | None = None,
    ps: Sequence[float] | None = None,
) -> DesignResult:
    """Build a synthetic control arm: PS model, matching or weighting, balance diagnostics.

    Parameters
    ----------
    frame : pd.DataFrame
        One row per patient (trial and registry); never modified. Outcome columns are not read.
    covariates : sequence of str
        Columns entering the PS model and the balance table.
    treatment_col, treated_value : str, object
        The trial arm is ``frame[treatment_col] == treated_value``.
    id_col : str or None
        Patient identifier column, checked for duplicates (never logged).
    method : {"nearest", "optimal", "weighting"}
    estimand : {"ATT", "ATE", "ATO", "ATM"}
        Matching targets the ATT; weighting's estimand follows ``weights``.
    ps_model : {"logistic", "logistic_l2", "gbm"}
    ratio : int
        Controls per trial patient (matching).
    caliper : float or None
        In SDs of the distance (MatchIt); ``None`` for no caliper.
    caliper_scale : {"logit", "ps"}
        Distance = logit PS (MatchIt ``link = "linear.logit"``) or PS (MatchIt's default).
    replace, m_order, exact
        Nearest-neighbour options (:class:`~matching.nearest.NearestMatcher`).
    weights : {"att_odds", "ate", "overlap", "matching", "entropy"}
    stabilized : bool
        Stabilised ATE weights.
    trim : float, "common_support" or None
        Exclude PS outside [trim, 1 - trim], or outside the other arm's PS range.
    truncate : float or None
        Cap weights at this quantile (e.g. 0.99) of their arm's weights.
    missing : {"error", "indicator", "complete_case"}
    balance_threshold : float
        Pass/fail limit on the largest |SMD| after adjustment.
    random_state : int, Generator or None
        For ``m_order="random"``, ``logistic_l2`` folds and ``gbm``.
    ps : array of shape (n_patients,), optional
        Given propensity scores (in ``frame`` order, in (0, 1)); then no PS model is fitted.
        Used by multiple imputation's "across" approach (the PS averaged over imputations).

    Returns
    -------
    DesignResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"patient_id": [f"p{i}" for i in range(300)],
    ...                    "arm": ["trial"] * 50 + ["control"] * 250,
    ...                    "age": np.r_[rng.normal(60, 8, 50), rng.normal(65, 10, 250)]})
    >>> res = match_cohort(df, ["age"], random_state=1)
    >>> res.counts["trial_selected"] <= 50
    True
    """
    opts = {"ratio": ratio, "caliper": caliper, "caliper_scale": caliper_scale,
            "replace": replace, "m_order": m_order,
            "exact": None if exact is None else ([exact] if isinstance(exact, str)
                                                 else list(exact)),
            "weights": weights, "stabilized": stabilized, "trim": trim, "truncate": truncate}
    estimand, option_msgs = _check_options(method, estimand, ps_model, opts)
    t_all = _check_frame(frame, treatment_col, treated_value, id_col)
    dm = build_design_matrix(frame, covariates, missing=missing)
    rows = dm.included.to_numpy()
    t = t_all[rows]
    exclusions = _missing_exclusions(frame, list(covariates), dm.exclusions, t_all)
    if not t.any() or t.all():
        raise MatchingError("After excluding patients with missing covariates one arm is empty.")

    if ps is None:
        model, msgs = _fit_ps(ps_model, dm.model, t, random_state)
    else:
        model, msgs = _GivenPS(_given_ps(ps, len(frame))[rows]), []
    ps = np.asarray(model.ps_, dtype=float)
    msgs += _check_overlap(ps, t)
    distance = np.asarray(model.linear_predictor_ if caliper_scale == "logit" else ps,
                          dtype=float)
    ctx = _Context(ps=ps, distance=distance, treated=t,
                   exact=_exact_codes(frame, rows, opts["exact"]), X=dm.balance,
                   opts=opts, random_state=random_state)
    out = METHODS[method](ctx)
    w = out.weights
    bal = balance_table(dm.balance, t, weights=w, binary=dm.binary, distance=distance,
                        estimand=estimand, threshold=balance_threshold)
    pos = np.flatnonzero(rows)
    weights_s = _on_frame(frame.index, pos, w, 0.0, float)
    mid = pd.array(np.where(out.match_id >= 0, out.match_id, 0), dtype="Int64")
    mid[out.match_id < 0] = pd.NA
    match_id = _on_frame(frame.index, pos, mid, pd.NA, "Int64")
    return DesignResult(
        ps=_on_frame(frame.index, pos, ps, np.nan, float),
        distance=_on_frame(frame.index, pos, distance, np.nan, float),
        weights=weights_s, match_id=match_id, included=weights_s > 0,
        treated=pd.Series(t_all, index=frame.index), balance=bal,
        ess={"trial": kish_ess(w[t]), "control": kish_ess(w[~t])},
        warnings=msgs + out.warnings + option_msgs, method=method, estimand=estimand,
        options={**opts, "method": method, "estimand": estimand, "ps_model": ps_model,
                 "missing": missing, "balance_threshold": balance_threshold,
                 "covariates": list(covariates)},
        ps_model=_ps_model_info("given" if isinstance(model, _GivenPS) else ps_model, model, dm),
        counts={"trial": int(t.sum()), "control": int((~t).sum()),
                "trial_selected": int((t & (w > 0)).sum()),
                "control_selected": int((~t & (w > 0)).sum())},
        exclusions=exclusions + out.exclusions,
        details={**out.details, "design_notes": dm.notes},
    )


@dataclass(frozen=True, slots=True)
class _GivenPS:
    """Propensity scores handed in (``match_cohort(ps=...)``) in place of a fitted model."""

    ps_: np.ndarray

    @property
    def linear_predictor_(self) -> np.ndarray:
        return np.log(self.ps_ / (1 - self.ps_))


def _given_ps(ps, n) -> np.ndarray:
    arr = np.asarray(ps, dtype=float)
    if arr.shape != (n,) or not ((arr > 0) & (arr < 1)).all():
        raise MatchingError(f"ps must hold {n} propensity scores in (0, 1), one per row of the "
                            f"frame; got shape {arr.shape}.")
    return arr


def _on_frame(index, pos, values, fill, dtype) -> pd.Series:
    """A Series on the frame's index with ``values`` at the analysed positions."""
    s = pd.Series(fill, index=index, dtype=dtype)
    s.iloc[pos] = values
    return s


def _fit_ps(ps_model, X, t, random_state):
    """Fit the PS model; its warnings are re-emitted and returned as messages."""
    kwargs = {} if ps_model == "logistic" else {"random_state": random_state}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PS_MODELS[ps_model](**kwargs).fit(X, t)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model, [str(w.message) for w in caught if issubclass(w.category, MatchingWarning)]


def _ps_model_info(name, model, dm) -> dict:
    info = {"name": name, "n_features": dm.model.shape[1], "features": list(dm.model.columns),
            "reference_levels": {k: str(v) for k, v in dm.reference_levels.items()}}
    if hasattr(model, "coef_"):
        info.update(coefficients={k: float(v) for k, v in model.coef_.items()},
                    n_iter=model.n_iter_, converged=model.converged_,
                    deviance=model.deviance_, aliased=model.aliased_)
    if hasattr(model, "C_"):
        info["C"] = model.C_
    return info


def _missing_exclusions(frame, covariates, counts, t_all) -> list:
    """complete_case exclusions per arm (a patient counted under its first missing covariate)."""
    out = []
    for reason in counts:
        col = reason.removeprefix("missing ")
        first = frame[col].isna().to_numpy() & ~_earlier_missing(frame, covariates, col)
        for arm_name, mask in (("trial", t_all), ("control", ~t_all)):
            k = int((first & mask).sum())
            if k:
                out.append({"arm": arm_name, "reason": reason, "n": k})
    return out


def _earlier_missing(frame, covariates, col) -> np.ndarray:
    """Rows already counted under a covariate listed before ``col``."""
    before = covariates[: covariates.index(col)]
    if not before:
        return np.zeros(len(frame), dtype=bool)
    return frame[before].isna().any(axis=1).to_numpy()
