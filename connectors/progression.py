"""The trial arm's PFS progression interval: from ADaM ADRS visits or the protocol schedule.

The registry's comes from SQL (`connectors.derivation.progression_interval_select`), a flat
file's from its ``last_progression_free`` column (`connectors.flatfile`). Both functions here
are pure: they take the trial arm frame (``patient_id``, ``index_date``, ``pfs_days``,
``pfs_event``; optional ``pfs_death`` True for a death without progression and
``death_days`` days from index to death) and return ``patient_id`` plus
`connectors.columns.ALIGNMENT_COLUMNS`, one row per trial patient in its order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from connectors import columns as cn
from connectors.adrs import ADRS_COLUMNS, OVERALL_RESPONSE_PARAMCD
from connectors.derivation import ADEQUATE_RESPONSES
from connectors.errors import ConnectorError

SCHEDULE_WINDOW = 0.1  # a visit within 10% of the interval of its planned day (6 wk: +/- 4 d)


class ProgressionIntervalError(ConnectorError):
    """ADRS visits or the arm frame contradict the PFS endpoint (file, row, column named)."""


def _rows(mask: np.ndarray) -> str:
    pos = np.flatnonzero(mask)
    shown = ", ".join(str(p + 2) for p in pos[:5])  # spreadsheet row: header is row 1
    return f"row(s) {shown}" + (f" and {pos.size - 5} more" if pos.size > 5 else "")


def _where(adrs: pd.DataFrame, mask: np.ndarray, column: str, source: str) -> str:
    """``file, row N, column C`` of the first offending record (`read_adrs` row labels when
    present, else spreadsheet rows of the frame), with the count of the others."""
    labels = adrs.attrs.get("row")
    pos = np.flatnonzero(mask)
    if labels is None:
        return f"{source}, {_rows(mask)}, column {column}"
    more = f" (and {pos.size - 1} more record(s))" if pos.size > 1 else ""
    return f"{labels[pos[0]]}, column {column}{more}"


def _death_flags(arm: pd.DataFrame) -> np.ndarray:
    if cn.PFS_DEATH in arm:
        return arm[cn.PFS_DEATH].fillna(False).to_numpy(bool)
    return np.zeros(len(arm), bool)


def adrs_progression_interval(
    adrs: pd.DataFrame, arm: pd.DataFrame, *, source: str | None = None,
    paramcd: str = OVERALL_RESPONSE_PARAMCD,
) -> pd.DataFrame:
    """Last progression-free visit, visit count and mean gap of each trial patient from ADRS.

    Parameters
    ----------
    adrs : DataFrame
        ADRS rows (``USUBJID``, ``PARAMCD``, ``AVALC``, ``ADT``), in file order, e.g. from
        `connectors.adrs.read_adrs` (whose ``attrs["row"]`` labels name file and row in the
        errors; without them, rows are spreadsheet rows of the frame, header = row 1). Rows
        of other PARAMCDs are ignored.
    arm : DataFrame
        The trial arm (see module docstring); ``patient_id`` is the USUBJID.
    source : str, optional
        File name for the error messages (default: ``adrs.attrs["path"]`` or "ADRS").
    paramcd : str, default="OVR"
        The per-visit overall response parameter (`connectors.adrs`).

    Returns
    -------
    DataFrame
        patient_id, pfs_last_pf_days (last CR/PR/SD visit before the PFS event, on or before
        the censoring; 0 when none), pfs_death, pfs_n_assessments (post-index visits up to the
        event or censoring), pfs_mean_gap_days.

    Raises
    ------
    ProgressionIntervalError
        A missing ADRS column, a visit of a subject not in the trial arm (column USUBJID), a
        missing or unreadable ADT, a visit after the subject's death (column ADT), or a
        progression-free visit on or after a progression event.
    """
    source = source or adrs.attrs.get("path", "ADRS")
    missing = [c for c in ADRS_COLUMNS if c not in adrs.columns]
    if missing:
        raise ProgressionIntervalError(f"{source}: missing column(s) {', '.join(missing)}")
    paramcd_ok = (adrs["PARAMCD"].astype(str) == paramcd).to_numpy()
    ids = adrs["USUBJID"].astype(str).to_numpy()
    known = pd.Series(ids).isin(arm[cn.PATIENT_ID].astype(str)).to_numpy()
    unknown = paramcd_ok & ~known
    if unknown.any():
        first = ids[np.flatnonzero(unknown)[0]]
        raise ProgressionIntervalError(
            f"{_where(adrs, unknown, 'USUBJID', source)}: visit of subject {first!r} who is "
            "not in the trial arm (ADSL)")
    adt = pd.to_datetime(adrs["ADT"], errors="coerce").to_numpy()
    bad = paramcd_ok & pd.isna(adt)
    if bad.any():
        raise ProgressionIntervalError(
            f"{_where(adrs, bad, 'ADT', source)}: missing or unreadable date")
    pos = pd.Series(np.arange(len(arm)), index=arm[cn.PATIENT_ID].astype(str).to_numpy())
    who = np.where(paramcd_ok, pos.reindex(ids).fillna(-1).to_numpy(int), -1)
    index_date = pd.to_datetime(arm[cn.INDEX_DATE]).to_numpy()
    use = who >= 0
    days = np.full(len(adrs), np.nan)
    days[use] = (adt[use] - index_date[who[use]]) / np.timedelta64(1, "D")
    if "death_days" in arm:
        death = pd.to_numeric(arm["death_days"], errors="coerce").to_numpy(float)
        after = use & (days > np.where(use, death[np.clip(who, 0, None)], np.nan))
        if after.any():
            raise ProgressionIntervalError(
                f"{_where(adrs, after, 'ADT', source)}: assessment after the subject's death")
    t = arm[cn.PFS_DAYS].to_numpy(float)
    event = arm[cn.PFS_EVENT].to_numpy(int) == 1
    pf = np.isin(adrs["AVALC"].astype(str).to_numpy(), ADEQUATE_RESPONSES)
    post = use & (days > 0)
    ti = t[np.clip(who, 0, None)]
    ei = event[np.clip(who, 0, None)]
    counted = post & (days <= ti)
    death = _death_flags(arm)
    progression = ei & ~death[np.clip(who, 0, None)]
    late = post & pf & progression & (days >= ti)
    if late.any():
        raise ProgressionIntervalError(
            f"{_where(adrs, late, 'AVALC', source)}: progression-free visit on or after the "
            "subject's PFS event day")
    before = counted & pf & ~(ei & (days >= ti))
    n = len(arm)
    last_pf = np.zeros(n)
    np.maximum.at(last_pf, who[before], days[before])
    n_visits = np.bincount(who[counted], minlength=n)
    last_visit = np.zeros(n)
    np.maximum.at(last_visit, who[counted], days[counted])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_gap = np.where(n_visits > 0, last_visit / n_visits, np.nan)
    return pd.DataFrame({
        cn.PATIENT_ID: arm[cn.PATIENT_ID].astype(str).to_numpy(),
        cn.PFS_LAST_PF_DAYS: last_pf,
        cn.PFS_DEATH: death,
        cn.PFS_N_ASSESSMENTS: n_visits.astype("int64"),
        cn.PFS_MEAN_GAP_DAYS: mean_gap,
    }, index=arm.index)


def schedule_progression_interval(arm: pd.DataFrame, every_days: float) -> pd.DataFrame:
    """The interval implied by a protocol schedule (visits at ``every_days``, 2x, ... days).

    Visits happen within a window around their planned day, so a progression on day t within
    ``SCHEDULE_WINDOW`` x ``every_days`` of planned visit k was found at visit k, after a
    progression-free visit k - 1 (day (k - 1) x ``every_days``); a progression off the schedule
    (e.g. clinical) follows the last planned visit before it. 0 when none; censored patients
    keep their time; deaths (``pfs_death``) are exact. Visit count and mean gap: the schedule's.
    """
    if not (np.isfinite(every_days) and every_days > 0):
        raise ProgressionIntervalError(f"trial_schedule_every must be > 0, got {every_days!r}")
    t = arm[cn.PFS_DAYS].to_numpy(float)
    event = arm[cn.PFS_EVENT].to_numpy(int) == 1
    death = _death_flags(arm)
    k = np.round(t / every_days)
    at_visit = (k >= 1) & (np.abs(t - k * every_days) <= SCHEDULE_WINDOW * every_days)
    previous = np.where(at_visit, k - 1, np.floor(t / every_days)) * every_days
    previous = np.where(previous >= t, np.maximum(previous - every_days, 0.0), previous)
    last_pf = np.where(event, np.clip(previous, 0.0, None), t)
    n_visits = np.floor(t / every_days + 1e-9).astype("int64")
    return pd.DataFrame({
        cn.PATIENT_ID: arm[cn.PATIENT_ID].astype(str).to_numpy(),
        cn.PFS_LAST_PF_DAYS: last_pf,
        cn.PFS_DEATH: death,
        cn.PFS_N_ASSESSMENTS: n_visits,
        cn.PFS_MEAN_GAP_DAYS: np.where(n_visits > 0, float(every_days), np.nan),
    }, index=arm.index)
