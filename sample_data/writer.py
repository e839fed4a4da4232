"""Write a registry (dict of logical table name -> DataFrame) into a database.

This is the only code in synthctl that *writes* a registry: the connectors open registries
read-only. It creates the tables from `connectors.schema.build_metadata` (so a renamed copy is
made by passing the same `TableMapping` dict a connector would read it with) and bulk-loads the
rows:

- SQLite, MariaDB/MySQL and others: ``executemany`` of DBAPI-native tuples in chunks through
  `Connection.exec_driver_sql`. SQLAlchemy's per-value bind processing (a Python call per
  value) would dominate at 10^7 assessment rows, so values are converted once, column-wise,
  to what SQLAlchemy itself would have sent: dates as ISO ``YYYY-MM-DD`` text (SQLAlchemy's
  SQLite storage format, accepted by MySQL), booleans as 0/1.
- PostgreSQL (psycopg 3): ``COPY ... FROM STDIN``, an order of magnitude faster than INSERT.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from connectors.schema import LOGICAL_SCHEMA, REQUIRED_TABLES, TableMapping, build_metadata

__all__ = ["RegistryWriteError", "write_registry", "write_registry_sqlite"]

DEFAULT_CHUNK_SIZE = 50_000


class RegistryWriteError(ValueError):
    """The tables handed to the writer do not fit the registry schema, or the target exists."""


def write_registry(
    engine: sa.Engine,
    tables: Mapping[str, pd.DataFrame],
    schema: str | None = None,
    *,
    mapping: Mapping[str, TableMapping] | None = None,
    if_exists: str = "fail",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, int]:
    """Create the registry tables in ``engine`` and bulk-insert ``tables``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Target database (SQLite, PostgreSQL through psycopg 3, MariaDB/MySQL, ...).
    tables : mapping of logical table name -> DataFrame
        One DataFrame per table of `connectors.schema.LOGICAL_SCHEMA`, with exactly its logical
        columns (any order). Dates may be datetime64, `datetime.date` objects or ISO strings;
        missing values may be None, NaN, NaT or pd.NA.
    schema : str, optional
        Database schema (PostgreSQL schema / MariaDB database) to create the tables in; it must
        already exist.
    mapping : mapping of logical table name -> TableMapping, optional
        Physical table/column names, to write a renamed copy of the registry.
    if_exists : {"fail", "replace"}, default="fail"
        What to do when a registry table already exists: raise, or drop and recreate all tables.
    chunk_size : int, default=50_000
        Rows per ``executemany`` call (bounds the memory of the converted rows).

    Returns
    -------
    dict of logical table name -> number of rows written

    Raises
    ------
    RegistryWriteError
        A table is missing or unknown, a column is missing or unexpected, a value cannot be
        converted (the message names table and column), or a table exists with
        ``if_exists="fail"``.
    """
    if if_exists not in ("fail", "replace"):
        raise RegistryWriteError(f"if_exists must be 'fail' or 'replace', got {if_exists!r}")
    if chunk_size < 1:
        raise RegistryWriteError(f"chunk_size must be >= 1, got {chunk_size}")
    _check_tables(tables)
    postgres = engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
    # PostgreSQL checks foreign keys row by row during COPY: add them after the load instead
    metadata, sa_tables = _registry_metadata(mapping, schema, foreign_keys=not postgres)
    inspector = sa.inspect(engine)
    existing = [t.name for t in sa_tables.values() if inspector.has_table(t.name, schema=schema)]
    if existing and if_exists == "fail":
        raise RegistryWriteError(
            f"registry tables already exist in the target: {', '.join(existing)} "
            "(pass if_exists='replace' to overwrite them)"
        )
    counts: dict[str, int] = {}
    try:
        with engine.begin() as conn:
            if existing:  # drop with the foreign keys known, so in dependency order
                _registry_metadata(mapping, schema)[0].drop_all(conn, checkfirst=True)
            metadata.create_all(conn, tables=[sa_tables[n] for n in LOGICAL_SCHEMA
                                              if n in tables])
            for name in LOGICAL_SCHEMA:  # declaration order respects the foreign keys
                if name not in tables:  # an optional table the registry does not have
                    continue
                table = sa_tables[name]
                columns = _native_columns(name, tables[name])
                if postgres:
                    _copy_postgres(conn, table, columns)
                else:
                    _executemany(conn, table, columns, chunk_size)
                counts[name] = len(tables[name])
            if postgres:
                for fk in _foreign_keys(sa_tables):
                    if fk.table.key in {sa_tables[n].key for n in tables}:
                        conn.execute(sa.schema.AddConstraint(fk))
    except Exception:
        # MySQL/MariaDB DDL is not transactional: leave no half-written registry behind.
        if engine.dialect.name in ("mysql", "mariadb"):
            metadata.drop_all(engine, checkfirst=True)
        raise
    return counts


def write_registry_sqlite(
    tables: Mapping[str, pd.DataFrame],
    path: str | Path,
    *,
    mapping: Mapping[str, TableMapping] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``tables`` into a new SQLite file at ``path`` (see `write_registry`).

    Raises `RegistryWriteError` when ``path`` exists and ``overwrite`` is False. The file is
    written in one transaction and compacted (``VACUUM``) so that it is small to ship.
    """
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise RegistryWriteError(f"{path} exists (pass overwrite=True to replace it)")
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        write_registry(engine, tables, mapping=mapping)
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
    finally:
        engine.dispose()
    return path


# --- helpers -------------------------------------------------------------------------------


def _check_tables(tables: Mapping[str, pd.DataFrame]) -> None:
    missing = [t for t in REQUIRED_TABLES if t not in tables]  # optional ones may be left out
    unknown = [t for t in tables if t not in LOGICAL_SCHEMA]
    if missing or unknown:
        raise RegistryWriteError(
            f"tables do not match the registry schema: missing {missing}, unknown {unknown}"
        )
    for name, specs in LOGICAL_SCHEMA.items():
        if name not in tables:
            continue
        frame = tables[name]
        if not isinstance(frame, pd.DataFrame):
            raise RegistryWriteError(f"table {name!r}: expected a DataFrame, got {type(frame)}")
        expected = [s.name for s in specs]
        miss = [c for c in expected if c not in frame.columns]
        extra = [c for c in frame.columns if c not in expected]
        if miss or extra:
            raise RegistryWriteError(
                f"table {name!r}: missing columns {miss}, unexpected columns {extra}"
            )


def _registry_metadata(
    mapping: Mapping[str, TableMapping] | None, schema: str | None, *, foreign_keys: bool = True
) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    """`build_metadata` with keys and NOT NULLs attached through Column objects.

    `build_metadata(with_constraints=True)` spells foreign keys as "table.physical_column"
    strings, which SQLAlchemy resolves against column *keys*: that fails as soon as a mapping
    renames a referenced column (patients.patient_id). Column objects avoid the lookup.
    """
    metadata, tables = build_metadata(mapping, schema=schema, with_constraints=False)
    for name, specs in LOGICAL_SCHEMA.items():
        table = tables[name]
        for spec in specs:
            table.c[spec.name].nullable = spec.nullable
        table.append_constraint(
            sa.PrimaryKeyConstraint(*(table.c[s.name] for s in specs if s.primary_key))
        )
    if foreign_keys:
        _foreign_keys(tables)
    return metadata, tables


def _foreign_keys(tables: dict[str, sa.Table]) -> list[sa.ForeignKeyConstraint]:
    """Attach the schema's foreign keys to ``tables`` (Column objects); return them."""
    out = []
    for name, specs in LOGICAL_SCHEMA.items():
        for spec in specs:
            if spec.foreign_key:
                ref_table, ref_col = spec.foreign_key.split(".")
                fk = sa.ForeignKeyConstraint(
                    [tables[name].c[spec.name]],
                    [tables[ref_table].c[ref_col]],
                    name=f"fk_{tables[name].name}_{tables[name].c[spec.name].name}",
                )
                tables[name].append_constraint(fk)
                out.append(fk)
    return out


def _native_columns(name: str, frame: pd.DataFrame) -> dict[str, list]:
    """Column-wise conversion to DBAPI-native Python values (None for missing)."""
    out: dict[str, list] = {}
    for spec in LOGICAL_SCHEMA[name]:
        try:
            out[spec.name] = _native(frame[spec.name], spec.type_)
        except (TypeError, ValueError, OverflowError) as exc:
            raise RegistryWriteError(
                f"table {name!r}, column {spec.name!r}: cannot convert to "
                f"{spec.type_!r}: {exc}"
            ) from exc
        if not spec.nullable and any(v is None for v in out[spec.name]):
            raise RegistryWriteError(f"table {name!r}, column {spec.name!r}: missing values")
    return out


def _native(series: pd.Series, type_: sa.types.TypeEngine | type) -> list:
    type_ = sa.types.to_instance(type_)  # the schema declares some types as classes
    missing = series.isna().to_numpy()
    if isinstance(type_, sa.Date):
        days = pd.to_datetime(series, errors="raise").to_numpy().astype("datetime64[D]")
        values = days.astype(str).astype(object)  # ISO YYYY-MM-DD; NaT replaced below
    elif isinstance(type_, sa.Boolean):
        flags = series.astype("boolean").to_numpy(dtype=bool, na_value=False)
        values = flags.astype(int).astype(object)  # 0/1: what SQLAlchemy sends for BOOLEAN
    elif isinstance(type_, sa.Integer):
        as_float = pd.to_numeric(series).to_numpy(dtype=float, na_value=np.nan)
        as_float = np.where(missing, 0.0, as_float)
        as_int = as_float.astype(np.int64)
        if not np.array_equal(as_int, as_float):
            raise ValueError("non-integer values")
        values = as_int.astype(object)
    elif isinstance(type_, sa.Float):
        values = pd.to_numeric(series).to_numpy(dtype=float, na_value=np.nan).astype(object)
    else:
        values = series.astype(str).to_numpy(dtype=object)
    # Convert numpy scalars to Python scalars (drivers differ on numpy support).
    result = values.tolist()
    if missing.any():
        for i in np.flatnonzero(missing).tolist():
            result[i] = None
    return result


def _executemany(conn: sa.Connection, table: sa.Table, columns: dict[str, list], chunk: int):
    if not columns or not next(iter(columns.values())):
        return
    stmt = table.insert().compile(dialect=conn.dialect, column_keys=list(columns))
    if stmt.positiontup is not None:
        rows = list(zip(*(columns[k] for k in stmt.positiontup), strict=True))
    else:  # named paramstyle: bind names are the column keys
        names = list(columns)
        rows = [dict(zip(names, r, strict=True)) for r in zip(*columns.values(), strict=True)]
    sql = str(stmt)
    for start in range(0, len(rows), chunk):
        conn.exec_driver_sql(sql, rows[start : start + chunk])


def _copy_postgres(conn: sa.Connection, table: sa.Table, columns: dict[str, list]) -> None:
    if not columns or not next(iter(columns.values())):
        return
    prep = conn.dialect.identifier_preparer
    cols = ", ".join(prep.quote(table.c[k].name) for k in columns)
    sql = f"COPY {prep.format_table(table)} ({cols}) FROM STDIN"
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for row in zip(*columns.values(), strict=True):
            copy.write_row(row)
