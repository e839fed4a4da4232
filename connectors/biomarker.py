"""Biomarker normalisation by a landmark (e.g. hCG for gestational trophoblastic tumours).

One derivation serves every source: registry laboratory results (`lab_select`, SQL on the
``lab_results`` table), the trial's ADaM ADLB (`connectors.adlb`) are both turned into rows
`LAB_COLUMNS` (key, days from index, analyte, value, unit, ULN) and passed to
`derive_normalisation`; a flat file gives the 0/1 status itself. Rules (also in
``docs/data_dictionary.md``, "Biomarker normalisation"):

1. Only results of the chosen ``analyte`` dated strictly after the index date (a result on the
   index day is the baseline) and at most ``landmark_days`` after it count.
2. Rows without a date or a value are ignored and counted (``n_incomplete``).
3. A result is *normal* when ``value < uln`` (strictly below the upper limit of normal; values
   and ULN in the same unit). A result with a value but no ULN cannot be judged: it is not
   normal (it breaks a run of normal results) and is counted (``n_no_uln``).
4. Every used result of the analyte must be in one unit (trimmed, case-insensitive): results
   in several units are an error (convert them in the mapping, ``scale`` and ``values`` on
   ``unit``); the unit found is ``attrs["unit"]`` (the caller checks the two arms agree).
5. ``normalised`` = 1 when ``n_consecutive`` successive results (by date) are normal by the
   landmark; the date of normalisation is the first of them. Too few results, or a rise
   between normal results, give 0.
6. A patient with no usable result by the landmark has ``measured = False`` and
   ``normalised = 0`` (``missing_as_failure=True``, the trials' non-responder convention) or
   NaN (``missing_as_failure=False``); either way counted (``attrs["n_unmeasured"]``), never
   dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql import FromClause

from connectors import columns as cn
from connectors.errors import ConnectorError
from connectors.readonly import days_between

LAB_COLUMNS = ("key", "days", "analyte", "value", "unit", "uln")
NORMALISED = "normalised"  # the 0/1 endpoint column (analysis frame and outputs)
NORMALISATION_OUTPUT = (NORMALISED, "days_to_normalisation", "measured", "n_results")


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

    @classmethod
    def by_landmark(cls, analyte: str, n_consecutive: int, by: float, unit: str,
                    missing_as_failure: bool = True) -> NormalisationRule:
        """The rule with the landmark given as ``by`` ``unit`` (weeks, months...)."""
        if unit not in cn.DAYS_PER_UNIT:
            raise ConnectorError(
                f"normalisation unit must be one of {list(cn.DAYS_PER_UNIT)}, got {unit!r}")
        return cls(analyte, n_consecutive, float(cn.to_days(unit, by)), missing_as_failure)

    def describe(self) -> str:
        """One sentence for methods text and results.json."""
        return (f"{self.analyte} below the upper limit of normal on {self.n_consecutive} "
                f"consecutive measurement(s) after index, by day {self.landmark_days:g}")


def lab_select(t: Mapping[str, sa.Table], idx: FromClause, analyte: str) -> sa.Select:
    """Laboratory results of ``analyte`` after index of the index lines in ``idx``
    (patient_id, line_id, index_date), as `LAB_COLUMNS` (``key`` = line_id, ``days`` from
    index). Reads ``lab_results`` only (an outcome table: endpoint stage); the analyte is
    compared trimmed and in lower case with ``analyte`` (a bound parameter), after the
    mapping's recoding."""
    lab = t["lab_results"]
    return (
        sa.select(
            idx.c.line_id.label("key"),
            days_between(idx.c.index_date, lab.c.lab_date).label("days"),
            lab.c.analyte.label("analyte"),
            lab.c.value.label("value"),
            lab.c.unit.label("unit"),
            lab.c.uln.label("uln"),
        )
        .select_from(idx.join(lab, sa.and_(lab.c.patient_id == idx.c.patient_id,
                                           lab.c.lab_date > idx.c.index_date)))
        .where(sa.func.lower(sa.func.trim(lab.c.analyte))
               == sa.bindparam("analyte", analyte.strip().lower()))
        .order_by(idx.c.line_id, lab.c.lab_date)
    )


def derive_normalisation(labs: pd.DataFrame, keys: list, rule: NormalisationRule) -> pd.DataFrame:
    """Normalisation status per key (index line or subject), in the order of ``keys``.

    Parameters
    ----------
    labs : DataFrame
        `LAB_COLUMNS`; ``days`` from index (rows with days <= 0 are baseline, ignored).
    keys : sequence
        Every key to report, in order (keys without results get ``measured = False``).
    rule : NormalisationRule

    Returns
    -------
    DataFrame indexed by key with `NORMALISATION_OUTPUT` (days from index); ``attrs``:
    ``n_incomplete`` (rows without date or value), ``n_no_uln`` (rows without ULN, not normal),
    ``n_unmeasured`` (keys without a usable result), ``unit`` (the unit of the results used,
    None when none) and ``rule`` (`NormalisationRule.describe`).
    """
    missing = [c for c in LAB_COLUMNS if c not in labs.columns]
    if missing:
        raise ConnectorError(f"derive_normalisation: lab rows lack columns {missing}")
    a = labs.loc[
        labs["analyte"].astype("string").str.strip().str.lower() == rule.analyte.strip().lower()
    ].copy()
    for c in ("days", "value", "uln"):
        a[c] = pd.to_numeric(a[c], errors="coerce")
    incomplete = a[["days", "value"]].isna().any(axis=1)
    use = ~incomplete & (a["days"] > 0) & (a["days"] <= rule.landmark_days)
    a = a.loc[use]
    units = a["unit"].astype("string").str.strip().str.lower()
    if units.nunique() > 1 or (units.isna().any() and units.notna().any()):
        found = sorted(str(u) for u in a["unit"].astype("string").str.strip().unique())
        raise ConnectorError(
            f"analyte {rule.analyte!r}: results in several units {found} (or some without a "
            "unit); convert them to one unit in the mapping first ('values' and 'scale')"
        )
    unit = None if a.empty or units.isna().all() else str(a["unit"].astype(str).str.strip()
                                                          .iloc[0])
    no_uln = a["uln"].isna()
    a = a.sort_values(["key", "days"], kind="stable")
    rows = {}
    for key, g in a.groupby("key", sort=False):
        normal = (g["value"] < g["uln"]).to_numpy()  # NaN ULN: False, breaks the run
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
    out["n_results"] = out["n_results"].astype("int64")
    out.attrs.update(n_incomplete=int(incomplete.sum()), n_no_uln=int(no_uln.sum()),
                     n_unmeasured=int((~out["measured"]).sum()), unit=unit,
                     rule=rule.describe())
    return out
