"""Biomarker normalisation by a landmark (e.g. hCG for gestational trophoblastic tumours).

The derivation only (issue 15): rows of dated laboratory results in, one status per patient
out. The ``lab_results`` registry table (date, analyte, value, unit, upper limit of normal)
and its SQL are not in the schema yet (the schema is being reworked by issue 12); any source
that yields `LAB_COLUMNS` rows can use `derive_normalisation` now. Rules:

1. Only results of the chosen ``analyte`` dated strictly after the index date and at most
   ``landmark_days`` after it count. Rows without a date, a value or an upper limit of normal
   are ignored and counted (``n_incomplete``).
2. A result is *normal* when ``value < uln`` (values and ULN in the same unit: the mapping's
   job; a row whose unit differs from the analyte's first unit is an error).
3. ``normalised`` = 1 when ``n_consecutive`` successive results (by date) are normal by the
   landmark; the date of normalisation is the first of them.
4. A patient with no usable result by the landmark has ``measured = False`` and
   ``normalised = 0`` (``missing_as_failure=True``, the trials' non-responder convention) or
   NaN (``missing_as_failure=False``); either way counted (``attrs["n_unmeasured"]``), never
   dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors.errors import ConnectorError

LAB_COLUMNS = ("key", "days", "analyte", "value", "unit", "uln")
NORMALISATION_OUTPUT = ("normalised", "days_to_normalisation", "measured", "n_results")


@dataclass(frozen=True, slots=True)
class NormalisationRule:
    """Which analyte, how many consecutive normal values, and by when (days from index)."""

    analyte: str
    n_consecutive: int = 2
    landmark_days: float = 168.0
    missing_as_failure: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.analyte, str) or not self.analyte.strip():
            raise ConnectorError(f"normalisation analyte must be a name, got {self.analyte!r}")
        if not isinstance(self.n_consecutive, int) or self.n_consecutive < 1:
            raise ConnectorError(
                f"normalisation n_consecutive must be an integer >= 1, got {self.n_consecutive!r}"
            )
        if not (np.isfinite(self.landmark_days) and self.landmark_days > 0):
            raise ConnectorError(
                f"normalisation landmark_days must be > 0, got {self.landmark_days!r}"
            )


def derive_normalisation(labs: pd.DataFrame, keys: list, rule: NormalisationRule) -> pd.DataFrame:
    """Normalisation status per key (index line or subject), in the order of ``keys``.

    Returns a DataFrame indexed by key with `NORMALISATION_OUTPUT`; ``attrs`` count the
    incomplete rows ignored and the keys without any usable result (``n_unmeasured``).
    """
    missing = [c for c in LAB_COLUMNS if c not in labs.columns]
    if missing:
        raise ConnectorError(f"derive_normalisation: lab rows lack columns {missing}")
    a = labs.loc[
        labs["analyte"].astype("string").str.strip().str.lower() == rule.analyte.strip().lower()
    ].copy()
    for c in ("days", "value", "uln"):
        a[c] = pd.to_numeric(a[c], errors="coerce")
    incomplete = a[["days", "value", "uln"]].isna().any(axis=1)
    units = a.loc[~incomplete, "unit"].astype("string").str.strip()
    if units.nunique() > 1:
        raise ConnectorError(
            f"analyte {rule.analyte!r}: results in several units {sorted(units.unique())}; "
            "convert them in the mapping first"
        )
    use = ~incomplete & (a["days"] > 0) & (a["days"] <= rule.landmark_days)
    a = a.loc[use].sort_values(["key", "days"], kind="stable")
    rows = {}
    for key, g in a.groupby("key", sort=False):
        normal = (g["value"] < g["uln"]).to_numpy()
        days = g["days"].to_numpy(float)
        run, first = 0, np.nan
        status, when = 0.0, np.nan
        for i, ok in enumerate(normal):
            run = run + 1 if ok else 0
            if run == 1:
                first = days[i]
            if run >= rule.n_consecutive:
                status, when = 1.0, first
                break
        rows[key] = (status, when, True, len(g))
    absent = (0.0 if rule.missing_as_failure else np.nan, np.nan, False, 0)
    out = pd.DataFrame(
        [rows.get(k, absent) for k in keys],
        columns=list(NORMALISATION_OUTPUT),
        index=pd.Index(list(keys), name="key"),
    )
    out["measured"] = out["measured"].astype(bool)
    out.attrs.update(n_incomplete=int(incomplete.sum()), n_unmeasured=int((~out["measured"]).sum()))
    return out
