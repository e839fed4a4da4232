"""ADaM ADRS (response analysis dataset), CSV or SAS XPORT, validated like ADSL/ADTTE.

`read_adrs` returns one row per record: ``USUBJID``, ``PARAMCD``, ``AVALC``, ``ADT`` (a
date; may be missing for a summary parameter such as BOR). It is general: every PARAMCD is
kept, and the two response parameters are checked: ``OVR`` (per-visit overall response:
AVALC in CR/PR/SD/PD/NE, ADT required) and ``BOR`` (best overall response: AVALC in the same
codes, one record per subject). `trial_response` turns them into the trial arm's objective
response with the same rules as the registry (`connectors.response`).

Errors name the file, the row (CSV: spreadsheet row, header = row 1; XPT: record number)
and the column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from connectors import columns as cn
from connectors.errors import TrialDataError
from connectors.response import ResponseRule, derive_response
from connectors.schema import RESPONSE_CODES
from connectors.trial import _code, _column, _date, _paramcd_records, _read

REQUIRED_ADRS = ("USUBJID", "PARAMCD", "AVALC")
ADRS_COLUMNS = ("USUBJID", "PARAMCD", "AVALC", "ADT")
OVERALL_RESPONSE_PARAMCD = "OVR"
BEST_RESPONSE_PARAMCD = "BOR"
RESPONSE_PARAMCDS = (OVERALL_RESPONSE_PARAMCD, BEST_RESPONSE_PARAMCD)
# ADaM codes seen for "not evaluable"/"not done" at a visit; read as NE
_NE_ALIASES = ("NE", "NOT EVALUABLE", "ND", "UNK")


def read_adrs(path: str | Path) -> pd.DataFrame:
    """Read and validate an ADRS file.

    Returns
    -------
    DataFrame
        `ADRS_COLUMNS`, one row per record in file order; ``ADT`` as Timestamp (NaT when
        absent); ``AVALC`` upper-case. ``attrs["path"]`` is the file and ``attrs["row"]`` the
        row label of each record for later error messages.

    Raises
    ------
    TrialDataError
        Missing file or required variable (USUBJID, PARAMCD, AVALC), missing USUBJID or
        PARAMCD, a response code outside CR/PR/SD/PD/NE for OVR/BOR, an OVR record without
        ADT, an unparsable date, a second BOR record for a subject.
    """
    t = _read(path)
    cols = set(t.data.columns)
    missing = [c for c in REQUIRED_ADRS if c not in cols]
    if missing:
        raise t.fail(None, None, f"missing required variables {missing}")
    ids = _column(t, "USUBJID", str, "a subject id", required=True)
    params = _column(
        t, "PARAMCD", lambda v: str(v).strip().upper(), "a parameter code", required=True
    )
    avalc = _column(t, "AVALC", lambda v: str(v).strip().upper(), "a value")
    dates = (
        _column(t, "ADT", _date, "a date (YYYY-MM-DD, or a SAS date number in XPT)")
        if "ADT" in cols
        else [None] * len(ids)
    )
    check = _code(RESPONSE_CODES)
    seen_bor: set[str] = set()
    for i, (p, v) in enumerate(zip(params, avalc, strict=True)):
        if p not in RESPONSE_PARAMCDS:
            continue
        value = "NE" if v in _NE_ALIASES else v
        try:
            avalc[i] = check(value) if value is not None else None
        except ValueError:
            raise t.fail(
                i, "AVALC", f"{p} response must be one of {list(RESPONSE_CODES)}, got {v!r}"
            ) from None
        if avalc[i] is None:
            raise t.fail(
                i, "AVALC", f"missing {p} response (expected one of {list(RESPONSE_CODES)})"
            )
        if p == OVERALL_RESPONSE_PARAMCD and dates[i] is None:
            raise t.fail(i, "ADT", "missing date of a per-visit (OVR) response")
        if p == BEST_RESPONSE_PARAMCD:
            if ids[i] in seen_bor:
                raise t.fail(i, "USUBJID", f"second BOR record for subject {ids[i]!r}")
            seen_bor.add(ids[i])
    out = pd.DataFrame(
        {
            "USUBJID": ids,
            "PARAMCD": params,
            "AVALC": avalc,
            "ADT": pd.to_datetime(pd.Series(dates, dtype="object")),
        }
    )
    out.attrs.update(path=str(t.path), row=[t.where(i) for i in range(len(ids))])
    return out


def trial_response(
    adrs: pd.DataFrame,
    subjects: pd.DataFrame,
    rule: ResponseRule | None = None,
    paramcd: str = OVERALL_RESPONSE_PARAMCD,
) -> pd.DataFrame:
    """The trial arm's objective response from ADRS.

    Parameters
    ----------
    adrs : DataFrame
        From `read_adrs`.
    subjects : DataFrame
        The trial arm (``patient_id``, ``index_date``), e.g. from `load_trial_arm`.
    rule : ResponseRule, optional
        Confirmation and window (used with OVR; a BOR is the sponsor's derivation and is taken
        as it is: responder = CR or PR).
    paramcd : {"OVR", "BOR"}, default="OVR"

    Returns
    -------
    DataFrame with ``patient_id`` and `connectors.response.RESPONSE_OUTPUT`, one row per
    subject in the order of ``subjects``. Subjects without records are non-responders with
    ``assessed = False``; records of subjects not in the trial arm are an error.
    """
    if paramcd not in RESPONSE_PARAMCDS:
        raise TrialDataError(
            f"response paramcd must be one of {list(RESPONSE_PARAMCDS)}, got {paramcd!r}"
        )
    rows = _paramcd_records(adrs, paramcd, subjects, "ADRS")
    ids = subjects[cn.PATIENT_ID].astype(str)
    if paramcd == BEST_RESPONSE_PARAMCD:
        bor = dict(zip(rows["USUBJID"], rows["AVALC"], strict=True))
        out = pd.DataFrame(
            {
                cn.PATIENT_ID: ids.to_numpy(),
                "response": [int(bor.get(s) in ("CR", "PR")) for s in ids],
                "best_response": [bor.get(s, "NE") for s in ids],
                "assessed": [s in bor for s in ids],
            }
        )
        out.attrs["rule"] = "ADRS BOR as recorded (responder = CR or PR)"
        return out
    index = dict(zip(ids, pd.to_datetime(subjects[cn.INDEX_DATE]), strict=True))
    days = (rows["ADT"] - rows["USUBJID"].map(index)).dt.days
    raw = pd.DataFrame(
        {
            "key": rows["USUBJID"].to_numpy(),
            "days": days.to_numpy(),
            "overall_response": rows["AVALC"].to_numpy(),
            "clinical_progression": False,
        }
    )
    derived = derive_response(raw, list(ids), rule)
    out = derived.reset_index(drop=True)
    out.insert(0, cn.PATIENT_ID, ids.to_numpy())
    out.attrs.update(derived.attrs)
    return out
