"""Objective response (RECIST 1.1 best overall response) from dated tumour assessments.

One derivation serves every source: registry assessments (`assessments_select`, SQL on
``tumour_assessments``) and the trial's per-visit overall responses (ADaM ADRS ``PARAMCD
== "OVR"``, `connectors.adrs`) are both turned into rows (key, days from index, response
code, clinical progression) and passed to `derive_response`. Rules (also in
``docs/data_dictionary.md``, "Objective response"):

1. Only assessments strictly after the index date count (an assessment on the index day is
   the baseline). Assessments without a date or without a response code are ignored and
   counted in ``n_undated`` / ``n_uncoded``.
2. Progression ends the assessment sequence: the first assessment with PD (or clinical
   progression) and everything after it are not used for the response.
3. A *response* is an assessment with CR or PR. With ``confirmed=True`` (the default) it is
   confirmed by a later assessment, at least ``confirmation_days`` (28) after it and before
   progression, with CR or PR (a CR needs a later CR to be a confirmed CR; otherwise it
   counts as a confirmed PR when a later CR/PR confirms it). Assessments in between with SD
   or NE do not break the confirmation (RECIST 1.1 Table 3: PR-SD-PR and PR-NE-PR are PR).
4. With a window (``by`` in ``unit``), the (first) response must be dated on or before
   ``by`` after index; its confirmation may come later.
5. ``responder`` is 1 for a (confirmed) CR or PR, else 0. ``best_response`` is CR or PR for
   responders; otherwise SD when any assessment before progression (within the window) had
   SD or an unconfirmed CR/PR, PD when progression came first, NE when there is no usable
   assessment. No minimum SD duration is applied (it does not change the response rate).
   Patients with no assessment after index are non-responders with ``best_response = NE``
   (``assessed = False``): counted, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql import FromClause

from connectors import columns as cn
from connectors.columns import RESPONSE
from connectors.derivation import PROGRESSION_RESPONSE
from connectors.errors import ConnectorError
from connectors.readonly import days_between
from connectors.schema import RESPONSE_CODES

RESPONDER_CODES = ("CR", "PR")
CONFIRMATION_DAYS = 28
# raw assessment columns shared by the registry query and the ADRS per-visit rows
ASSESSMENT_COLUMNS = ("key", "days", "overall_response", "clinical_progression")
RESPONSE_OUTPUT = (
    RESPONSE,
    "best_response",
    "days_to_response",
    "days_to_confirmation",
    "assessed",
    "n_assessments",
)


@dataclass(frozen=True, slots=True)
class ResponseRule:
    """How a response is derived.

    Parameters
    ----------
    confirmed : bool, default=True
        Require confirmation by a second CR/PR assessment ``confirmation_days`` later.
    confirmation_days : int, default=28
        Minimum days between a response and its confirmation (RECIST 1.1: 4 weeks).
    by : float, optional
        Window: the response must be dated at most ``by`` (in ``unit``) after index.
    unit : {"days", "weeks", "months", "years"}, default="weeks"
    """

    confirmed: bool = True
    confirmation_days: int = CONFIRMATION_DAYS
    by: float | None = None
    unit: str = "weeks"

    def __post_init__(self) -> None:
        if not isinstance(self.confirmed, bool):
            raise ConnectorError(f"response confirmed must be true/false, got {self.confirmed!r}")
        if not isinstance(self.confirmation_days, int) or self.confirmation_days < 1:
            raise ConnectorError(
                f"response confirmation_days must be an integer >= 1, got "
                f"{self.confirmation_days!r}"
            )
        if self.unit not in cn.DAYS_PER_UNIT:
            raise ConnectorError(
                f"response unit must be one of {list(cn.DAYS_PER_UNIT)}, got {self.unit!r}"
            )
        if self.by is not None and not (
            isinstance(self.by, int | float) and np.isfinite(self.by) and self.by > 0
        ):
            raise ConnectorError(f"response window by must be a number > 0, got {self.by!r}")

    @property
    def window_days(self) -> float:
        """The window in days (inf without one)."""
        return np.inf if self.by is None else float(cn.to_days(self.unit, self.by))

    def describe(self) -> str:
        """One sentence for methods text and results.json."""
        conf = (
            f"confirmed by a CR/PR assessment >= {self.confirmation_days} days later"
            if self.confirmed
            else "unconfirmed"
        )
        window = "" if self.by is None else f", response within {self.by:g} {self.unit}"
        return f"best overall response CR or PR (RECIST 1.1) after index, {conf}{window}"


def assessments_select(t: Mapping[str, sa.Table], idx: FromClause) -> sa.Select:
    """Tumour assessments after index of the index lines in ``idx`` (patient_id, line_id,
    index_date), as `ASSESSMENT_COLUMNS` (``key`` = line_id, ``days`` from index).

    Reads ``tumour_assessments`` only (an outcome table: endpoint stage).
    """
    a = t["tumour_assessments"]
    return (
        sa.select(
            idx.c.line_id.label("key"),
            days_between(idx.c.index_date, a.c.assessment_date).label("days"),
            a.c.overall_response.label("overall_response"),
            a.c.clinical_progression.label("clinical_progression"),
        )
        .select_from(
            idx.join(
                a,
                sa.and_(
                    a.c.patient_id == idx.c.patient_id,
                    a.c.assessment_date > idx.c.index_date,
                ),
            )
        )
        .order_by(idx.c.line_id, a.c.assessment_date)
    )


def _one_patient(days: np.ndarray, resp: list, prog: np.ndarray, rule: ResponseRule) -> tuple:
    order = np.argsort(days, kind="stable")
    days, prog = days[order], prog[order]
    resp = [resp[i] for i in order]
    stop = next(
        (
            i
            for i, (r, p) in enumerate(zip(resp, prog, strict=True))
            if r == PROGRESSION_RESPONSE or p
        ),
        len(resp),
    )
    window = rule.window_days
    best = None
    for i in range(stop):
        if resp[i] not in RESPONDER_CODES or days[i] > window:
            continue
        if not rule.confirmed:
            kind, conf_day = resp[i], np.nan
        else:
            later = [
                j
                for j in range(i + 1, stop)
                if resp[j] in RESPONDER_CODES and days[j] - days[i] >= rule.confirmation_days
            ]
            if not later:
                continue
            cr = resp[i] == "CR" and any(resp[j] == "CR" for j in later)
            kind = "CR" if cr else "PR"
            conf_day = days[later[0]] if not cr else days[next(j for j in later if resp[j] == "CR")]
        if best is None or (kind == "CR" and best[0] == "PR"):
            best = (kind, days[i], conf_day)
        if kind == "CR":
            break
    in_window = [i for i in range(stop) if days[i] <= window]
    if best is not None:
        return 1, best[0], float(best[1]), float(best[2]), True, len(resp)
    if any(resp[i] in ("SD", *RESPONDER_CODES) for i in in_window):
        bor = "SD"
    elif stop < len(resp) and days[stop] <= window:
        bor = "PD"
    else:
        bor = "NE"
    return 0, bor, np.nan, np.nan, True, len(resp)


def derive_response(
    assessments: pd.DataFrame, keys: pd.Index | list, rule: ResponseRule | None = None
) -> pd.DataFrame:
    """Best overall response and the responder flag per key (index line or subject).

    Parameters
    ----------
    assessments : DataFrame
        `ASSESSMENT_COLUMNS`: ``key``, ``days`` (from index; rows with days <= 0 are
        baseline and ignored), ``overall_response`` (CR/PR/SD/PD/NE), ``clinical_progression``
        (bool, missing = False).
    keys : sequence
        Every key to report, in order (keys without assessments get ``assessed = False``).
    rule : ResponseRule, optional

    Returns
    -------
    DataFrame indexed by key with `RESPONSE_OUTPUT` columns (days from index); ``attrs``
    ``n_undated`` and ``n_uncoded`` count the assessment rows ignored for a missing date or
    response code.
    """
    rule = rule or ResponseRule()
    missing = [c for c in ASSESSMENT_COLUMNS if c not in assessments.columns]
    if missing:
        raise ConnectorError(f"derive_response: assessments lack columns {missing}")
    a = assessments.copy()
    a["days"] = pd.to_numeric(a["days"], errors="coerce")
    undated = a["days"].isna()
    codes = a["overall_response"].astype("string").str.strip().str.upper()
    uncoded = codes.isna() | (codes == "")
    bad = ~uncoded & ~codes.isin(RESPONSE_CODES)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ConnectorError(
            f"assessment of key {a['key'].iloc[i]!r}: overall response {codes.iloc[i]!r} is not "
            f"one of {list(RESPONSE_CODES)}"
        )
    a["overall_response"] = codes
    prog = a["clinical_progression"].astype("boolean").fillna(False).astype(bool)
    a["clinical_progression"] = prog
    use = ~undated & (a["days"] > 0) & (~uncoded | prog)
    a = a.loc[use]
    rows = {}
    for key, g in a.groupby("key", sort=False):
        rows[key] = _one_patient(
            g["days"].to_numpy(float),
            g["overall_response"].tolist(),
            g["clinical_progression"].to_numpy(bool),
            rule,
        )
    empty = (0, "NE", np.nan, np.nan, False, 0)
    out = pd.DataFrame(
        [rows.get(k, empty) for k in keys],
        columns=list(RESPONSE_OUTPUT),
        index=pd.Index(list(keys), name="key"),
    )
    out[RESPONSE] = out[RESPONSE].astype("int64")
    out["assessed"] = out["assessed"].astype(bool)
    out["n_assessments"] = out["n_assessments"].astype("int64")
    out.attrs.update(
        n_undated=int(undated.sum()),
        n_uncoded=int((uncoded & ~undated).sum()),
        rule=rule.describe(),
    )
    return out
