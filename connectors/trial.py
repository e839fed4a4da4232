"""The trial arm from CDISC ADaM ADSL + ADTTE (CSV or SAS XPORT), validated.

`load_trial_arm` returns the analysis frame (``arm="trial"``, the registry pool's covariate
columns, ``line_id`` empty) with PFS from ``PARAMCD == paramcd`` (default ``"PFS"``) and OS
from ``PARAMCD == "OS"`` when present; ``CNSR`` 0 is an event, 1 a censoring.

Row numbers in errors: for CSV files, the row as a spreadsheet shows it (the header is row 1,
the first data row is row 2); for XPT files, the 1-based record number.

ADSL variables (``DEFAULT_VARIABLE_MAP``, overridable with ``variable_map`` as
``{analysis column: ADSL variable}``): USUBJID, SITEID, TRTSDT (index date), AGE (or the exact
age from BRTHDT when present), SEX (F/M), ECOGBL, HISTGR, PCIBL, PRCRS/CRSHIPEC/PRIOIO (Y/N),
PFIMO, PRLINES, DIAGMO, KI67BL, BAP1BL (lost/retained). USUBJID and TRTSDT are required; a
covariate variable that is absent gives an empty column listed in
``frame.attrs["absent_variables"]``. With ITTFL present, only ``ITTFL == "Y"`` subjects are
kept and the others are counted in ``frame.attrs["n_not_itt"]``. DCUTDT, when present, is the
study's data cut-off (one date), in ``frame.attrs["data_cutoff"]`` (a ``datetime.date``, else
None); it bounds the potential follow-up (`connectors.followup`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from connectors import columns as cn
from connectors.errors import TrialDataError
from connectors.hostile import (
    check_xpt_size,
    describe_value,
    lookalike_hint,
    nfkc,
    normalise_columns,
    read_guarded,
)
from connectors.schema import BAP1_CODES, HISTOLOGY_CODES, SEX_CODES

DEFAULT_VARIABLE_MAP: dict[str, str] = {
    cn.PATIENT_ID: "USUBJID",
    cn.CENTRE_ID: "SITEID",
    cn.INDEX_DATE: "TRTSDT",
    cn.AGE: "AGE",
    cn.SEX: "SEX",
    cn.ECOG: "ECOGBL",
    cn.HISTOLOGY: "HISTGR",
    cn.PCI: "PCIBL",
    cn.PRIOR_CRS: "PRCRS",
    cn.CRS_HIPEC: "CRSHIPEC",
    cn.PFI_MONTHS: "PFIMO",
    cn.PRIOR_LINES: "PRLINES",
    cn.PRIOR_IMMUNOTHERAPY: "PRIOIO",
    cn.MONTHS_SINCE_DIAGNOSIS: "DIAGMO",
    cn.KI67: "KI67BL",
    cn.BAP1: "BAP1BL",
}
REQUIRED_ADSL = (cn.PATIENT_ID, cn.INDEX_DATE)
DATA_CUTOFF_VARIABLE = "DCUTDT"  # ADSL data cut-off date (one date for the study)
REQUIRED_ADTTE = ("USUBJID", "PARAMCD", "AVAL", "CNSR")
SAS_EPOCH = pd.Timestamp("1960-01-01")
# pandas decodes the IBM double 0 (eight zero bytes, what SAS writes for 0) as 16**-65
# instead of 0.0 (pandas 2.x `_parse_float_vec` has no zero case); no real value is that small.
_PANDAS_XPT_ZERO = 16.0**-65


@dataclass(frozen=True, slots=True)
class _Table:
    """A file read as text (CSV) or as SAS values (XPT), with its row numbering."""

    path: Path
    data: pd.DataFrame
    xpt: bool

    def where(self, i: int | None = None, column: str | None = None) -> str:
        parts = [str(self.path)]
        if i is not None:
            parts.append(f"record {i + 1}" if self.xpt else f"row {i + 2}")
        if column is not None:
            parts.append(f"column {column}")
        return ", ".join(parts)

    def fail(self, i: int | None, column: str | None, message: str) -> TrialDataError:
        return TrialDataError(f"{self.where(i, column)}: {message}")


def _paramcd_records(table: pd.DataFrame, paramcd: str, subjects: pd.DataFrame,
                     name: str) -> pd.DataFrame:
    """The records of ``paramcd`` in an ADaM BDS table (ADRS, ADLB) read by `_read`, all of
    subjects of ``subjects`` (the trial arm); none, or one of an unknown subject, is an error
    naming the file (``name`` when it has no path), the row and the column."""
    where = table.attrs.get("path", name)
    rows = table.loc[table["PARAMCD"] == paramcd]
    if rows.empty:
        raise TrialDataError(
            f"{where}, column PARAMCD: no records with PARAMCD {paramcd!r} "
            f"(found {sorted(set(table['PARAMCD']))})"
        )
    unknown = ~rows["USUBJID"].isin(set(subjects[cn.PATIENT_ID].astype(str)))
    if unknown.any():
        i = rows.index[np.flatnonzero(unknown.to_numpy())[0]]
        label = table.attrs.get("row", [f"row {j + 2}" for j in range(len(table))])[i]
        raise TrialDataError(f"{label}, column USUBJID: subject {table.at[i, 'USUBJID']!r} "
                             "is not in the trial arm (ADSL)")
    return rows


def _read(path: str | Path) -> _Table:
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise TrialDataError(f"{path}: no such file")
    if suffix not in (".csv", ".xpt", ".xport"):
        raise TrialDataError(f"{path}: unknown file type {suffix!r} (expected .csv or .xpt)")
    xpt = suffix != ".csv"

    def control(i: int, column: str, value: str) -> TrialDataError:
        return _Table(path, pd.DataFrame(), xpt).fail(
            i if i >= 0 else None, column, f"control character {describe_value(value)}")

    try:
        data = read_guarded(path, lambda: _read_xpt(path) if xpt else _read_csv(path),
                            control, csv_text=not xpt)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError) as exc:
        raise TrialDataError(f"{path}: cannot be read as {suffix[1:].upper()} ({exc})") from None
    return _Table(path, data, xpt)


def _read_csv(path: Path) -> pd.DataFrame:
    data = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    data.columns = _names(path, data.columns)
    return data.apply(lambda s: s.str.strip())


def _read_xpt(path: Path) -> pd.DataFrame:
    with pd.read_sas(path, format="xport", encoding="utf-8", iterator=True) as reader:
        problem = check_xpt_size(path, reader.record_start, reader.record_length, reader.nobs)
        if problem:
            raise TrialDataError(f"{path}: truncated SAS XPORT file: {problem}")
        data = reader.read()
    data.columns = _names(path, data.columns)
    for col in data.columns:
        if data[col].dtype == object:
            data[col] = data[col].map(lambda v: v.strip() if isinstance(v, str) else v)
        else:
            data[col] = data[col].mask(data[col].abs() == _PANDAS_XPT_ZERO, 0.0)
    return data


def _names(path: Path, columns) -> list[str]:
    try:
        return normalise_columns(list(columns), str(path))
    except ValueError as exc:
        raise TrialDataError(str(exc)) from None


def _missing_variables(t: _Table, wanted: list[str]) -> TrialDataError:
    names = list(map(str, t.data.columns))
    hints = "".join(lookalike_hint(w, names) for w in wanted)
    return t.fail(None, None, f"missing required variables {wanted} "
                              f"(has: {', '.join(names)}){hints}")


def _missing(value) -> bool:
    return value is None or (isinstance(value, str) and value == "") or (
        not isinstance(value, str) and pd.isna(value)
    )


def _column(t: _Table, name: str, convert: Callable, expected: str, *, required: bool = False):
    """Convert one column value by value; the first bad value names its row."""
    out = []
    for i, v in enumerate(t.data[name].tolist()):
        if _missing(v):
            if required:
                raise t.fail(i, name, f"missing value (expected {expected})")
            out.append(None)
            continue
        try:
            out.append(convert(v))
        except (ValueError, TypeError, OverflowError):
            raise t.fail(i, name, f"expected {expected}, got {v!r}") from None
    return out


def _number(v) -> float:
    x = float(v)
    if not np.isfinite(x):
        raise ValueError
    return x


def _integer(lo: int, hi: int | None = None) -> Callable:
    def conv(v) -> int:
        x = _number(v)
        if x != int(x) or x < lo or (hi is not None and x > hi):
            raise ValueError
        return int(x)

    return conv


def _in_range(lo: float, hi: float | None = None) -> Callable:
    def conv(v) -> float:
        x = _number(v)
        if x < lo or (hi is not None and x > hi):
            raise ValueError
        return x

    return conv


def _code(codes, *, lower: bool = False) -> Callable:
    def conv(v) -> str:
        s = str(v).strip()
        s = s.lower() if lower else s.upper()
        if s not in codes:
            raise ValueError
        return s

    return conv


def _yes_no(v) -> bool:
    s = str(v).strip().upper()
    if s not in ("Y", "N"):
        raise ValueError
    return s == "Y"


def _date(v) -> pd.Timestamp:
    if isinstance(v, int | float | np.number) and not isinstance(v, bool):
        return SAS_EPOCH + pd.Timedelta(days=int(_integer(-100_000)(v)))  # SAS date number
    ts = pd.Timestamp(str(v))
    if ts is pd.NaT:
        raise ValueError
    return ts.normalize()


_CONVERTERS: dict[str, tuple[Callable, str]] = {
    cn.PATIENT_ID: (str, "a subject id"),
    cn.CENTRE_ID: (str, "a site id"),
    cn.INDEX_DATE: (_date, "a date (YYYY-MM-DD, or a SAS date number in XPT)"),
    cn.AGE: (_in_range(0, 120), "an age in years, 0-120"),
    cn.SEX: (_code(SEX_CODES), "F or M"),
    cn.ECOG: (_integer(0, 5), "an ECOG score, integer 0-5"),
    cn.HISTOLOGY: (_code(HISTOLOGY_CODES, lower=True), "one of " + "/".join(HISTOLOGY_CODES)),
    cn.PCI: (_integer(0, 39), "a Peritoneal Cancer Index, integer 0-39"),
    cn.PRIOR_CRS: (_yes_no, "Y or N"),
    cn.CRS_HIPEC: (_yes_no, "Y or N"),
    cn.PFI_MONTHS: (_number, "a number of months"),
    cn.PRIOR_LINES: (_integer(0), "a number of lines, integer >= 0"),
    cn.PRIOR_IMMUNOTHERAPY: (_yes_no, "Y or N"),
    cn.MONTHS_SINCE_DIAGNOSIS: (_in_range(0), "a number of months >= 0"),
    cn.KI67: (_in_range(0, 100), "a percentage 0-100"),
    cn.BAP1: (_code(BAP1_CODES, lower=True), "lost or retained"),
}
_BOOL = (cn.PRIOR_CRS, cn.CRS_HIPEC, cn.PRIOR_IMMUNOTHERAPY)
_INT = (cn.ECOG, cn.PCI, cn.PRIOR_LINES)
_FLOAT = (cn.AGE, cn.PFI_MONTHS, cn.MONTHS_SINCE_DIAGNOSIS, cn.KI67)


def _variable_map(variable_map: Mapping[str, str] | None) -> dict[str, str]:
    mapping = dict(DEFAULT_VARIABLE_MAP)
    for key, value in (variable_map or {}).items():
        if key not in DEFAULT_VARIABLE_MAP:
            raise TrialDataError(
                f"variable_map: unknown analysis column {key!r} (known: "
                f"{', '.join(DEFAULT_VARIABLE_MAP)})"
            )
        if not isinstance(value, str) or not value:
            raise TrialDataError(f"variable_map[{key!r}]: expected a variable name")
        mapping[key] = nfkc(value)
    return mapping


def _adsl_frame(t: _Table, vmap: Mapping[str, str]) -> pd.DataFrame:
    cols = set(t.data.columns)
    missing = [vmap[c] for c in REQUIRED_ADSL if vmap[c] not in cols]
    if missing:
        raise _missing_variables(t, missing)
    data = t.data
    keep = np.ones(len(data), dtype=bool)
    n_not_itt = 0
    if "ITTFL" in cols:
        flags = _column(t, "ITTFL", _yes_no, "Y or N", required=True)
        keep = np.array(flags, dtype=bool)
        n_not_itt = int((~keep).sum())
    ids = _column(t, vmap[cn.PATIENT_ID], str, "a subject id", required=True)
    seen: dict[str, int] = {}
    for i, s in enumerate(ids):
        if s in seen:
            raise t.fail(i, vmap[cn.PATIENT_ID],
                         f"duplicate subject {s!r} (first at "
                         f"{t.where(seen[s]).split(', ')[-1]})")
        seen[s] = i
    frame = pd.DataFrame({cn.PATIENT_ID: ids})
    frame[cn.ARM] = cn.TRIAL
    frame[cn.LINE_ID] = pd.array([pd.NA] * len(frame), dtype="Int64")
    absent = []
    for name, (conv, expected) in _CONVERTERS.items():
        if name == cn.PATIENT_ID:
            continue
        var = vmap[name]
        if var not in cols:
            hint = lookalike_hint(var, t.data.columns)
            if hint:  # a damaged name, not an absent variable
                raise t.fail(None, None, f"variable {var} not found{hint}")
            absent.append(var)
            values = [None] * len(frame)
        else:
            values = _column(t, var, conv, expected, required=name in REQUIRED_ADSL)
        frame[name] = values
    if "BRTHDT" in cols and vmap[cn.AGE] == "AGE":  # exact age, as the registry computes it
        births = _column(t, "BRTHDT", _date, "a date")
        exact = [
            (d - b).days / cn.DAYS_PER_UNIT["years"] if b is not None else a
            for d, b, a in zip(frame[cn.INDEX_DATE], births, frame[cn.AGE], strict=True)
        ]
        frame[cn.AGE] = exact
    frame = _types(frame)
    frame = frame.loc[keep].reset_index(drop=True)
    frame.attrs["absent_variables"] = absent
    frame.attrs["n_not_itt"] = n_not_itt
    frame.attrs["data_cutoff"] = (_data_cutoff(t) if DATA_CUTOFF_VARIABLE in cols else None)
    return frame


def _data_cutoff(t: _Table):
    """The one ``DCUTDT`` of the study (a date); differing values are an error naming rows."""
    dates = _column(t, DATA_CUTOFF_VARIABLE, _date, "a date", required=True)
    for i, d in enumerate(dates):
        if d != dates[0]:
            raise t.fail(i, DATA_CUTOFF_VARIABLE,
                         f"{d.date().isoformat()} differs from {dates[0].date().isoformat()} "
                         f"(first row): a data cut-off is one date for the study")
    return dates[0].date() if dates else None


def _types(frame: pd.DataFrame) -> pd.DataFrame:
    frame[cn.INDEX_DATE] = pd.to_datetime(frame[cn.INDEX_DATE])
    for c in _FLOAT:
        frame[c] = pd.to_numeric(frame[c]).astype("float64")
    for c in _INT:
        frame[c] = pd.array(frame[c].tolist(), dtype="Int64")
    for c in _BOOL:
        arr = pd.array(frame[c].tolist(), dtype="boolean")
        frame[c] = arr.astype(bool) if not arr.isna().any() else arr
    return frame


def _endpoints(t: _Table, paramcd: str, subjects: pd.Series) -> pd.DataFrame:
    cols = set(t.data.columns)
    missing = [c for c in REQUIRED_ADTTE if c not in cols]
    if missing:
        raise _missing_variables(t, missing)
    ids = _column(t, "USUBJID", str, "a subject id", required=True)
    params = _column(t, "PARAMCD", lambda v: str(v).strip(), "a parameter code", required=True)
    aval = _column(t, "AVAL", _in_range(0), "a time >= 0", required=True)
    cnsr = _column(t, "CNSR", _integer(0, 1), "0 (event) or 1 (censored)", required=True)
    units = (_column(t, "AVALU", lambda v: _unit(v), "DAYS, WEEKS, MONTHS or YEARS")
             if "AVALU" in cols else [None] * len(ids))
    known = set(subjects)
    for i, s in enumerate(ids):
        if s not in known:
            raise t.fail(i, "USUBJID", f"subject {s!r} is not in ADSL")
    wanted = {paramcd: (cn.PFS_DAYS, cn.PFS_EVENT)} if paramcd != "OS" else {}
    wanted["OS"] = (cn.OS_DAYS, cn.OS_EVENT)
    if paramcd not in params:
        raise t.fail(None, "PARAMCD", f"no records with PARAMCD {paramcd!r} "
                                      f"(found {sorted(set(params))})")
    out = pd.DataFrame({cn.PATIENT_ID: subjects})
    for code, (time_col, event_col) in wanted.items():
        rows = [i for i, p in enumerate(params) if p == code]
        if not rows:
            continue
        times: dict[str, float] = {}
        events: dict[str, int] = {}
        for i in rows:
            if ids[i] in times:
                raise t.fail(i, "USUBJID", f"second {code} record for subject {ids[i]!r}")
            times[ids[i]] = aval[i] * cn.DAYS_PER_UNIT[units[i] or "days"]
            events[ids[i]] = 1 - cnsr[i]
        lacking = [s for s in subjects if s not in times]
        if lacking and code == paramcd:
            raise t.fail(None, "PARAMCD", f"no {code} record for subject(s) {lacking[:5]} "
                                          f"({len(lacking)} of {len(subjects)})")
        out[time_col] = [times.get(s, np.nan) for s in subjects]
        ev = pd.array([events.get(s) for s in subjects], dtype="Int64")
        out[event_col] = ev.astype("int64") if not ev.isna().any() else ev
    return out


def _unit(v) -> str:
    s = str(v).strip().lower()
    s = s if s.endswith("s") else s + "s"
    if s not in cn.DAYS_PER_UNIT:
        raise ValueError
    return s


def load_trial_arm(
    adsl_path: str | Path,
    adtte_path: str | Path,
    paramcd: str = "PFS",
    variable_map: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Load and validate the trial arm.

    Parameters
    ----------
    adsl_path, adtte_path : path
        ADaM ADSL and ADTTE, ``.csv`` or ``.xpt`` (SAS XPORT v5) by extension.
    paramcd : str, default="PFS"
        PARAMCD of the primary time-to-event endpoint; its records give ``pfs_days`` /
        ``pfs_event`` (every ADSL subject must have one). ``PARAMCD == "OS"`` records, when
        present, give ``os_days`` / ``os_event``.
    variable_map : mapping of analysis column -> ADSL variable, optional
        Overrides `DEFAULT_VARIABLE_MAP`.

    Returns
    -------
    pandas.DataFrame
        Analysis frame, ``arm="trial"``, one row per ITT subject, in ADSL order; times in days
        (AVAL converted from AVALU when it is not DAYS), events 1 = event.

    Raises
    ------
    TrialDataError
        Naming the file, the row (CSV: spreadsheet row, header = row 1; XPT: record number)
        and the column: missing required variable, duplicate USUBJID, CNSR not 0/1, AVAL
        negative or not numeric, ADTTE subject absent from ADSL, Y/N flag not Y/N, code or
        range violations, missing endpoint record.
    """
    vmap = _variable_map(variable_map)
    adsl = _read(adsl_path)
    frame = _adsl_frame(adsl, vmap)
    all_ids = pd.Series(_column(adsl, vmap[cn.PATIENT_ID], str, "a subject id", required=True))
    adtte = _read(adtte_path)
    ends = _endpoints(adtte, paramcd, all_ids)
    ends = ends.loc[ends[cn.PATIENT_ID].isin(frame[cn.PATIENT_ID])].reset_index(drop=True)
    attrs = dict(frame.attrs)
    out = pd.concat([frame, ends.drop(columns=[cn.PATIENT_ID])], axis=1)
    out.attrs.update(attrs)
    return out
