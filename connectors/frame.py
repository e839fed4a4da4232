"""The analysis frame's columns and types, identical whatever database returned the rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from connectors import columns as cn

FRAME_COLUMNS = (
    cn.PATIENT_ID, cn.ARM, cn.LINE_ID, cn.CENTRE_ID, cn.INDEX_DATE, cn.DISEASE,
    *cn.COVARIATE_COLUMNS,
)
_DTYPES: dict[str, Any] = {
    cn.LINE_ID: "Int64", cn.AGE: "float64", cn.ECOG: "Int64", cn.PCI: "Int64",
    cn.PRIOR_CRS: "bool", cn.CRS_HIPEC: "bool", cn.PFI_MONTHS: "float64",
    cn.PRIOR_LINES: "Int64", cn.PRIOR_IMMUNOTHERAPY: "bool",
    cn.MONTHS_SINCE_DIAGNOSIS: "float64", cn.KI67: "float64",
}
_TEXT = (cn.PATIENT_ID, cn.CENTRE_ID, cn.DISEASE, cn.SEX, cn.HISTOLOGY, cn.BAP1)



def finish_frame(raw: pd.DataFrame, extra: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Types of the analysis frame, identical whatever the database returned.

    ``extra``: the mapping's covariates (name -> `connectors.mapping.Covariate`), after the
    built-in columns.
    """
    frame = pd.DataFrame(index=raw.index)
    for name in FRAME_COLUMNS:
        if name == cn.ARM:
            frame[name] = cn.CONTROL
            continue
        col = raw[name]
        if name == cn.INDEX_DATE:
            frame[name] = pd.to_datetime(col)
        elif name in _TEXT:
            frame[name] = _text(col)
        elif name == cn.LINE_ID:
            frame[name] = as_key(col)
        elif _DTYPES[name] == "bool":
            frame[name] = col.astype(bool)
        elif _DTYPES[name] == "Int64":
            frame[name] = pd.array(pd.to_numeric(col), dtype="Int64")
        else:
            frame[name] = pd.to_numeric(col).astype("float64")
    for name, cov in (extra or {}).items():
        col = raw[name]
        if cov.kind == "text":
            frame[name] = _text(col)
        elif cov.kind == "integer":
            frame[name] = pd.array(pd.to_numeric(col), dtype="Int64")
        elif cov.kind == "boolean":
            frame[name] = pd.array([None if v is None or v != v else bool(v) for v in col],
                                   dtype="boolean")
        else:
            frame[name] = pd.to_numeric(col).astype("float64")
    return frame


def _text(col: pd.Series) -> pd.Series:
    out = col.astype(object).where(col.notna(), None)
    return out.map(lambda v: v if v is None else str(v))


def as_key(col: pd.Series):
    """Record keys: integers as Int64, keys of any other type as text."""
    try:
        return pd.array(pd.to_numeric(col), dtype="Int64")
    except (ValueError, TypeError):
        return _text(col)
