"""Conformance checks: the extract has the schema's tables, columns, types, keys and codes."""

from __future__ import annotations

import sqlalchemy as sa

from connectors import schema
from connectors.quality._engine import Context, NotApplicable, RowCheck, Structural
from connectors.quality.catalogue import CheckSpec, QualityConfigError

_PRIMARY_KEYS = {
    name: next(c.name for c in cols if c.primary_key)
    for name, cols in schema.LOGICAL_SCHEMA.items()
}
_DECLARED = {  # schema.py may declare a type class or an instance: normalise to instances
    name: {c.name: sa.types.to_instance(c.type_) for c in cols}
    for name, cols in schema.LOGICAL_SCHEMA.items()
}


def required_tables(ctx: Context, spec: CheckSpec) -> Structural:
    missing = [
        (name, f"physical table {ctx.source.tables[name].name!r} not found")
        for name in schema.REQUIRED_TABLES  # an optional table (lab_results) may be absent
        if name not in ctx.present
    ]
    return Structural(len(schema.REQUIRED_TABLES), tuple(missing))


def required_columns(ctx: Context, spec: CheckSpec) -> Structural:
    checked, missing = 0, []
    for name, columns in _DECLARED.items():
        if name not in ctx.present:
            continue
        for column in columns:
            checked += 1
            if column not in ctx.present[name]:
                physical = ctx.source.tables[name].c[column].name
                missing.append((f"{name}.{column}", f"physical column {physical!r} not found"))
    if not checked:
        raise NotApplicable("no registry table found")
    return Structural(checked, tuple(missing))


def _compatible(declared: sa.types.TypeEngine, found: sa.types.TypeEngine) -> bool:
    if isinstance(declared, sa.Date):
        return isinstance(found, (sa.Date, sa.DateTime))
    if isinstance(declared, sa.Boolean):
        return isinstance(found, (sa.Boolean, sa.Integer))
    if isinstance(declared, sa.Integer):
        return isinstance(found, sa.Integer) or (
            isinstance(found, sa.Numeric) and getattr(found, "scale", None) == 0
        )
    if isinstance(declared, sa.Float):
        return isinstance(found, (sa.Numeric, sa.Float, sa.Integer))
    if isinstance(declared, sa.String):
        return isinstance(found, (sa.String, sa.Enum))
    return True


def _sqlite_unparseable(col: sa.Column, declared: sa.types.TypeEngine) -> sa.ColumnElement:
    # SQLite stores any value in any column: test each value's storage class
    kind = sa.func.typeof(col)
    if isinstance(declared, sa.Date):
        return sa.and_(col.is_not(None), sa.or_(kind != "text", sa.func.date(col).is_(None)))
    if isinstance(declared, sa.Boolean):
        raw = sa.type_coerce(col, sa.Integer)
        return sa.and_(col.is_not(None), sa.or_(kind != "integer", raw.not_in([0, 1])))
    if isinstance(declared, sa.Integer):
        return sa.and_(col.is_not(None), kind != "integer")
    if isinstance(declared, sa.Float):
        return sa.and_(col.is_not(None), kind.not_in(["integer", "real"]))
    return sa.false()


def types(ctx: Context, spec: CheckSpec) -> RowCheck | Structural:
    name = spec.table
    table = ctx.table(name)
    present = [c for c in _DECLARED[name] if c in ctx.present[name]]
    if ctx.dialect != "sqlite":
        # typed databases enforce the column type: compare the reflected types instead
        bad = tuple(
            (column, f"declared {_DECLARED[name][column]!r}, found {ctx.present[name][column]!r}")
            for column in present
            if not _compatible(_DECLARED[name][column], ctx.present[name][column])
        )
        with ctx.source.connect() as conn:
            n_rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        return Structural(int(n_rows), bad, n_failed=int(n_rows) if bad else 0, table=name)
    source, table, centre, patient = ctx.with_centre(name)
    tests = {c: _sqlite_unparseable(table.c[c], _DECLARED[name][c]) for c in present}
    tests = {c: t for c, t in tests.items() if not isinstance(t, sa.sql.elements.False_)}
    if not tests:
        raise NotApplicable("only text columns")
    return RowCheck(
        name, source, table.c[_PRIMARY_KEYS[name]], sa.or_(*tests.values()), centre, patient,
        {c: table.c[c] for c in tests},
    )


def unique_key(ctx: Context, spec: CheckSpec) -> RowCheck:
    name = spec.table
    key_name = _PRIMARY_KEYS[name]
    source, table, centre, patient = ctx.with_centre(name, key_name)
    key = table.c[key_name]
    dup = (
        sa.select(key.label("k")).group_by(key).having(sa.func.count() > 1)
        .subquery("duplicate_keys")
    )
    source = source.outerjoin(dup, key == dup.c.k)
    return RowCheck(name, source, key, dup.c.k.is_not(None), centre, patient, {key_name: key})


def foreign_key(ctx: Context, spec: CheckSpec) -> RowCheck:
    column = spec.parameters["column"]
    parent_name = spec.parameters["parent"]
    parent_key = _PRIMARY_KEYS[parent_name]
    source, table, centre, patient = ctx.with_centre(spec.table, column)
    parent = ctx.table(parent_name, parent_key).alias("parent")
    source = source.outerjoin(parent, table.c[column] == parent.c[parent_key])
    fails = sa.and_(table.c[column].is_not(None), parent.c[parent_key].is_(None))
    key = table.c[_PRIMARY_KEYS[spec.table]]
    return RowCheck(spec.table, source, key, fails, centre, patient, {column: table.c[column]})


def domain(ctx: Context, spec: CheckSpec) -> RowCheck:
    column = spec.parameters["column"]
    codes_name = spec.parameters["codes"]
    codes = getattr(schema, codes_name, None)
    if not isinstance(codes, tuple):
        raise QualityConfigError(f"check {spec.id!r}: unknown code list {codes_name!r}")
    source, table, centre, patient = ctx.with_centre(spec.table, column)
    col = table.c[column]
    return RowCheck(
        spec.table, source, table.c[_PRIMARY_KEYS[spec.table]],
        sa.and_(col.is_not(None), col.not_in(list(codes))), centre, patient, {column: col},
    )


def range_(ctx: Context, spec: CheckSpec) -> RowCheck:
    column = spec.parameters["column"]
    low, high = spec.parameters["min"], spec.parameters["max"]
    source, table, centre, patient = ctx.with_centre(spec.table, column)
    col = table.c[column]
    return RowCheck(
        spec.table, source, table.c[_PRIMARY_KEYS[spec.table]],
        sa.or_(col < low, col > high), centre, patient, {column: col},
    )


def line_numbers(ctx: Context, spec: CheckSpec) -> RowCheck:
    lines = ctx.table("treatment_lines", "patient_id", "line_number")
    number = lines.c.line_number
    per_patient = (
        sa.select(
            lines.c.patient_id.label("patient_id"),
            sa.func.min(number).label("first"),
            sa.func.max(number).label("last"),
            sa.func.count().label("n"),
            sa.func.count(sa.distinct(number)).label("n_distinct"),
            sa.func.count(number).label("n_known"),
        )
        .group_by(lines.c.patient_id)
        .subquery("line_numbers")
    )
    patients = ctx.table("patients", "patient_id", "centre_id").alias("centre_of_row")
    source = per_patient.outerjoin(patients, per_patient.c.patient_id == patients.c.patient_id)
    pp = per_patient.c
    fails = sa.or_(
        pp.first != 1, pp.last != pp.n, pp.n_distinct != pp.n, pp.n_known != pp.n
    )
    return RowCheck(
        "treatment_lines", source, pp.patient_id, fails, patients.c.centre_id, pp.patient_id,
        {"first": pp.first, "last": pp.last, "n_lines": pp.n},
    )


BUILDERS = {
    "required_tables": required_tables,
    "required_columns": required_columns,
    "types": types,
    "unique_key": unique_key,
    "foreign_key": foreign_key,
    "domain": domain,
    "range": range_,
    "line_numbers": line_numbers,
}
