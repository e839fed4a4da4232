"""Attrition: who was excluded, at which step, and why (nothing is dropped silently).

The table has one row per step, in order:

- the starting population (``"registry patients"``, or the rows of a flat file),
- for a registry: ``"with an index line after <regimen>"``,
- for each criterion, two rows: the rows for which it is False (reason ``"fails criterion"``)
  and those for which it is unknown because of missing data (reason ``"missing <columns>"``),
- ``"final"``.

``n_remaining`` is the count after the step, ``n_excluded`` the count removed by it; each
``n_remaining`` equals the previous one minus ``n_excluded``. Criteria are applied in the
order given; a row is counted at the first criterion that excludes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from connectors import columns as cn
from connectors.eligibility import FRAME_COLUMN_KINDS, Criterion, Kind, parse_criteria

ATTRITION_COLUMNS = ("step", "criterion", "n_remaining", "n_excluded", "reason")
FAILS_REASON = "fails criterion"
FINAL_STEP = "final"


@dataclass(frozen=True, slots=True)
class Attrition:
    """The attrition table of one extraction.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``step`` (int, 1-based order), ``criterion`` (what the step applies: a
        population label or the criterion text), ``n_remaining``, ``n_excluded`` (int),
        ``reason`` (why the excluded were excluded; empty for population rows).
    unit : str
        What is counted: ``"patients"`` or ``"patient-lines"`` (all-lines selection), or
        ``"rows"`` for a flat file.
    """

    table: pd.DataFrame
    unit: str = "patients"

    @property
    def n_start(self) -> int:
        """Count before any exclusion."""
        return int(self.table["n_remaining"].iloc[0] + self.table["n_excluded"].iloc[0])

    @property
    def n_final(self) -> int:
        """Count after every step."""
        return int(self.table["n_remaining"].iloc[-1])

    def summary(self) -> pd.DataFrame:
        """The table (a copy)."""
        return self.table.copy()

    def to_dict(self) -> dict:
        """JSON-ready: unit and the rows as records."""
        return {"unit": self.unit, "steps": self.table.to_dict(orient="records")}

    def to_csv(self, path: str | Path) -> None:
        """Write ``attrition.csv`` (the columns of `ATTRITION_COLUMNS`)."""
        self.table.to_csv(path, index=False)

    def __repr__(self) -> str:
        return f"Attrition(start={self.n_start}, final={self.n_final}, unit={self.unit!r})"


class AttritionBuilder:
    """Accumulates attrition rows, checking that counts chain (internal helper)."""

    def __init__(self, label: str, n_start: int, *, unit: str = "patients"):
        self._rows: list[dict] = []
        self._n = int(n_start)
        self._unit = unit
        self.add(label, 0, "")

    @property
    def n_remaining(self) -> int:
        return self._n

    def add(self, criterion: str, n_excluded: int, reason: str) -> None:
        n_excluded = int(n_excluded)
        if n_excluded < 0 or n_excluded > self._n:
            raise ValueError(f"attrition: cannot exclude {n_excluded} of {self._n} ({criterion})")
        self._n -= n_excluded
        self._rows.append(
            {
                "step": len(self._rows) + 1,
                "criterion": criterion,
                "n_remaining": self._n,
                "n_excluded": n_excluded,
                "reason": reason,
            }
        )

    def recount(self, criterion: str, n_remaining: int, reason: str, *, unit: str) -> None:
        """Change what is counted (patients -> patient-lines): a row with the new count."""
        self._unit = unit
        self._n = int(n_remaining)
        self._rows.append({"step": len(self._rows) + 1, "criterion": criterion,
                           "n_remaining": self._n, "n_excluded": 0, "reason": reason})

    def add_population(self, label: str, n_remaining: int, reason: str) -> None:
        """A step defined by the population left (e.g. patients with an index line)."""
        self.add(label, self._n - int(n_remaining), reason)

    def add_criterion(self, crit: Criterion, n_fail: int, n_missing: int) -> None:
        self.add(crit.text, n_fail, FAILS_REASON)
        self.add(crit.text, n_missing, crit.missing_reason)

    def build(self) -> Attrition:
        self.add(FINAL_STEP, 0, "")
        table = pd.DataFrame(self._rows, columns=list(ATTRITION_COLUMNS))
        table = table.astype({"step": "int64", "n_remaining": "int64", "n_excluded": "int64"})
        return Attrition(table=table, unit=self._unit)


def default_known_columns(frame: pd.DataFrame) -> dict[str, Kind]:
    """Columns a criterion may read in ``frame``: all but the outcome columns."""
    return {
        c: FRAME_COLUMN_KINDS.get(c, "any")
        for c in frame.columns
        if c not in cn.OUTCOME_COLUMNS
    }


def apply_criteria_to_frame(
    frame: pd.DataFrame,
    criteria: Iterable[str | Criterion],
    *,
    known_columns: Iterable[str] | Mapping[str, Kind] | None = None,
    start_label: str = "input rows",
    unit: str = "rows",
) -> tuple[pd.DataFrame, Attrition]:
    """Apply eligibility criteria to a DataFrame (the flat-file path).

    Same semantics as the SQL path: criteria in order, three-valued logic, rows whose
    criterion is unknown because of missing data counted apart (``missing <columns>``).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per patient (or patient-line).
    criteria : iterable of str or Criterion
    known_columns : iterable of str or mapping of str -> kind, optional
        Columns criteria may read; default every column of ``frame`` except the outcome
        columns (kinds from `connectors.eligibility.FRAME_COLUMN_KINDS` where known).
    start_label : str, default="input rows"
        Label of the first attrition row.

    Returns
    -------
    (pandas.DataFrame, Attrition)
        The rows meeting every criterion (index preserved) and the attrition table.
    """
    known = default_known_columns(frame) if known_columns is None else known_columns
    parsed = parse_criteria(list(criteria), known)
    builder = AttritionBuilder(start_label, len(frame), unit=unit)
    keep = pd.Series(True, index=frame.index)
    for crit in parsed:
        result = crit.evaluate(frame)
        fails = keep & result.eq(False).fillna(False).astype(bool)
        unknown = keep & result.isna()
        builder.add_criterion(crit, int(fails.sum()), int(unknown.sum()))
        keep &= result.fillna(False).astype(bool)
    return frame.loc[keep.to_numpy()], builder.build()


def emptying_step(attrition: Attrition) -> dict | None:
    """The attrition row after which nobody is left (``None`` when someone is).

    Returns the first row whose step excluded the last remaining patients (a criterion, or a
    population step such as "with an index line after ..."), as a dict of the table's columns.
    """
    table = attrition.table
    if attrition.n_final > 0:
        return None
    hit = table[(table["n_remaining"] == 0) & (table["n_excluded"] > 0)]
    return None if hit.empty else hit.iloc[0].to_dict()


def describe_value_counts(counts: pd.Series, *, top: int = 12) -> str:
    """``'epithelioid' 300, 'biphasic' 80, missing 12``: largest first, at most ``top`` values;
    a numeric column with more distinct values shows its range instead."""
    na = pd.isna(counts.index.to_series()).to_numpy()
    missing = int(counts[na].sum())
    present = counts[~na].sort_values(ascending=False, kind="stable")
    numeric = len(present) > 0 and all(
        isinstance(k, int | float) and not isinstance(k, bool) for k in present.index)
    if numeric and len(present) > top:
        values = [float(k) for k in present.index]
        parts = [f"{int(present.sum())} values from {min(values):g} to {max(values):g} "
                 f"({len(present)} distinct)"]
    else:
        parts = [f"{k!r} {int(n)}" for k, n in present.head(top).items()]
        if len(present) > top:
            parts.append(f"... {len(present) - top} more distinct values")
    if missing:
        parts.append(f"missing {missing}")
    return ", ".join(parts) if parts else "no rows"
