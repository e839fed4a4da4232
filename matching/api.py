"""``match_cohort``: the one call that builds a design (PS -> match or weight -> balance).

Methods are dispatched through the method table (`matching.methods.METHODS`), never built
from strings; the table also validates every option before anything is fitted.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._method import MethodInputs
from .balance import balance_table
from .design_matrix import build_design_matrix
from .errors import MatchingError, MatchingWarning, PositivityWarning
from .methods import COMMON_OPTIONS, METHODS, VARIANCE_CLUSTER, resolve_design
from .propensity import PS_MODELS
from .result import DesignResult, kish_ess

__all__ = ["METHODS", "match_cohort"]


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


def _check_common(values: dict) -> None:
    problems = [msg for opt in COMMON_OPTIONS if (msg := opt.problem(values[opt.name]))]
    if problems:
        raise MatchingError("invalid design: " + "; ".join(problems) + ".")


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
    missing: str = "error",
    balance_threshold: float = 0.1,
    random_state: int | np.random.Generator | None = None,
    ps: Sequence[float] | None = None,
    **options,
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
        A key of `matching.methods.METHODS`.
    estimand : {"ATT", "ATE", "ATO", "ATM"}
        Matching targets the ATT; weighting any of them (its weights follow the estimand).
    ps_model : {"logistic", "logistic_l2", "gbm"}
    missing : {"error", "indicator", "complete_case"}
    balance_threshold : float
        Pass/fail limit on the largest |SMD| after adjustment.
    random_state : int, Generator or None
        For ``m_order="random"``, ``logistic_l2`` folds and ``gbm``.
    ps : array of shape (n_patients,), optional
        Given propensity scores (in ``frame`` order, in (0, 1)); then no PS model is fitted.
        Used by multiple imputation's "across" approach (the PS averaged over imputations).
    **options
        The method's options, as its entry in `matching.methods.METHODS` declares them
        (nearest: ratio, caliper, distance, replace, m_order, exact; optimal: ratio, caliper,
        distance, exact; weighting: weights, stabilized, trim, truncate, truncate_rule).
        ``caliper_scale`` is accepted as the old name of ``distance``. An option the method
        does not take is an error, never silently ignored.

    Returns
    -------
    DesignResult
        With ``yields`` ("sets", "pairs_with_replacement" or "weights"): how the outcome
        variance must be clustered.

    Raises
    ------
    MatchingError
        Invalid design (every problem listed), or data the design cannot be built from.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"patient_id": [f"p{i}" for i in range(300)],
    ...                    "arm": ["trial"] * 50 + ["control"] * 250,
    ...                    "age": np.r_[rng.normal(60, 8, 50), rng.normal(65, 10, 250)]})
    >>> res = match_cohort(df, ["age"], random_state=1)
    >>> res.counts["trial_selected"] <= 50, res.yields
    (True, 'sets')
    """
    _check_common({"estimand": estimand, "ps_model": ps_model, "missing": missing,
                   "balance_threshold": balance_threshold})
    opts = resolve_design(method, estimand, options)
    entry = METHODS[method]
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
    # methods without a distance option (weighting) show the logit PS in the balance table
    distance = np.asarray(ps if opts.get("distance") == "ps" else model.linear_predictor_,
                          dtype=float)
    out = entry.run(MethodInputs(ps=ps, distance=distance, treated=t,
                                 exact=_exact_codes(frame, rows, opts.get("exact")),
                                 X=dm.balance, options=opts, estimand=estimand,
                                 random_state=random_state))
    w = out.weights
    bal = balance_table(dm.balance, t, weights=w, binary=dm.binary, distance=distance,
                        estimand=estimand, threshold=balance_threshold)
    pos = np.flatnonzero(rows)
    weights_s = _on_frame(frame.index, pos, w, 0.0, float)
    mid = pd.array(np.where(out.match_id >= 0, out.match_id, 0), dtype="Int64")
    mid[out.match_id < 0] = pd.NA
    match_id = _on_frame(frame.index, pos, mid, pd.NA, "Int64")
    yields = entry.yields(opts)
    return DesignResult(
        ps=_on_frame(frame.index, pos, ps, np.nan, float),
        distance=_on_frame(frame.index, pos, distance, np.nan, float),
        weights=weights_s, match_id=match_id, included=weights_s > 0,
        treated=pd.Series(t_all, index=frame.index), balance=bal,
        ess={"trial": kish_ess(w[t]), "control": kish_ess(w[~t])},
        warnings=msgs + out.warnings,
        method=method, estimand=estimand, yields=yields,
        variance_cluster=VARIANCE_CLUSTER[yields],
        options={**opts, "ps_model": ps_model, "missing": missing,
                 "balance_threshold": balance_threshold, "covariates": list(covariates)},
        ps_model=_ps_model_info("given" if isinstance(model, _GivenPS) else ps_model,
                                 model, dm),
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


def _signature() -> inspect.Signature:
    """match_cohort's signature with every method option (and old name) from the table."""
    sig = inspect.signature(match_cohort)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    seen = {p.name for p in params}
    for entry in METHODS.values():
        for opt in entry.options:
            for name in (opt.name, *opt.aliases):
                if name not in seen:
                    seen.add(name)
                    default = opt.default if name == opt.name else None
                    params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                                    default=default))
    return sig.replace(parameters=params)


match_cohort.__signature__ = _signature()  # type: ignore[attr-defined]


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
