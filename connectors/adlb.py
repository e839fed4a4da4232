"""ADaM ADLB (laboratory analysis dataset), CSV or SAS XPORT, validated like ADSL/ADRS.

`read_adlb` returns one row per record: ``USUBJID``, ``PARAMCD``, ``PARAM``, ``AVAL`` (the
result), ``ANRHI`` (the upper limit of normal), ``ADT`` (analysis date) and ``ADY`` (analysis
relative day), and the unit (``AVALU`` when the file has it, else the text in the last
parentheses of ``PARAM``, "hCG (IU/L)"). `trial_normalisation` turns the records of one
PARAMCD into the trial arm's biomarker normalisation with the same rules as the registry
(`connectors.biomarker.derive_normalisation`).

Days from index: ``ADT - TRTSDT`` when ADT is given; otherwise from ``ADY`` (ADaM: ADY = ADT -
TRTSDT + 1 on or after the first dose, ADT - TRTSDT before it, there is no day 0).

Errors name the file, the row (CSV: spreadsheet row, header = row 1; XPT: record number)
and the column.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from connectors import columns as cn
from connectors.biomarker import LAB_COLUMNS, NormalisationRule, derive_normalisation
from connectors.errors import ConnectorError, TrialDataError
from connectors.trial import _column, _date, _integer, _number, _paramcd_records, _read

REQUIRED_ADLB = ("USUBJID", "PARAMCD", "AVAL", "ANRHI")
ADLB_COLUMNS = ("USUBJID", "PARAMCD", "PARAM", "AVAL", "ANRHI", "ADT", "ADY", "UNIT")
_UNIT_IN_PARAM = re.compile(r"\(([^()]+)\)\s*$")


def read_adlb(path: str | Path) -> pd.DataFrame:
    """Read and validate an ADLB file.

    Returns
    -------
    DataFrame
        `ADLB_COLUMNS`, one row per record in file order: ``AVAL`` and ``ANRHI`` as floats
        (NaN when missing), ``ADT`` as Timestamp (NaT when missing), ``ADY`` as Int64,
        ``UNIT`` (AVALU, or the unit in PARAM's last parentheses; None when neither).
        ``attrs["path"]`` is the file and ``attrs["row"]`` the row label of each record.

    Raises
    ------
    TrialDataError
        Missing file or required variable (USUBJID, PARAMCD, AVAL, ANRHI, and one of ADT or
        ADY), a missing USUBJID or PARAMCD, a non-numeric or negative AVAL/ANRHI, an unparsable
        ADT, a non-integer or zero ADY.
    """
    t = _read(path)
    cols = set(t.data.columns)
    missing = [c for c in REQUIRED_ADLB if c not in cols]
    if not {"ADT", "ADY"} & cols:
        missing.append("ADT or ADY")
    if missing:
        raise t.fail(None, None, f"missing required variables {missing}")
    n = len(t.data)
    ids = _column(t, "USUBJID", str, "a subject id", required=True)
    params = _column(t, "PARAMCD", lambda v: str(v).strip().upper(), "a parameter code",
                     required=True)
    param = _column(t, "PARAM", str, "a parameter label") if "PARAM" in cols else [None] * n
    nonneg = _non_negative
    aval = _column(t, "AVAL", nonneg, "a number >= 0")
    anrhi = _column(t, "ANRHI", nonneg, "an upper limit of normal, a number >= 0")
    adt = (_column(t, "ADT", _date, "a date (YYYY-MM-DD, or a SAS date number in XPT)")
           if "ADT" in cols else [None] * n)
    ady = _column(t, "ADY", _study_day, "a study day, a non-zero integer") if "ADY" in cols \
        else [None] * n
    if "AVALU" in cols:
        units = _column(t, "AVALU", lambda v: str(v).strip(), "a unit")
    else:
        units = [None if p is None or not _UNIT_IN_PARAM.search(p)
                 else _UNIT_IN_PARAM.search(p).group(1).strip() for p in param]
    out = pd.DataFrame({
        "USUBJID": ids, "PARAMCD": params, "PARAM": param,
        "AVAL": pd.array(aval, dtype="Float64").astype(float),
        "ANRHI": pd.array(anrhi, dtype="Float64").astype(float),
        "ADT": pd.to_datetime(pd.Series(adt, dtype="object")),
        "ADY": pd.array(ady, dtype="Int64"),
        "UNIT": units,
    })
    out.attrs.update(path=str(t.path), row=[t.where(i) for i in range(n)])
    return out


def _non_negative(v) -> float:
    x = _number(v)
    if x < 0:
        raise ValueError
    return x


def _study_day(v) -> int:
    d = _integer(-100_000)(v)
    if d == 0:
        raise ValueError
    return d


def trial_normalisation(
    adlb: pd.DataFrame, subjects: pd.DataFrame, rule: NormalisationRule, paramcd: str,
) -> pd.DataFrame:
    """The trial arm's biomarker normalisation from ADLB.

    Parameters
    ----------
    adlb : DataFrame
        From `read_adlb`.
    subjects : DataFrame
        The trial arm (``patient_id``, ``index_date``), e.g. from `load_trial_arm`.
    rule : NormalisationRule
        The analyte, N consecutive results and the landmark; the records of ``paramcd`` are
        the rule's analyte.
    paramcd : str
        ADLB parameter of the analyte (e.g. ``HCG``).

    Returns
    -------
    DataFrame with ``patient_id`` and `connectors.biomarker.NORMALISATION_OUTPUT`, one row per
    subject in the order of ``subjects``; ``attrs`` as `derive_normalisation`. Subjects
    without records are ``measured = False`` (counted); records of subjects not in the trial
    arm are an error.
    """
    where, want = adlb.attrs.get("path", "ADLB"), str(paramcd).strip().upper()
    rows = _paramcd_records(adlb, want, subjects, "ADLB")
    ids = subjects[cn.PATIENT_ID].astype(str)
    index = dict(zip(ids, pd.to_datetime(subjects[cn.INDEX_DATE]), strict=True))
    by_date = (rows["ADT"] - rows["USUBJID"].map(index)).dt.days.astype(float)
    ady = rows["ADY"].astype(float)
    by_day = np.where(ady > 0, ady - 1, ady)  # ADaM: no day 0
    days = np.where(by_date.notna(), by_date, by_day)
    raw = pd.DataFrame({
        "key": rows["USUBJID"].to_numpy(), "days": days,
        "analyte": rule.analyte,  # the PARAMCD's records are the rule's analyte
        "value": rows["AVAL"].to_numpy(), "unit": rows["UNIT"].to_numpy(),
        "uln": rows["ANRHI"].to_numpy(),
    }, columns=list(LAB_COLUMNS))
    try:
        derived = derive_normalisation(raw, list(ids), rule)
    except ConnectorError as exc:
        raise TrialDataError(f"{where}, PARAMCD {want}: {exc}") from None
    out = derived.reset_index(drop=True)
    out.insert(0, cn.PATIENT_ID, ids.to_numpy())
    out.attrs.update(derived.attrs)
    return out
