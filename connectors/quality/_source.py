"""Where the checks read from: engine, logical tables and the dialect's date difference.

`open_source` accepts a URL, an `Engine` or a `connectors.registry.RegistryConnector`. With a
connector, its read-only engine, mapped tables and date-difference construct are reused;
otherwise an engine is opened read-only here (SQLite ``mode=ro`` URI, PostgreSQL
``default_transaction_read_only``, MariaDB ``SET SESSION TRANSACTION READ ONLY``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.errors import RegistryUnavailableError
from connectors.schema import TableMapping, build_metadata

DaysBetween = Callable[[Any, Any], sa.ColumnElement]


@dataclass(frozen=True, slots=True)
class Source:
    """A read-only view of the registry for the checks (logical table names)."""

    engine: sa.Engine
    tables: Mapping[str, sa.Table]
    schema: str | None
    days_between: DaysBetween
    label: str  # URL without password, for the report
    owns_engine: bool

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        if self.owns_engine:
            self.engine.dispose()


def dialect_days_between(dialect: str) -> DaysBetween:
    """Days from ``start`` to ``end`` (``end - start``) as a SQL expression for ``dialect``."""

    def days_between(start, end) -> sa.ColumnElement:
        if dialect == "sqlite":
            return sa.func.julianday(end) - sa.func.julianday(start)
        if dialect in ("mysql", "mariadb"):
            return sa.func.datediff(end, start)
        if dialect == "postgresql":
            return sa.cast(end, sa.Date) - sa.cast(start, sa.Date)
        raise RegistryUnavailableError(f"no date difference known for SQL dialect {dialect!r}")

    return days_between


def _read_only_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            raise RegistryUnavailableError(f"SQLite registry must be a file, got {url!r}")
        path = Path(database)
        if not path.is_file():
            raise RegistryUnavailableError(f"SQLite registry file not found: {path}")
        ro_url = f"file:{path.resolve()}?mode=ro"
        return sa.create_engine(
            "sqlite://", creator=_sqlite_creator(ro_url), poolclass=sa.pool.NullPool
        )
    if backend == "postgresql":
        return sa.create_engine(
            parsed, connect_args={"options": "-c default_transaction_read_only=on"}
        )
    if backend in ("mysql", "mariadb"):
        engine = sa.create_engine(parsed)

        @sa.event.listens_for(engine, "connect")
        def _read_only(dbapi_conn, _record):  # every pooled connection, before use
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")

        return engine
    raise RegistryUnavailableError(f"unsupported registry database {backend!r} in {url!r}")


def _sqlite_creator(ro_url: str):
    import sqlite3

    def connect():
        return sqlite3.connect(ro_url, uri=True)

    return connect


def open_source(
    url_or_connector: Any,
    mapping: Mapping[str, TableMapping] | None = None,
    schema: str | None = None,
) -> Source:
    """Open the registry read-only (or reuse a connector's engine) for the checks."""
    if isinstance(url_or_connector, (str, sa.URL)):
        url = str(url_or_connector)
        try:
            engine = _read_only_engine(url)
        except sa.exc.ArgumentError as exc:
            raise RegistryUnavailableError(f"cannot parse registry URL: {exc}") from exc
        label = sa.make_url(url).render_as_string(hide_password=True)
        owns = True
    elif isinstance(url_or_connector, sa.Engine):
        engine, owns = url_or_connector, False
        label = engine.url.render_as_string(hide_password=True)
    else:
        return _from_connector(url_or_connector)
    _, tables = build_metadata(mapping, schema=schema, with_constraints=False)
    return Source(engine, tables, schema, dialect_days_between(engine.dialect.name), label, owns)


def _from_connector(conn: Any) -> Source:
    engine = getattr(conn, "engine", None)
    tables = getattr(conn, "tables", None)
    if not isinstance(engine, sa.Engine) or tables is None:
        raise TypeError(
            "validate_registry expects a URL, an Engine or a RegistryConnector, "
            f"got {type(conn).__name__}"
        )
    days_between = getattr(conn, "days_between", None) or dialect_days_between(
        engine.dialect.name
    )
    label = engine.url.render_as_string(hide_password=True)
    return Source(engine, tables, getattr(conn, "schema", None), days_between, label, False)
