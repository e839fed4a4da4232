"""Design matrix of the propensity-score model and of the balance table.

Numeric columns are used as they are, booleans as 0/1, strings and categoricals as dummies with
a reference level (the first category of a ``pd.Categorical``, otherwise the first in sorted
order, as R's ``factor()`` does). The PS model gets the non-reference dummies (R's
``model.matrix``); the balance table gets every level, as MatchIt's ``summary`` does.

Missing values (``missing=``):

- ``"error"`` (default): :class:`MatchingError` naming each column and its count of missing values.
- ``"indicator"``: missing-indicator method. A numeric column gets ``<col>_missing`` (0/1) and
  its missing values are set to the mean of the observed ones; a categorical column gets a
  ``"missing"`` level.
- ``"complete_case"``: patients with any missing covariate are excluded, counted per column.

Multiple imputation is a later extension: it would produce several design matrices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .errors import MatchingError

MissingPolicy = Literal["error", "indicator", "complete_case"]
MISSING_POLICIES = ("error", "indicator", "complete_case")
MISSING_LEVEL = "missing"


@dataclass(frozen=True, slots=True)
class DesignMatrix:
    """Covariates coded for the PS model and for the balance table.

    Attributes
    ----------
    model : pd.DataFrame
        Float matrix, no intercept, one column per numeric/boolean covariate and per
        non-reference level; indexed like the included rows of the frame.
    balance : pd.DataFrame
        Float matrix with every level of every categorical covariate (MatchIt/cobalt style).
    binary : dict
        ``balance`` column -> True if it only takes the values 0 and 1.
    included : pd.Series
        Bool, aligned with the input frame: False for rows excluded by ``complete_case``.
    exclusions : dict
        Reason (``"missing <column>"``) -> number of excluded rows; a row missing several
        covariates is counted under its first missing covariate (in ``covariates`` order).
    reference_levels : dict
        Categorical covariate -> its reference level.
    notes : list of str
        What was done that a reader should know (dropped empty levels, indicators added).
    """

    model: pd.DataFrame
    balance: pd.DataFrame
    binary: dict
    included: pd.Series
    exclusions: dict
    reference_levels: dict
    notes: list = field(default_factory=list)


def term_labels(terms: Sequence[str], covariates: Sequence[str],
                labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """Readable labels of the balance terms `build_design_matrix` names.

    A covariate's term gets its label (``labels[cov]``, default the name); a level of a
    categorical (``<cov>_<level>``) gets ``"<label>: <level>"``; a missing indicator
    (``<cov>_missing``) ``"<label>: missing"``; any other term (``distance``) its own name.
    The longest covariate name that prefixes a term wins (``prior_crs`` before ``prior``).
    """
    labels = labels or {}
    by_length = sorted(covariates, key=len, reverse=True)
    out: dict[str, str] = {}
    for term in terms:
        if term in covariates:
            out[term] = labels.get(term, term)
            continue
        cov = next((c for c in by_length if term.startswith(f"{c}_")), None)
        out[term] = (labels.get(term, term) if cov is None
                     else f"{labels.get(cov, cov)}: {term[len(cov) + 1:]}")
    return out


def _is_categorical(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype) or ptypes.is_object_dtype(s) or (
        ptypes.is_string_dtype(s) and not ptypes.is_bool_dtype(s)
    )


def _levels(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    return sorted(pd.unique(s.dropna()), key=lambda v: (str(type(v)), v))


def _missing_report(frame: pd.DataFrame, covariates: Sequence[str]) -> dict:
    counts = frame[list(covariates)].isna().sum()
    return {c: int(n) for c, n in counts.items() if n > 0}


def build_design_matrix(
    frame: pd.DataFrame,
    covariates: Sequence[str],
    *,
    missing: MissingPolicy = "error",
) -> DesignMatrix:
    """Code ``covariates`` of ``frame`` for the PS model and the balance table.

    Parameters
    ----------
    frame : pd.DataFrame
        One row per patient; it is never modified.
    covariates : sequence of str
        Column names. Outcome columns must not be passed (the design never sees outcomes).
    missing : {"error", "indicator", "complete_case"}, default="error"
        Missing-value policy (see the module docstring).

    Returns
    -------
    DesignMatrix
    """
    covariates = list(covariates)
    if not covariates:
        raise MatchingError("covariates must name at least one column; got an empty list.")
    if len(set(covariates)) != len(covariates):
        dup = sorted({c for c in covariates if covariates.count(c) > 1})
        raise MatchingError(f"covariates lists {dup} more than once.")
    absent = [c for c in covariates if c not in frame.columns]
    if absent:
        raise MatchingError(f"covariates {absent} are not columns of the frame.")
    if missing not in MISSING_POLICIES:
        raise MatchingError(f"missing must be one of {MISSING_POLICIES}; got {missing!r}.")

    data = frame[covariates]
    included = pd.Series(True, index=frame.index)
    exclusions: dict[str, int] = {}
    notes: list[str] = []
    miss = _missing_report(frame, covariates)
    if miss and missing == "error":
        listing = ", ".join(f"{c}: {n} missing" for c, n in miss.items())
        raise MatchingError(
            f"Covariates have missing values ({listing}). Set the design option "
            "missing to indicator (missing-indicator method) or complete_case (those patients are "
            "excluded and counted)."
        )
    if miss and missing == "complete_case":
        na = data.isna()
        already = pd.Series(False, index=frame.index)
        for c in covariates:
            new = na[c] & ~already
            if new.any():
                exclusions[f"missing {c}"] = int(new.sum())
            already |= na[c]
        included = ~already
        data = data.iloc[np.flatnonzero(included.to_numpy())]
        notes.append(f"complete_case: {int(already.sum())} patients excluded "
                     "for missing covariates")

    model_cols: dict[str, np.ndarray] = {}
    bal_cols: dict[str, np.ndarray] = {}
    binary: dict[str, bool] = {}
    refs: dict[str, object] = {}
    for c in covariates:
        s = data[c]
        if ptypes.is_bool_dtype(s) and not s.isna().any():
            x = s.to_numpy(dtype=float)
            model_cols[c] = bal_cols[c] = x
            binary[c] = True
        elif _is_categorical(s) and not ptypes.is_bool_dtype(s):
            levels = _levels(s)
            # integer codes: comparing object arrays level by level is 10x slower on 1M rows
            codes = pd.Categorical(s, categories=levels).codes.astype(np.int64)
            if (codes < 0).any():  # only reachable with missing="indicator"
                codes = np.where(codes < 0, len(levels), codes)
                levels = [*levels, MISSING_LEVEL]
                notes.append(f"{c}: {int(s.isna().sum())} missing coded as level {MISSING_LEVEL!r}")
            counts = np.bincount(codes, minlength=len(levels))
            present = [j for j in range(len(levels)) if counts[j] > 0]
            dropped = [levels[j] for j in range(len(levels)) if counts[j] == 0]
            if dropped:
                notes.append(f"{c}: levels {dropped} have no patient and are left out")
            if len(present) < 2:
                raise MatchingError(
                    f"Covariate {c!r} takes a single value ({[levels[j] for j in present]}) in "
                    "the analysed sample; it carries no information: remove it from covariates."
                )
            refs[c] = levels[present[0]]
            for i, j in enumerate(present):
                x = (codes == j).astype(float)
                name = f"{c}_{levels[j]}"
                bal_cols[name] = x
                binary[name] = True
                if i > 0:
                    model_cols[name] = x
        elif ptypes.is_numeric_dtype(s) or ptypes.is_bool_dtype(s):
            x = s.to_numpy(dtype=float, na_value=np.nan)
            isna = np.isnan(x)
            if isna.any():  # only reachable with missing="indicator"
                fill = float(np.nanmean(x)) if (~isna).any() else 0.0
                x = np.where(isna, fill, x)
                ind = isna.astype(float)
                model_cols[f"{c}_missing"] = bal_cols[f"{c}_missing"] = ind
                binary[f"{c}_missing"] = True
                notes.append(f"{c}: {int(isna.sum())} missing set to the observed mean "
                             f"{fill:.6g} with indicator {c}_missing")
            model_cols[c] = bal_cols[c] = x
            binary[c] = bool(np.isin(x, (0.0, 1.0)).all())
        else:
            raise MatchingError(
                f"Covariate {c!r} has dtype {s.dtype}, which is neither numeric, boolean nor "
                "categorical (string/category)."
            )
    idx = data.index
    model = pd.DataFrame(model_cols, index=idx)
    balance = pd.DataFrame(bal_cols, index=idx)
    return DesignMatrix(model=model, balance=balance, binary=binary, included=included,
                        exclusions=exclusions, reference_levels=refs, notes=notes)
