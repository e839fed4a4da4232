"""Input checks shared by the survival estimators: one place, at entry, with named rows."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from reports.errors import EstimationError


def _first_bad(index: pd.Index, mask: np.ndarray) -> str:
    bad = np.flatnonzero(mask)
    shown = ", ".join(repr(index[i]) for i in bad[:5])
    more = f" (and {bad.size - 5} more)" if bad.size > 5 else ""
    return f"{bad.size} row(s), index {shown}{more}"


def require_columns(frame: pd.DataFrame, columns: dict[str, str | None]) -> None:
    """Raise `EstimationError` naming the parameter whose column is absent from ``frame``."""
    if not isinstance(frame, pd.DataFrame):
        raise EstimationError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    for param, col in columns.items():
        if col is not None and col not in frame.columns:
            raise EstimationError(
                f"{param}={col!r} is not a column of the frame (columns: {list(frame.columns)})"
            )


def time_array(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Follow-up times as float, finite and >= 0."""
    t = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(t)
    if bad.any():
        raise EstimationError(
            f"column {col!r}: missing or non-numeric time in {_first_bad(frame.index, bad)}"
        )
    if (t < 0).any():
        raise EstimationError(f"column {col!r}: negative time in {_first_bad(frame.index, t < 0)}")
    return t


def zero_one_array(frame: pd.DataFrame, col: str, rule: str) -> np.ndarray:
    """A 0/1 column as float (booleans allowed); a missing or other value is an
    `EstimationError` naming ``col``, ``rule`` and the first offending rows."""
    raw = frame[col]
    if raw.dtype == bool:
        return raw.to_numpy(dtype=float)
    x = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isin(x, (0.0, 1.0))
    if bad.any():
        raise EstimationError(f"column {col!r}: {rule}; found other or missing values in "
                              f"{_first_bad(frame.index, bad)}")
    return x


def event_array(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Event indicator as float 0/1 (1 = event, 0 = censored)."""
    return zero_one_array(frame, col, "event indicator must be 0 (censored) or 1 (event)")


def weight_array(frame: pd.DataFrame, col: str | None) -> np.ndarray:
    """Case weights, finite and >= 0 (ones when ``col`` is None)."""
    if col is None:
        return np.ones(len(frame))
    w = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise EstimationError(
            f"column {col!r}: weights must be finite and >= 0; bad values in "
            f"{_first_bad(frame.index, bad)}"
        )
    return w


def cluster_codes(
    frame: pd.DataFrame, col: str | None, weights: np.ndarray | None = None
) -> np.ndarray | None:
    """Integer codes 0..G-1 of the cluster column (None when ``col`` is None).

    A missing cluster id is allowed on rows of weight 0 (e.g. unmatched registry patients,
    whose ``match_id`` is empty): they contribute nothing and get codes of their own.
    """
    if col is None:
        return None
    c = frame[col]
    missing = c.isna().to_numpy()
    bad = missing if weights is None else missing & (weights > 0)
    if bad.any():
        raise EstimationError(
            f"column {col!r}: missing cluster id in {_first_bad(frame.index, bad)}"
        )
    codes, uniques = pd.factorize(c, sort=True)
    codes = codes.astype(np.int64)
    if missing.any():
        codes[missing] = len(uniques) + np.arange(int(missing.sum()))
    return codes


def check_option(name: str, value: Hashable, allowed: tuple) -> None:
    """Raise naming the parameter when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise EstimationError(f"{name} must be one of {list(allowed)}, got {value!r}")


def check_conf_level(conf_level: float) -> float:
    """Return ``conf_level`` as float after checking 0 < conf_level < 1."""
    try:
        level = float(conf_level)
    except (TypeError, ValueError):
        raise EstimationError(
            f"conf_level must be a number in (0, 1), got {conf_level!r}"
        ) from None
    if not 0.0 < level < 1.0:
        raise EstimationError(f"conf_level must be in (0, 1), got {conf_level!r}")
    return level
