"""Potential (administrative) follow-up: how long a patient could have been followed.

The potential follow-up of a patient is the arm's data cut-off date minus the patient's index
date, in days: the longest time anybody indexed then could be observed, whatever happened to
them. It is read from dates alone (the index date is a design column; the cut-off is a fact of
the data source: ADaM ``DCUTDT`` or the spec), never from an outcome, so it can be checked
before the design is locked. Observed follow-up is never longer: a landmark or an RMST horizon
beyond an arm's largest potential follow-up cannot be estimated for that arm, whatever the
outcomes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors import columns as cn
from connectors.errors import FollowUpError


@dataclass(frozen=True, slots=True)
class ArmFollowUp:
    """Potential follow-up of one arm (dates only; no outcome).

    Attributes
    ----------
    arm : str
        ``"trial"`` or ``"control"``.
    n : int
        Patients (rows) of the arm.
    data_cutoff : datetime.date
        The arm's data cut-off.
    cutoff_source : str
        Where the cut-off comes from (``"ADSL DCUTDT"``, ``"trial.data_cutoff"``, ...).
    first_index, last_index : datetime.date
        Earliest and latest index date of the arm (kept out of `to_dict` and messages).
    max_days, median_days : float
        Largest and median potential follow-up, days (cut-off minus index date).
    """

    arm: str
    n: int
    data_cutoff: dt.date
    cutoff_source: str
    first_index: dt.date
    last_index: dt.date
    max_days: float
    median_days: float
    _days: tuple[float, ...] = ()

    def max_in(self, unit: str) -> float:
        """Largest potential follow-up in ``unit`` (days, weeks, months, years)."""
        return float(cn.days_to(unit, self.max_days))

    def n_reaching(self, horizon_days: float) -> int:
        """Patients whose potential follow-up reaches ``horizon_days`` (at most ``n``)."""
        return int(np.sum(np.asarray(self._days) >= horizon_days))

    def to_dict(self, unit: str) -> dict:
        """JSON form, follow-up in ``unit``; no index date (a patient's date identifies)."""
        return {
            "arm": self.arm,
            "n": self.n,
            "data_cutoff": self.data_cutoff.isoformat(),
            "cutoff_source": self.cutoff_source,
            "max_potential_follow_up": round(self.max_in(unit), 6),
            "median_potential_follow_up": round(float(cn.days_to(unit, self.median_days)), 6),
            "unit": unit,
        }


def potential_follow_up(index_dates: pd.Series, data_cutoff: dt.date, *, arm: str,
                        cutoff_source: str) -> ArmFollowUp:
    """The potential follow-up of one arm from its index dates and its data cut-off.

    Parameters
    ----------
    index_dates : Series of dates
        One index date per patient (row) of the arm.
    data_cutoff : datetime.date
        The arm's data cut-off.
    arm, cutoff_source : str
        Labels kept in the result and in error messages.

    Raises
    ------
    FollowUpError
        The arm is empty, an index date is missing, or patients were indexed after the
        cut-off (counts only: no patient identifier in the message).
    """
    dates = pd.to_datetime(pd.Series(index_dates), errors="coerce")
    if dates.empty:
        raise FollowUpError(f"the {arm} arm has no patient: no follow-up to check")
    if dates.isna().any():
        raise FollowUpError(f"{int(dates.isna().sum())} patient(s) of the {arm} arm have no "
                            "index date: their potential follow-up is unknown")
    cutoff = pd.Timestamp(data_cutoff)
    days = (cutoff - dates).dt.days.to_numpy(dtype=float)
    late = days < 0
    if late.any():
        raise FollowUpError(
            f"{int(late.sum())} patient(s) of the {arm} arm have an index date after its data "
            f"cut-off {cutoff.date().isoformat()} ({cutoff_source}): correct the cut-off")
    return ArmFollowUp(arm, len(days), cutoff.date(), cutoff_source, dates.min().date(),
                       dates.max().date(), float(days.max()), float(np.median(days)),
                       tuple(days.tolist()))


def horizon_problem(what: str, horizon: float, unit: str, arm: ArmFollowUp) -> str | None:
    """Why ``horizon`` (in ``unit``) cannot be estimated in ``arm``, or None when it can be.

    ``what`` names the setting (``"analysis.rmst_tau"``). A horizon is refused when it lies
    beyond the arm's largest potential follow-up: nobody of the arm can be followed that long.
    """
    if horizon <= arm.max_in(unit):
        return None
    return (f"{what} = {horizon:g} {unit} is beyond the largest potential follow-up of the "
            f"{arm.arm} arm, {arm.max_in(unit):.1f} {unit} (its data cut-off "
            f"{arm.data_cutoff.isoformat()}, from {arm.cutoff_source}, minus its earliest index "
            f"date): no patient of that arm can be followed that long, so it cannot be "
            f"estimated")
