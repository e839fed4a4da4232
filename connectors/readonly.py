"""Open a registry database read-only, and the one dialect-specific SQL construct we need.

Three layers keep the registry unwritten:

1. the database itself is opened read-only: SQLite through a ``file:...?mode=ro`` URI;
   PostgreSQL with ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`` and MariaDB/MySQL
   with ``SET SESSION TRANSACTION READ ONLY`` on every new connection;
2. a statement guard refuses, before it reaches the database, any statement that does not
   start with ``SELECT``, ``WITH``, ``SHOW``, ``PRAGMA``, ``EXPLAIN`` or ``DESCRIBE``;
3. the database's own read-only errors are re-raised as `ReadOnlyViolationError`.

Errors never show the password: URLs are rendered with ``hide_password=True``.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import ArgumentError, CompileError, NoSuchModuleError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from connectors.errors import ReadOnlyViolationError, RegistryUnavailableError

_ALLOWED_FIRST_WORDS = {"SELECT", "WITH", "SHOW", "PRAGMA", "EXPLAIN", "DESCRIBE"}
_FIRST_WORD = re.compile(r"^[\s(]*(?:(?:--[^\n]*\n|/\*.*?\*/)[\s(]*)*([A-Za-z]+)", re.S)
_SUPPORTED = ("sqlite", "postgresql", "mysql", "mariadb")


def safe_url(url: str | sa.URL) -> str:
    """The URL as text with the password masked (``***``), for messages and manifests."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<malformed database URL>"


def open_readonly_engine(url: str | sa.URL) -> sa.Engine:
    """Create an engine whose connections cannot write (see the module docstring).

    Raises
    ------
    RegistryUnavailableError
        Malformed URL, unsupported backend, missing driver, missing SQLite file.
    """
    try:
        u = sa.make_url(url)
    except ArgumentError:
        raise RegistryUnavailableError(
            "malformed database URL (expected e.g. sqlite:///registry.sqlite or "
            "postgresql+psycopg://user@host/db)"
        ) from None
    shown = u.render_as_string(hide_password=True)
    backend = u.get_backend_name()
    from connectors.exports import BACKENDS as DUCKDB_BACKENDS  # DuckDB and export folders

    if backend not in _SUPPORTED and backend not in DUCKDB_BACKENDS:
        raise RegistryUnavailableError(
            f"registry {shown}: unsupported database {backend!r} (supported: SQLite, "
            "PostgreSQL, MariaDB/MySQL, DuckDB, parquet:/// or csv:/// export folders), so "
            "read-only access cannot be guaranteed"
        )
    if backend in DUCKDB_BACKENDS:
        from connectors.exports import duckdb_engine

        engine = duckdb_engine(u, shown)
    elif backend == "sqlite":
        engine = _sqlite_engine(u, shown)
    else:
        try:
            engine = sa.create_engine(u, pool_pre_ping=True)
        except (NoSuchModuleError, ImportError) as exc:
            extra = "postgres" if backend == "postgresql" else "mysql"
            raise RegistryUnavailableError(
                f"registry {shown}: database driver not available ({exc.__class__.__name__}: "
                f"{exc}); install it, e.g. pip install 'synthctl[{extra}]'"
            ) from None
        statement = (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
            if backend == "postgresql"
            else "SET SESSION TRANSACTION READ ONLY"
        )
        event.listen(engine, "connect", _session_read_only(statement))
    event.listen(engine, "before_cursor_execute", _guard_statement)
    event.listen(engine, "handle_error", _map_read_only_error)
    return engine


def _sqlite_engine(u: sa.URL, shown: str) -> sa.Engine:
    database = u.database or ""
    if database.startswith("file:"):  # already a URI: keep the path, force mode=ro
        database = database[5:].split("?", 1)[0]
    if not database or database == ":memory:":
        raise RegistryUnavailableError(
            f"registry {shown}: a SQLite registry must be a file (sqlite:///path/to/file)"
        )
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise RegistryUnavailableError(f"registry {shown}: no such SQLite file {path}")
    uri = f"file:{quote(str(path))}?mode=ro"

    def creator() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return sa.create_engine("sqlite://", creator=creator)


def _session_read_only(statement: str):
    def on_connect(dbapi_connection, connection_record) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()
        # a SET inside a transaction that is later rolled back would be undone (PostgreSQL)
        dbapi_connection.commit()

    return on_connect


def _guard_statement(conn, cursor, statement, parameters, context, executemany) -> None:
    match = _FIRST_WORD.match(statement or "")
    word = match.group(1).upper() if match else ""
    if word not in _ALLOWED_FIRST_WORDS:
        raise ReadOnlyViolationError(
            f"the registry is read-only: refused a {word or 'non-SELECT'} statement "
            "(synthctl never writes to the registry)"
        )


def _is_read_only_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return "readonly database" in str(exc) or "read-only" in str(exc)
    if getattr(exc, "sqlstate", None) == "25006":  # psycopg: read_only_sql_transaction
        return True
    args = getattr(exc, "args", ())
    return bool(args) and args[0] in (1792, 1290)  # MySQL/MariaDB: read-only transaction


def _map_read_only_error(context) -> None:
    exc = context.original_exception
    if isinstance(exc, ReadOnlyViolationError):
        raise exc
    if _is_read_only_error(exc):
        raise ReadOnlyViolationError(
            f"the registry is read-only: the database refused a write ({type(exc).__name__})"
        ) from exc


# -- days between two dates, per dialect -------------------------------------------------------


class days_between(FunctionElement):  # noqa: N801 (SQL-function style name)
    """``end - start`` in days, as a double precision number (NULL if either is NULL).

    ``days_between(start, end)``; dates must be DATE columns (SQLite: ISO text).
    """

    type = sa.Float()
    name = "days_between"
    inherit_cache = True


def _args(element, compiler, **kw) -> tuple[str, str]:
    start, end = list(element.clauses)
    return compiler.process(start, **kw), compiler.process(end, **kw)


@compiles(days_between)
def _days_default(element, compiler, **kw):
    raise CompileError(f"days_between is not implemented for {compiler.dialect.name}")


@compiles(days_between, "sqlite")
def _days_sqlite(element, compiler, **kw):
    start, end = _args(element, compiler, **kw)
    return f"(julianday({end}) - julianday({start}))"


@compiles(days_between, "postgresql")
def _days_postgresql(element, compiler, **kw):
    start, end = _args(element, compiler, **kw)
    return f"CAST(({end} - {start}) AS DOUBLE PRECISION)"


@compiles(days_between, "mysql")
@compiles(days_between, "mariadb")
def _days_mysql(element, compiler, **kw):
    start, end = _args(element, compiler, **kw)
    return f"(DATEDIFF({end}, {start}) + 0e0)"  # + 0e0: DOUBLE arithmetic, not DECIMAL
