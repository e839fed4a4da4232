"""Running checks in the database: the row-check form and its two queries.

A row check is a FROM clause (the checked rows, each joined to its patient's centre), a key,
a boolean "fails" expression and the offending values. It runs as two queries, both computed
by the database: the counts grouped by centre (``count(*)`` and ``sum(case when fails)``),
and the failing rows ordered by key with ``LIMIT cap``. Memory is bounded by the number of
centres plus the cap, whatever the registry size. A NULL operand makes a comparison unknown,
which counts as "not failing": missing values are the completeness checks' business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from connectors.quality._source import Source
from connectors.quality.catalogue import CheckSpec

ID_CHUNK = 5000  # bound parameters per IN list (SQLite >= 3.32 allows 32766)
# above this many pool patients, one grouped scan of the check beats re-running its source
# (often a window or grouped subquery over the whole table) once per IN-list chunk
SCAN_ABOVE = 2 * ID_CHUNK
SCAN_CHUNK_ROWS = 100_000  # grouped rows per fetch while scanning


class NotApplicable(Exception):  # noqa: N818 (a status, not an error)
    """The check cannot run on this registry (a table or column is absent)."""


@dataclass(frozen=True, slots=True)
class RowCheck:
    """Checked rows, failure condition and what to report about a failing row."""

    table: str
    source: sa.FromClause
    key: sa.ColumnElement
    fails: sa.ColumnElement
    centre: sa.ColumnElement | None = None
    patient: sa.ColumnElement | None = None
    values: Mapping[str, sa.ColumnElement] = field(default_factory=dict)
    where: sa.ColumnElement | None = None  # restricts the checked population


@dataclass(frozen=True, slots=True)
class Structural:
    """A check computed from the schema rather than from rows (n_checked, failures)."""

    n_checked: int
    failures: tuple[tuple[str, str], ...]  # (key, offending values)
    n_failed: int | None = None  # defaults to len(failures)
    table: str = "*"


@dataclass(frozen=True, slots=True)
class Counts:
    n_checked: int
    n_failed: int
    per_centre: tuple[tuple[str | None, int, int], ...]  # (centre, n_checked, n_failed)


@dataclass
class Context:
    """What a check builder may use: the source, present columns, centre and dates."""

    source: Source
    present: Mapping[str, Mapping[str, sa.types.TypeEngine]]  # logical table -> col -> type
    centre: str | None
    cutoff_date: dt.date
    today: dt.date
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def dialect(self) -> str:
        return self.source.dialect

    def table(self, name: str, *columns: str) -> sa.Table:
        """The logical table, after checking it and ``columns`` exist (else NotApplicable)."""
        if name not in self.present:
            raise NotApplicable(f"table {name} is absent")
        absent = [c for c in columns if c not in self.present[name]]
        if absent:
            raise NotApplicable(f"{name} lacks column(s) {', '.join(absent)}")
        return self.source.tables[name]

    def days_between(self, start, end) -> sa.ColumnElement:
        return self.source.days_between(start, end)

    def with_centre(self, name: str, *columns: str):
        """``(from_clause, table, centre_col, patient_col)`` with the patient's centre joined."""
        table = self.table(name, *columns)
        if name == "centres":
            return table, table, table.c.centre_id, None
        if name == "patients":
            self.table("patients", "patient_id", "centre_id")
            return table, table, table.c.centre_id, table.c.patient_id
        self.table(name, "patient_id")
        patients = self.table("patients", "patient_id", "centre_id").alias("centre_of_row")
        joined = table.outerjoin(patients, table.c.patient_id == patients.c.patient_id)
        return joined, table, patients.c.centre_id, table.c.patient_id


def as_text(expr: sa.ColumnElement) -> sa.ColumnElement:
    return sa.cast(expr, sa.String(64))


_NO_CENTRE = sa.cast(sa.null(), sa.String(16))


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _restrict(rc: RowCheck, centre: str | None, extra: Iterable[sa.ColumnElement] = ()):
    conditions = [c for c in (rc.where, *extra) if c is not None]
    if centre is not None:
        if rc.centre is None:
            raise NotApplicable("the check has no centre to filter on")
        conditions.append(rc.centre == centre)
    return conditions


def count_rows(conn: sa.Connection, rc: RowCheck, centre: str | None,
               extra: Sequence[sa.ColumnElement] = ()) -> Counts:
    failed = sa.func.sum(sa.case((rc.fails, 1), else_=0))
    centre_col = rc.centre if rc.centre is not None else _NO_CENTRE
    stmt = (
        sa.select(centre_col.label("centre"), sa.func.count().label("n"), failed.label("f"))
        .select_from(rc.source)
        .where(*_restrict(rc, centre, extra))
        .group_by(centre_col)
    )
    per_centre = sorted(
        ((row.centre, _int(row.n), _int(row.f)) for row in conn.execute(stmt)),
        key=lambda r: (r[0] is None, str(r[0])),
    )
    return Counts(
        sum(r[1] for r in per_centre), sum(r[2] for r in per_centre), tuple(per_centre)
    )


def failing_rows(conn: sa.Connection, rc: RowCheck, centre: str | None, cap: int):
    """Up to ``cap`` failing rows as (key, centre, values-string), ordered by key."""
    if cap <= 0:
        return []
    centre_col = rc.centre if rc.centre is not None else _NO_CENTRE
    value_cols = [as_text(expr).label(f"v_{i}") for i, expr in enumerate(rc.values.values())]
    stmt = (
        sa.select(as_text(rc.key).label("key"), as_text(centre_col).label("centre"), *value_cols)
        .select_from(rc.source)
        .where(*_restrict(rc, centre), rc.fails)
        .order_by(rc.key)
        .limit(cap)
    )
    names = list(rc.values)
    out = []
    for row in conn.execute(stmt):
        values = "; ".join(
            f"{name}={'' if row[i + 2] is None else row[i + 2]}" for i, name in enumerate(names)
        )
        out.append((row.key, row.centre, values))
    return out


def failing_patients(conn: sa.Connection, rc: RowCheck, patient_ids: Sequence[str]):
    """Counts and failing patient ids restricted to ``patient_ids`` (chunked IN lists)."""
    if rc.patient is None:
        raise NotApplicable("the check is not keyed by patient")
    if len(patient_ids) > SCAN_ABOVE:
        return _failing_patients_by_scan(conn, rc, patient_ids)
    n_checked = n_failed = 0
    failing: set[str] = set()
    for start in range(0, len(patient_ids), ID_CHUNK):
        chunk = list(patient_ids[start:start + ID_CHUNK])
        inside = rc.patient.in_(chunk)
        counts = count_rows(conn, rc, None, [inside])
        n_checked += counts.n_checked
        n_failed += counts.n_failed
        if counts.n_failed:
            stmt = (
                sa.select(rc.patient).distinct().select_from(rc.source)
                .where(*_restrict(rc, None, [inside]), rc.fails)
            )
            failing.update(str(v) for v in conn.execute(stmt).scalars())
    return n_checked, n_failed, failing


def _failing_patients_by_scan(conn: sa.Connection, rc: RowCheck, patient_ids: Sequence[str]):
    """`failing_patients` for a large pool: one pass of per-patient counts, kept for the pool.

    Memory is bounded by the pool's id set and one fetch of grouped rows, not the registry.
    """
    wanted = pd.Index(pd.unique(pd.Series(list(patient_ids), dtype=object).astype(str)))
    failed = sa.func.sum(sa.case((rc.fails, 1), else_=0))
    stmt = (
        sa.select(as_text(rc.patient).label("p"), sa.func.count().label("n"), failed.label("f"))
        .select_from(rc.source)
        .where(*_restrict(rc, None))
        .group_by(rc.patient)
    )
    n_checked = n_failed = 0
    failing: set[str] = set()
    result = conn.execution_options(stream_results=True).execute(stmt)
    while rows := result.fetchmany(SCAN_CHUNK_ROWS):
        chunk = pd.DataFrame(rows, columns=["p", "n", "f"])
        chunk = chunk[chunk["p"].notna() & chunk["p"].isin(wanted)]
        f = pd.to_numeric(chunk["f"]).fillna(0).astype("int64")
        n_checked += int(pd.to_numeric(chunk["n"]).sum())
        n_failed += int(f.sum())
        failing.update(chunk.loc[f.to_numpy() > 0, "p"].astype(str))
    return n_checked, n_failed, failing


Builder = Callable[[Context, CheckSpec], "RowCheck | Structural"]
