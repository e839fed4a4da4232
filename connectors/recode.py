"""The mapping compiled to SQL: logical views of the registry tables, and the code checks.

`logical_views` turns each physical table into a SELECT whose columns carry the logical names
and the schema's codes, types and units (CASE with bound parameters for codes, CAST for types,
a product for units, NULL for absent columns, the eligibility compiler for rules). The
derivations (`connectors.derivation`) read these views exactly as they read a registry in our
own shape: the database does the recoding, the registry stays unwritten.

`code_problems` counts, per recoded column, the rows whose source value has no schema code
(``values``) or does not cast (``type``): the connector stops on them (``unmapped: error``)
or reports them and reads NULL (``unmapped: missing``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, FromClause
from sqlalchemy.sql.functions import FunctionElement

from connectors.dateformat import date_format_parts, date_format_width
from connectors.eligibility import parse_criterion
from connectors.mapping import RegistryMapping, rule_kinds
from connectors.schema import DERIVED_FLAGS, LOGICAL_SCHEMA, ColumnRecode
from connectors.yamlfile import short

INTEGER_PATTERN = r"^\s*[+-]?[0-9]+(\.0*)?\s*$"
NUMBER_PATTERN = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
MAX_CODES_SHOWN = 5
MAX_DISTINCT_DATES = 200_000  # distinct text dates checked in Python; more: a SQL shape check


def _sql_cast(name: str, type_: sa.types.TypeEngine, doc: str,
              sql: Mapping[str | None, str]) -> type[FunctionElement]:
    """A one-argument SQL function class compiled per dialect.

    ``sql`` maps a dialect name (None: every other dialect) to the SQL with ``{x}`` standing
    for the compiled argument, e.g. ``{None: "CAST({x} AS DATE)", "sqlite": "{x}"}``.
    """
    cls = type(name, (FunctionElement,),
               {"type": type_, "name": name, "inherit_cache": True, "__doc__": doc})
    for dialect, template in sql.items():
        def _compile(element, compiler, _template=template, **kw):
            return _template.format(x=compiler.process(next(iter(element.clauses)), **kw))

        compiles(cls, *(() if dialect is None else (dialect,)))(_compile)
    return cls


as_date = _sql_cast(
    "as_date", sa.Date(),
    "An ISO ``YYYY-MM-DD`` text as a DATE (SQLite keeps ISO text: its dates are text).",
    {None: "CAST({x} AS DATE)", "sqlite": "{x}"})
as_number = _sql_cast(
    "as_number", sa.Float(), "A value as a double precision number.",
    {None: "CAST({x} AS DOUBLE PRECISION)", "sqlite": "CAST({x} AS REAL)",
     "mysql": "({x} + 0e0)", "mariadb": "({x} + 0e0)"})
as_text = _sql_cast(
    "as_text", sa.String(), "A value as text (integers without a decimal point).",
    {None: "CAST({x} AS VARCHAR)", "sqlite": "CAST({x} AS TEXT)",
     "mysql": "CAST({x} AS CHAR)", "mariadb": "CAST({x} AS CHAR)"})


def _normalised(col: ColumnElement) -> ColumnElement:
    """A source value as the mapping compares codes: text, trimmed, lower case."""
    return sa.func.lower(sa.func.trim(as_text(col)))


def _typed(value, type_: sa.types.TypeEngine):
    return sa.literal(value, type_) if value is not None else sa.null()


def recode_expr(col: ColumnElement | None, type_: sa.types.TypeEngine,
                rc: ColumnRecode | None) -> ColumnElement:
    """The SQL of one logical column read through its recoding (not for rules)."""
    if rc is None:
        return col
    if rc.absent:  # a typed NULL (PostgreSQL reads an untyped one as text); MySQL casts no bool
        return (sa.type_coerce(sa.null(), type_) if isinstance(type_, sa.Boolean)
                else sa.cast(sa.null(), type_))
    expr: ColumnElement = col
    if rc.values is not None:
        norm = _normalised(col)
        whens = [(norm == sa.literal(src, sa.String()), _typed(dst, type_))
                 for src, dst in rc.values]
        expr = sa.case(*whens, else_=sa.null()) if whens else sa.null()
        if isinstance(type_, sa.Integer):
            expr = sa.cast(expr, sa.Integer())
        elif isinstance(type_, sa.String):
            expr = sa.cast(expr, sa.String())
    elif rc.type in ("integer", "number"):
        pattern = INTEGER_PATTERN if rc.type == "integer" else NUMBER_PATTERN
        expr = as_number(_null_if_bad(col, pattern) if rc.unmapped == "missing" else col)
        if rc.type == "integer":
            expr = sa.cast(sa.func.round(expr), sa.Integer())
    elif rc.type == "text":  # keys of any type (a text key of an integer schema key stays text)
        return as_text(col)
    elif rc.type == "date":
        expr = _date_expr(col, rc)
    if rc.scale is not None:
        expr = as_number(expr) * sa.literal(float(rc.scale), sa.Float())
    return sa.type_coerce(expr, type_)


def _null_if_bad(col: ColumnElement, pattern: str) -> ColumnElement:
    return sa.case((as_text(col).regexp_match(pattern), col), else_=sa.null())


def _date_expr(col: ColumnElement, rc: ColumnRecode) -> ColumnElement:
    if rc.format is None:
        return as_date(col)
    parts = date_format_parts(rc.format)
    text = sa.func.trim(as_text(col))

    def piece(token: str) -> ColumnElement:
        start, width = parts[token]
        return sa.func.substr(text, start, width)

    iso = piece("%Y") + sa.literal("-") + piece("%m") + sa.literal("-") + piece("%d")
    shape = "^" + re.escape(rc.format).replace("%d", "[0-9]{2}").replace(
        "%m", "[0-9]{2}").replace("%Y", "[0-9]{4}") + "$"
    return as_date(sa.case((text.regexp_match(shape), iso), else_=sa.null()))


def logical_views(tables: Mapping[str, sa.Table], mapping: RegistryMapping,
                  missing: Mapping[str, set[str]] | None = None) -> dict[str, FromClause]:
    """Each table as its logical view (the table itself when nothing is recoded).

    Columns keep their logical names (``view.c.sex``), hold schema codes, types and units;
    declared covariates come with their names; derived flags (``immunotherapy``) are present
    on their table when the mapping gives a rule. ``missing``: logical columns the registry
    turned out not to have although nothing reads them, read as NULL.
    """
    views: dict[str, FromClause] = {}
    missing = missing or {}
    for logical, table in tables.items():
        tm = mapping.get(logical)
        gone = missing.get(logical, set())
        if (tm is None or (not tm.recode and not tm.extra)) and not gone:
            views[logical] = table
            continue
        recode = dict(tm.recode) if tm is not None else {}
        recode.update({c: ColumnRecode(absent=True) for c in gone})
        cols: dict[str, ColumnElement] = {}
        for spec in LOGICAL_SCHEMA[logical]:
            rc = recode.get(spec.name)
            source = table.c.get(spec.name)
            cols[spec.name] = recode_expr(source, spec.type_, rc)
        for name, (rc, type_) in (tm.extra.items() if tm is not None else ()):
            cols[name] = recode_expr(physical_column(table, name, rc), type_, rc)
        rule_columns = dict(cols)
        for spec in (*LOGICAL_SCHEMA[logical],):
            rc = recode.get(spec.name)
            if rc is not None and rc.rule is not None:
                cols[spec.name] = _rule_expr(rc, logical, rule_columns, spec.type_)
        for flag in DERIVED_FLAGS.get(logical, {}):
            rc = recode.get(flag)
            if rc is not None and rc.rule is not None:
                cols[flag] = _rule_expr(rc, logical, rule_columns, sa.Boolean())
        views[logical] = sa.select(*(e.label(k) for k, e in cols.items())).subquery(
            f"v_{logical}")
    return views


def physical_column(table: sa.Table, key: str, rc: ColumnRecode) -> sa.Column:
    """A covariate's source column (shared with a schema column when they read the same one)."""
    if key in table.c:
        return table.c[key]
    return next(c for c in table.c if c.name == rc.column)


def _rule_expr(rc: ColumnRecode, logical: str, columns: Mapping[str, ColumnElement],
               type_: sa.types.TypeEngine) -> ColumnElement:
    crit = parse_criterion(rc.rule, rule_kinds(logical))
    cond = crit.to_sql(columns)
    return sa.type_coerce(sa.case((cond, sa.true()), (sa.not_(cond), sa.false()),
                                  else_=sa.null()), type_)


# -- checks of the source values -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeProblem:
    """Rows of one recoded column whose source value has no schema code or does not cast.

    Attributes
    ----------
    table, column : str
        Logical names (a declared covariate: its name).
    source : str
        ``<physical table>.<physical column>``.
    where : str
        ``<mapping file>:<line>`` of the column's entry.
    kind : {"unmapped", "cast"}
    n_rows : int
    codes : tuple of (str, int)
        Up to `MAX_CODES_SHOWN` offending codes with their row counts, most frequent first;
        empty for keys and dates (identifiers and quasi-identifiers are never shown).
    n_codes : int
        Number of distinct offending codes.
    expected : str
        What a value should have been (``codes: M, F`` / ``integer`` / ``date %d/%m/%Y``).
    action : {"error", "missing"}
    """

    table: str
    column: str
    source: str
    where: str
    kind: str
    n_rows: int
    codes: tuple[tuple[str, int], ...]
    n_codes: int
    expected: str
    action: str

    def message(self) -> str:
        """``<file>:<line>: sex (patients.sexe): 1,500 rows with unmapped codes 'homme' ...``."""
        what = ("with unmapped codes" if self.kind == "unmapped"
                else f"that do not cast to {self.expected}")
        if self.codes:
            shown = ", ".join(f"{short(c, 40)} ({n:,} rows)" for c, n in self.codes)
            more = (f" and {self.n_codes - len(self.codes):,} more codes"
                    if self.n_codes > len(self.codes) else "")
            detail = f"{what}: {shown}{more}"
        else:
            detail = f"{what} (values not shown: record keys and dates)"
        return f"{self.where}: {self.column} ({self.source}): {self.n_rows:,} rows {detail}"

    def to_dict(self) -> dict:
        return {"table": self.table, "column": self.column, "source": self.source,
                "where": self.where, "kind": self.kind, "n_rows": self.n_rows,
                "codes": [{"code": c, "n_rows": n} for c, n in self.codes],
                "n_codes": self.n_codes, "expected": self.expected, "action": self.action}


def recoded_columns(mapping: RegistryMapping, tables: Mapping[str, sa.Table],
                    wanted: tuple[str, ...] | None = None):
    """(logical table, column, physical Table column, type, recode) of every checked column."""
    for logical, tm in mapping.items():
        if wanted is not None and logical not in wanted:
            continue
        table = tables[logical]
        for spec in LOGICAL_SCHEMA[logical]:
            rc = tm.recode.get(spec.name)
            if rc is not None and rc.column is not None and (rc.values is not None or rc.type):
                yield logical, spec.name, table.c[spec.name], spec.type_, rc, spec.primary_key \
                    or spec.foreign_key is not None
        for name, (rc, type_) in tm.extra.items():
            if rc.values is not None or rc.type:
                yield logical, name, physical_column(table, name, rc), type_, rc, False


def code_problems(con: sa.Connection, tables: Mapping[str, sa.Table],
                  mapping: RegistryMapping, wanted: tuple[str, ...] | None = None
                  ) -> list[CodeProblem]:
    """Count the source values that have no schema code or do not cast (one query each)."""
    out: list[CodeProblem] = []
    for logical, name, col, _type, rc, is_key in recoded_columns(mapping, tables, wanted):
        source = f"{col.table.name}.{col.name}"
        if rc.values is not None:
            out += _unmapped(con, logical, name, col, rc, source, is_key)
        elif rc.type == "date":
            out += _bad_dates(con, logical, name, col, rc, source)
        elif rc.type in ("integer", "number"):
            pattern = INTEGER_PATTERN if rc.type == "integer" else NUMBER_PATTERN
            out += _bad_pattern(con, logical, name, col, rc, source, pattern, is_key)
    return out


def _unmapped(con, logical, name, col, rc, source, is_key) -> list[CodeProblem]:
    norm = _normalised(col).label("code")
    keys = [src for src, _ in rc.values]
    stmt = (sa.select(norm, sa.func.count().label("n")).where(col.is_not(None))
            .where(norm.not_in(keys)).group_by(norm).order_by(sa.desc("n"), norm))
    rows = [(str(c), int(n)) for c, n in con.execute(stmt).fetchall()]
    if not rows:
        return []
    expected = "codes " + ", ".join(sorted({s for s, _ in rc.values}))
    if len(expected) > 120:
        expected = expected[:117] + "..."
    return [CodeProblem(logical, name, source, rc.where, "unmapped", sum(n for _, n in rows),
                        () if is_key else tuple(rows[:MAX_CODES_SHOWN]), len(rows),
                        expected, rc.unmapped)]


def _bad_pattern(con, logical, name, col, rc, source, pattern, is_key) -> list[CodeProblem]:
    text = sa.func.trim(as_text(col)).label("code")
    bad = sa.and_(col.is_not(None), sa.not_(as_text(col).regexp_match(pattern)))
    n = int(con.execute(sa.select(sa.func.count()).where(bad).select_from(col.table)
                        ).scalar_one())
    if not n:
        return []
    codes: tuple = ()
    n_codes = 0
    if not is_key:
        stmt = (sa.select(text, sa.func.count().label("n")).where(bad).group_by(text)
                .order_by(sa.desc("n"), text).limit(MAX_CODES_SHOWN))
        codes = tuple((str(c), int(k)) for c, k in con.execute(stmt).fetchall())
        n_codes = int(con.execute(sa.select(sa.func.count(sa.distinct(text))).where(bad)
                                  .select_from(col.table)).scalar_one())
    return [CodeProblem(logical, name, source, rc.where, "cast", n, codes, n_codes,
                        "an integer" if rc.type == "integer" else "a number", rc.unmapped)]


def _bad_dates(con, logical, name, col, rc, source) -> list[CodeProblem]:
    raw = sa.type_coerce(col, sa.String())  # as stored: no date conversion on the way out
    stmt = (sa.select(raw, sa.func.count()).where(col.is_not(None)).group_by(col)
            .limit(MAX_DISTINCT_DATES))
    bad_rows, bad_codes = 0, 0
    for value, n in con.execute(stmt):
        if not _is_date(value, rc.format):
            bad_rows += int(n)
            bad_codes += 1
    if not bad_rows:
        return []
    expected = f"a date {rc.format}" if rc.format else "an ISO date YYYY-MM-DD"
    return [CodeProblem(logical, name, source, rc.where, "cast", bad_rows, (), bad_codes,
                        expected, rc.unmapped)]


def _is_date(value, fmt: str | None) -> bool:
    if isinstance(value, dt.datetime | dt.date):
        return True
    text = str(value).strip()
    fmt = fmt or "%Y-%m-%d"
    if len(text) != date_format_width(fmt):
        return False
    try:
        dt.datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True
