"""Flat analysis file source: one CSV or Parquet file with both arms, covariates and one outcome.

The alternative to registry + trial files (spec ``data:``). The file's id, arm, time and event
columns are mapped onto the analysis frame's names (`connectors.columns`); times are converted to
days. Covariate columns keep their names. For the outcome-blind design stage the outcome columns
are not even read (``include_outcomes=False``); `load_flat_outcomes` reads them for analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from connectors import columns as cn
from connectors.columns import RESPONSE
from connectors.errors import ConnectorError
from connectors.hostile import (
    describe_value,
    lookalike_hint,
    nfkc,
    normalise_columns,
    read_guarded,
)

_PARQUET = (".parquet", ".pq")


class FlatFileError(ConnectorError):
    """A flat analysis file is missing, unreadable or has invalid values."""


def read_header(path: str | Path) -> list[str]:
    """Column names of a CSV or Parquet file, without reading its rows.

    Names are in Unicode NFKC form (full-width or styled letters become ASCII, see
    `connectors.hostile`); two names equal after normalisation are an error.
    """
    path = Path(path)
    return normalise(path, _raw_header(path))


def normalise(path: Path, names: list[str]) -> list[str]:
    try:
        return normalise_columns(names, str(path))
    except ValueError as exc:
        raise FlatFileError(str(exc)) from None


def _raw_header(path: Path) -> list[str]:
    _check_exists(path)
    try:
        if path.suffix.lower() in _PARQUET:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise FlatFileError(f"{path}: cannot read the file's header ({exc})") from exc


def missing_columns_message(path: Path, missing: list[str], header: list[str]) -> str:
    """``missing column(s) ...; the file has ...`` plus any look-alike name's code points."""
    hints = "".join(lookalike_hint(c, header) for c in missing)
    return (f"{path}: missing column(s) {', '.join(missing)}; the file has "
            f"{', '.join(header)}{hints}")


def load_flat_file(
    path: str | Path,
    *,
    id_col: str,
    arm_col: str,
    trial_value: object,
    time_col: str,
    event_col: str,
    time_unit: cn.TimeUnit = "days",
    covariates: Sequence[str] | None = None,
    endpoint: str = "PFS",
    include_outcomes: bool = True,
    exclude: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a flat analysis file into an analysis frame.

    Parameters
    ----------
    path : str or Path
        CSV (any other extension) or Parquet (``.parquet``/``.pq``).
    id_col, arm_col, time_col, event_col : str
        The file's patient id, arm, time-to-event and event (1 event, 0 censored) columns.
    trial_value : object
        Value of ``arm_col`` that marks trial patients; every other value is a control.
    time_unit : {"days", "weeks", "months", "years"}
        Unit of ``time_col``; the frame holds days (`connectors.columns.DAYS_PER_UNIT`).
    covariates : sequence of str, optional
        Covariate columns to keep (default: every other column).
    endpoint : str, default="PFS"
        Which analysis-frame outcome columns the time/event map onto (``pfs_days``/``pfs_event``).
    include_outcomes : bool, default=True
        With False the time and event columns are not read at all (outcome-blind design).
    exclude : sequence of str, default=()
        Other outcome columns (e.g. the 0/1 response) never read as covariates.

    Returns
    -------
    pandas.DataFrame
        One row per patient: ``patient_id`` (str), ``arm`` ("trial"/"control"), the covariates,
        and, with outcomes, ``<endpoint>_days`` (float, days) and ``<endpoint>_event`` (int 0/1).

    Raises
    ------
    FlatFileError
        Naming the file, row (1-based data row, as a spreadsheet shows it after the header)
        and column of the first invalid values.
    """
    path = Path(path)
    header = read_header(path)
    outcome = [time_col, event_col]
    required = [id_col, arm_col, *(outcome if include_outcomes else [])]
    keep = list(covariates) if covariates is not None else [
        c for c in header if c not in {id_col, arm_col, time_col, event_col, *exclude}
    ]
    missing = [c for c in dict.fromkeys([*required, *keep]) if nfkc(c) not in header]
    if missing:
        raise FlatFileError(missing_columns_message(path, missing, header))
    usecols = list(dict.fromkeys([*required, *keep]))
    raw = _read(path, usecols)
    ids = _ids(raw[nfkc(id_col)], path, id_col)
    arms = _arms(raw[nfkc(arm_col)], trial_value, path, arm_col)
    covs = raw[[nfkc(c) for c in keep]].set_axis(keep, axis=1)  # one block, not 1 per column
    frame = pd.concat([pd.DataFrame({cn.PATIENT_ID: ids, cn.ARM: arms}), covs], axis=1)
    if include_outcomes:
        time_days, event = _outcome(raw, time_col, event_col, time_unit, path)
        days_col, ev_col = cn.ENDPOINTS.get(endpoint, (f"{endpoint.lower()}_days",
                                                      f"{endpoint.lower()}_event"))
        frame[days_col] = time_days
        frame[ev_col] = event
    return frame.reset_index(drop=True)


def load_flat_outcomes(
    path: str | Path,
    *,
    id_col: str,
    time_col: str,
    event_col: str,
    time_unit: cn.TimeUnit = "days",
    endpoint: str = "PFS",
) -> pd.DataFrame:
    """Only the id and the outcome of a flat file: ``patient_id``, ``<endpoint>_days/_event``."""
    path = Path(path)
    header = read_header(path)
    missing = [c for c in (id_col, time_col, event_col) if nfkc(c) not in header]
    if missing:
        raise FlatFileError(missing_columns_message(path, missing, header))
    raw = _read(path, [id_col, time_col, event_col])
    days, event = _outcome(raw, time_col, event_col, time_unit, path)
    days_col, ev_col = cn.ENDPOINTS.get(endpoint, (f"{endpoint.lower()}_days",
                                                  f"{endpoint.lower()}_event"))
    return pd.DataFrame(
        {cn.PATIENT_ID: _ids(raw[nfkc(id_col)], path, id_col), days_col: days, ev_col: event}
    ).reset_index(drop=True)


def load_flat_response(path: str | Path, *, id_col: str, response_col: str,
                       what: str = "response") -> pd.DataFrame:
    """The id and a 0/1 binary endpoint of a flat file: ``patient_id``, `RESPONSE` (issue 15).

    Booleans are read as 0/1; a missing or other value is an error naming the rows.
    ``what`` names the endpoint in messages (``"response"``, ``"normalisation"``); the 0/1
    column is returned as `RESPONSE` whatever the endpoint.
    """
    path = Path(path)
    missing = [c for c in (id_col, response_col) if c not in read_header(path)]
    if missing:
        raise FlatFileError(f"{path}: missing column(s) {', '.join(missing)}")
    raw = _read(path, [id_col, response_col])
    col = raw[response_col]
    value = pd.to_numeric(col.astype(int) if pd.api.types.is_bool_dtype(col) else col,
                          errors="coerce")
    bad = ~value.isin([0, 1])
    if bad.any():
        raise FlatFileError(
            f"{path}: column {response_col!r}: {what} must be 0 or 1, found "
            f"{str(col[bad].iloc[0])!r} in {_row(col, bad)}"
        )
    return pd.DataFrame(
        {cn.PATIENT_ID: _ids(raw[id_col], path, id_col), RESPONSE: value.astype(int)}
    ).reset_index(drop=True)


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise FlatFileError(f"flat analysis file not found: {path}")


def _read(path: Path, usecols: list[str]) -> pd.DataFrame:
    """The ``usecols`` columns (NFKC names, as `read_header` gives them), checked for control
    characters; pandas' warnings become one `connectors.hostile.InputFileWarning`."""
    raw_names = _raw_header(path)
    by_norm = dict(zip(normalise(path, raw_names), raw_names, strict=True))
    wanted = [by_norm[nfkc(c)] for c in usecols]
    parquet = path.suffix.lower() in _PARQUET

    def read() -> pd.DataFrame:
        if parquet:
            data = pd.read_parquet(path, columns=wanted)
        else:  # low_memory=False: one pass, no DtypeWarning per chunk and column
            data = pd.read_csv(path, usecols=wanted, low_memory=False)
        data.columns = [nfkc(c) for c in data.columns]
        return data[[nfkc(c) for c in usecols]]

    try:
        return read_guarded(path, read, partial(_control_error, path), csv_text=not parquet)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise FlatFileError(f"{path}: cannot read the file ({exc})") from exc


def _control_error(path: Path, i: int, column: str, value: str) -> FlatFileError:
    row = "header" if i < 0 else f"row {i + 1}"
    return FlatFileError(f"{path}: column {column!r}: control character "
                         f"{describe_value(value)} in {row}")


def _row(raw: pd.Series, mask: pd.Series) -> str:
    """1-based data row numbers (the header is row 0) of the first offending rows."""
    pos = np.flatnonzero(mask.to_numpy())
    rows = ", ".join(str(p + 1) for p in pos[:5])
    more = f" and {len(pos) - 5} more" if len(pos) > 5 else ""
    return f"row(s) {rows}{more}"


def _ids(col: pd.Series, path: Path, name: str) -> pd.Series:
    bad = col.isna()
    if bad.any():
        raise FlatFileError(f"{path}: column {name!r}: missing patient id in {_row(col, bad)}")
    ids = col.astype(str)
    dup = ids.duplicated(keep=False)
    if dup.any():
        raise FlatFileError(
            f"{path}: column {name!r}: patient ids are not unique ({_row(col, dup)})"
        )
    return ids


def _arms(col: pd.Series, trial_value: object, path: Path, name: str) -> pd.Series:
    bad = col.isna()
    if bad.any():
        raise FlatFileError(f"{path}: column {name!r}: missing arm in {_row(col, bad)}")
    if pd.api.types.is_numeric_dtype(col) and not isinstance(trial_value, str | bool):
        is_trial = col.astype(float) == float(trial_value)
    elif pd.api.types.is_bool_dtype(col):
        is_trial = col == bool(trial_value)
    else:
        is_trial = col.astype(str) == str(trial_value)
    if not is_trial.any():
        values = ", ".join(map(str, pd.unique(col)[:10]))
        raise FlatFileError(
            f"{path}: column {name!r}: no row has the trial value {trial_value!r} "
            f"(values: {values})"
        )
    if is_trial.all():
        raise FlatFileError(f"{path}: column {name!r}: every row is a trial patient; "
                            "no control candidates")
    return pd.Series(np.where(is_trial, cn.TRIAL, cn.CONTROL), index=col.index, dtype=object)


def _outcome(raw: pd.DataFrame, time_col: str, event_col: str, unit: str, path: Path):
    if unit not in cn.DAYS_PER_UNIT:
        raise FlatFileError(f"{path}: unknown time unit {unit!r}; use one of "
                            f"{', '.join(cn.DAYS_PER_UNIT)}")
    time = pd.to_numeric(raw[nfkc(time_col)], errors="coerce")
    bad = time.isna()
    if bad.any():
        raise FlatFileError(
            f"{path}: column {time_col!r}: missing or non-numeric time in {_row(time, bad)}"
        )
    neg = time < 0
    if neg.any():
        raise FlatFileError(f"{path}: column {time_col!r}: negative time in {_row(time, neg)}")
    ev = raw[nfkc(event_col)]
    if pd.api.types.is_bool_dtype(ev):
        ev = ev.astype(int)
    ev_num = pd.to_numeric(ev, errors="coerce")
    bad = ~ev_num.isin([0, 1])
    if bad.any():
        raise FlatFileError(
            f"{path}: column {event_col!r}: event must be 0 (censored) or 1 (event), "
            f"found {str(ev[bad].iloc[0])!r} in {_row(ev, bad)}"
        )
    return cn.to_days(unit, time.astype(float)), ev_num.astype(int)


def load_flat_progression_interval(
    path: str | Path,
    *,
    id_col: str,
    time_col: str,
    event_col: str,
    last_pf_col: str,
    time_unit: cn.TimeUnit = "days",
) -> pd.DataFrame:
    """The PFS progression interval of a flat file (spec ``data.last_progression_free``).

    ``last_pf_col`` is the last assessment without progression before the event or censoring,
    in the unit of ``time_col`` (0 when none). An event whose ``last_pf_col`` equals its time
    is exact (a death, or a progression dated exactly); others lie in ``(last_pf, time]``.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, `connectors.columns.PFS_LAST_PF_DAYS` (days) and ``PFS_DEATH``
        (True for exact events). Assessment gaps are unknown in a flat file: no gap columns.

    Raises
    ------
    FlatFileError
        Naming the file, row and column of a missing or negative value, or of a last
        progression-free time after the event / censoring time.
    """
    path = Path(path)
    header = read_header(path)
    missing = [c for c in (id_col, time_col, event_col, last_pf_col) if c not in header]
    if missing:
        raise FlatFileError(f"{path}: missing column(s) {', '.join(missing)}")
    raw = _read(path, list(dict.fromkeys([id_col, time_col, event_col, last_pf_col])))
    days, event = _outcome(raw, time_col, event_col, time_unit, path)
    left = pd.to_numeric(raw[last_pf_col], errors="coerce")
    bad = left.isna() | (left < 0)
    if bad.any():
        raise FlatFileError(f"{path}: column {last_pf_col!r}: missing, non-numeric or negative "
                            f"last progression-free time in {_row(left, bad)}")
    left_days = cn.to_days(time_unit, left.astype(float))
    after = left_days > days
    if after.any():
        raise FlatFileError(f"{path}: column {last_pf_col!r}: last progression-free time after "
                            f"the {time_col!r} time in {_row(left, after)}")
    return pd.DataFrame({
        cn.PATIENT_ID: _ids(raw[id_col], path, id_col),
        cn.PFS_LAST_PF_DAYS: left_days,
        cn.PFS_DEATH: (event == 1) & (left_days == days),
    }).reset_index(drop=True)
