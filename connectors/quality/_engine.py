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
    _cache: dict[Any, Any] = field(default_factory=dict)

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
        """``(from_clause, table, centre_col, patient_col)`` with the patient's centre joined.

        The same objects for every check of a table (cached), so that `batch_key` puts the
        checks that read the same rows into one query.
        """
        table = self.table(name, *columns)
        cached = self._cache.get(("with_centre", name))
        if cached is not None:
            return cached
        if name == "centres":
            out = table, table, table.c.centre_id, None
        elif name == "patients":
            self.table("patients", "patient_id", "centre_id")
            out = table, table, table.c.centre_id, table.c.patient_id
        else:
            self.table(name, "patient_id")
            patients = self.table("patients", "patient_id", "centre_id").alias("centre_of_row")
            joined = table.outerjoin(patients, table.c.patient_id == patients.c.patient_id)
            out = joined, table, patients.c.centre_id, table.c.patient_id
        self._cache[("with_centre", name)] = out
        return out


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


def batch_key(rc: RowCheck) -> tuple[int, int, int]:
    """Checks with equal keys read the same rows (same FROM object, centre and patient
    columns): `count_rows_batch` and `failing_patients_batch` compute them in one scan."""
    return id(rc.source), id(rc.centre), id(rc.patient)


def _batch_columns(checks: Sequence[RowCheck]) -> list[sa.Label]:
    """Per check ``n_i`` (rows meeting its ``where``) and ``f_i`` (those that fail).

    ``CASE WHEN where AND fails`` counts exactly the rows ``WHERE where`` and ``fails`` count
    one check at a time: a NULL condition is "not counted" in both.
    """
    cols: list[sa.Label] = []
    for i, rc in enumerate(checks):
        if rc.where is None:
            n = sa.func.count()
            fails = rc.fails
        else:
            n = sa.func.sum(sa.case((rc.where, 1), else_=0))
            fails = sa.and_(rc.where, rc.fails)
        cols += [n.label(f"n_{i}"), sa.func.sum(sa.case((fails, 1), else_=0)).label(f"f_{i}")]
    return cols


def count_rows_batch(conn: sa.Connection, checks: Sequence[RowCheck], centre: str | None,
                     extra: Sequence[sa.ColumnElement] = ()) -> list[Counts]:
    """`count_rows` of several checks with one `batch_key`, in one grouped scan.

    Returns what `count_rows` returns for each check, in order (a centre where no row meets a
    check's ``where`` is left out of that check's ``per_centre``, as its own query would).
    """
    if len(checks) == 1:
        return [count_rows(conn, checks[0], centre, extra)]
    first = checks[0]
    if len({batch_key(rc) for rc in checks}) != 1:
        raise ValueError("count_rows_batch: the checks do not share one source")
    centre_col = first.centre if first.centre is not None else _NO_CENTRE
    conditions = [c for c in extra if c is not None]
    if centre is not None:
        if first.centre is None:
            raise NotApplicable("the check has no centre to filter on")
        conditions.append(first.centre == centre)
    stmt = (
        sa.select(centre_col.label("centre"), *_batch_columns(checks))
        .select_from(first.source).where(*conditions).group_by(centre_col)
    )
    grouped = list(conn.execute(stmt))
    out = []
    for i in range(len(checks)):
        per_centre = sorted(
            ((row.centre, _int(row[1 + 2 * i]), _int(row[2 + 2 * i])) for row in grouped
             if _int(row[1 + 2 * i]) > 0),
            key=lambda r: (r[0] is None, str(r[0])),
        )
        out.append(Counts(sum(r[1] for r in per_centre), sum(r[2] for r in per_centre),
                          tuple(per_centre)))
    return out


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
        return failing_patients_batch(conn, [rc], patient_ids)[0]
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


def failing_patients_batch(conn: sa.Connection, checks: Sequence[RowCheck],
                           patient_ids: Sequence[str]) -> list[tuple[int, int, set[str]]]:
    """`failing_patients` of several checks with one `batch_key`: one scan (large pools) or
    one query per IN-list chunk for all of them; the same results, in order."""
    if any(rc.patient is None for rc in checks):
        raise NotApplicable("the check is not keyed by patient")
    if len(checks) == 1 and len(patient_ids) <= SCAN_ABOVE:
        return [failing_patients(conn, checks[0], patient_ids)]
    if len({batch_key(rc) for rc in checks}) != 1:
        raise ValueError("failing_patients_batch: the checks do not share one source")
    if len(patient_ids) > SCAN_ABOVE:
        in_pool = pool_condition(conn.dialect.name, checks[0].patient, patient_ids)
        if in_pool is not None:
            return _failing_patients_in_database(conn, checks, in_pool)
        return _failing_patients_by_scan(conn, checks, patient_ids)
    totals = [[0, 0, set()] for _ in checks]
    patient = checks[0].patient
    for start in range(0, len(patient_ids), ID_CHUNK):
        inside = patient.in_(list(patient_ids[start:start + ID_CHUNK]))
        for total, rc, counts in zip(totals, checks, count_rows_batch(conn, checks, None,
                                                                      [inside]), strict=True):
            total[0] += counts.n_checked
            total[1] += counts.n_failed
            if counts.n_failed:
                stmt = (
                    sa.select(rc.patient).distinct().select_from(rc.source)
                    .where(*_restrict(rc, None, [inside]), rc.fails)
                )
                total[2].update(str(v) for v in conn.execute(stmt).scalars())
    return [(n, f, failing) for n, f, failing in totals]


def pool_condition(dialect: str, patient: sa.ColumnElement,
                   patient_ids: Sequence[str]) -> sa.ColumnElement | None:
    """``patient`` (as text) is one of ``patient_ids``, the list sent as ONE parameter
    (`connectors.readonly.in_one_parameter`): the database restricts the checked rows to the
    pool. ``None`` for other dialects (MariaDB): the caller scans instead. Ids compare as
    text, as the scan compares them (``CAST(patient_id AS VARCHAR)`` against ``str(id)``).
    """
    from connectors.readonly import in_one_parameter

    ids = [v if isinstance(v, str) else str(v) for v in patient_ids]  # repeats are harmless
    return in_one_parameter(dialect, as_text(patient), ids, name="pool_ids")


def _failing_patients_in_database(conn: sa.Connection, checks: Sequence[RowCheck],
                                  in_pool: sa.ColumnElement) -> list[tuple[int, int, set[str]]]:
    """`failing_patients` of a large pool, restricted to the pool by the database.

    One query for every check's totals (one row), and, only when some check fails, one
    query for the failing pool patients (``GROUP BY patient HAVING`` a failure): nothing per
    patient crosses the wire otherwise. Same counts and sets as the scan: a row counts when
    its patient is in the pool (a NULL patient never is).
    """
    columns = _batch_columns(checks)
    totals = conn.execute(
        sa.select(*columns).select_from(checks[0].source).where(in_pool)).one()
    out = [[_int(totals[2 * i]), _int(totals[2 * i + 1]), set()] for i in range(len(checks))]
    failing = [i for i, row in enumerate(out) if row[1]]
    if failing:
        patient = checks[0].patient
        fails = [columns[2 * i + 1] for i in failing]
        stmt = (
            sa.select(as_text(patient).label("p"), *(c.element for c in fails))
            .select_from(checks[0].source).where(in_pool).group_by(patient)
            .having(sa.or_(*(c.element > 0 for c in fails)))
        )
        for row in conn.execute(stmt):
            for j, i in enumerate(failing):
                if _int(row[1 + j]) > 0:
                    out[i][2].add(str(row[0]))
    return [(n, f, found) for n, f, found in out]


def _failing_patients_by_scan(conn: sa.Connection, checks: Sequence[RowCheck],
                              patient_ids: Sequence[str]) -> list[tuple[int, int, set[str]]]:
    """`failing_patients` for a large pool: one pass of per-patient counts, kept for the pool
    (all ``checks``, which share one `batch_key`, in the same pass).

    Memory is bounded by the pool's id set and one fetch of grouped rows, not the registry.
    """
    wanted = pd.Index(pd.unique(pd.Series(list(patient_ids), dtype=object).astype(str)))
    first = checks[0]
    # one check: its ``where`` filters the scan (as before batching); several: CASE columns
    where = _restrict(first, None) if len(checks) == 1 else []
    columns = ([sa.func.count().label("n_0"),
                sa.func.sum(sa.case((first.fails, 1), else_=0)).label("f_0")]
               if len(checks) == 1 else _batch_columns(checks))
    stmt = (
        sa.select(as_text(first.patient).label("p"), *columns)
        .select_from(first.source).where(*where).group_by(first.patient)
    )
    names = ["p"] + [c.name for c in columns]
    totals = [[0, 0, set()] for _ in checks]
    result = conn.execution_options(stream_results=True).execute(stmt)
    while rows := result.fetchmany(SCAN_CHUNK_ROWS):
        chunk = pd.DataFrame(rows, columns=names)
        chunk = chunk[chunk["p"].notna() & chunk["p"].isin(wanted)]
        for i, total in enumerate(totals):
            f = pd.to_numeric(chunk[f"f_{i}"]).fillna(0).astype("int64")
            total[0] += int(pd.to_numeric(chunk[f"n_{i}"]).fillna(0).sum())
            total[1] += int(f.sum())
            total[2].update(chunk.loc[f.to_numpy() > 0, "p"].astype(str))
    return [(n, f, failing) for n, f, failing in totals]


Builder = Callable[[Context, CheckSpec], "RowCheck | Structural"]
