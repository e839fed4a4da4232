"""Open a registry database read-only, and the one dialect-specific SQL construct we need.

Four layers keep the registry unwritten:

1. the database itself is opened read-only: SQLite through a ``file:...?mode=ro`` URI;
   PostgreSQL with ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`` and MariaDB/MySQL
   with ``SET SESSION TRANSACTION READ ONLY`` on every new connection;
2. every transaction is started ``READ ONLY`` again (PostgreSQL, MariaDB), so a session
   setting changed behind our back does not make the next transaction writable;
3. a statement guard (`check_statement`) refuses, before it reaches the database, any
   statement that does not start with ``SELECT``, ``WITH``, ``SHOW``, ``PRAGMA``, ``EXPLAIN``
   or ``DESCRIBE``, or that contains (outside literals, quoted names and comments) a
   data-modifying or session-changing keyword (``DELETE`` in a CTE, ``SET``, ``INTO``...) or a
   function that changes state (``set_config``, ``setval``, ``lo_import``, ``dblink``...);
4. the database's own read-only errors are re-raised as `ReadOnlyViolationError`.

Every wait is bounded (`connectors.timeouts`), every database error is re-raised as a
connector error, and no message shows a password (`connectors.urls.mask_url`).
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
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.functions import FunctionElement

from connectors.errors import (
    ReadOnlyViolationError,
    RegistryTimeoutError,
    RegistryUnavailableError,
)
from connectors.timeouts import (
    CONNECT_HINT,
    Timeouts,
    Watchdog,
    after_connect,
    connect_args,
    install_watchdog,
    session_statements,
    translate_error,
)
from connectors.urls import mask_url

_ALLOWED_FIRST_WORDS = {"SELECT", "WITH", "SHOW", "PRAGMA", "EXPLAIN", "DESCRIBE"}
# words that never appear inside a read-only query we send (data-modifying CTEs, SELECT INTO,
# session settings, DDL); other statements are refused by their first word
_FORBIDDEN_WORDS = {
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "TRUNCATE", "DROP", "ALTER", "CREATE",
    "GRANT", "REVOKE", "COPY", "CALL", "SET", "RESET", "INTO",
    # functions that change server, session or sequence state, or write files
    "SET_CONFIG", "SETVAL", "NEXTVAL", "LO_IMPORT", "LO_EXPORT", "LO_UNLINK", "LO_CREATE",
    "LO_FROM_BYTEA", "LO_PUT", "DBLINK", "DBLINK_EXEC", "DBLINK_CONNECT",
    "PG_TERMINATE_BACKEND", "PG_CANCEL_BACKEND", "PG_RELOAD_CONF", "PG_ROTATE_LOGFILE",
    "PG_SWITCH_WAL", "PG_CREATE_RESTORE_POINT", "PG_PROMOTE", "PG_ADVISORY_LOCK",
    "PG_ADVISORY_XACT_LOCK", "PG_TRY_ADVISORY_LOCK", "GET_LOCK", "RELEASE_LOCK",
}
# what the dialect skips: comments (not MySQL's executable /*! */), string literals (with
# backslash escapes where the dialect has them: MySQL always, PostgreSQL in E'...'), quoted
# identifiers, PostgreSQL dollar quotes. Everything else is scanned: when in doubt, refuse.
_COMMENTS = r"--(?=\s|$)[^\n]*|/\*(?![!+]|M!).*?(?:\*/|$)"
_SKIP = {
    "postgresql": _COMMENTS + r"|[Ee]'(?:[^'\\]|\\.|'')*(?:'|$)|'[^']*(?:'|$)"
                  r"|\"[^\"]*(?:\"|$)|\$(?P<tag>[A-Za-z_]\w*)?\$.*?(?:\$(?P=tag)\$|$)",
    "mysql": _COMMENTS + r"|\#[^\n]*|'(?:[^'\\]|\\.|'')*(?:'|$)|\"(?:[^\"\\]|\\.|\"\")*(?:\"|$)"
             r"|`[^`]*(?:`|$)",
    "sqlite": _COMMENTS + r"|'[^']*(?:'|$)|\"[^\"]*(?:\"|$)|`[^`]*(?:`|$)|\[[^\]]*(?:\]|$)",
}
_SKIP["duckdb"] = _SKIP["postgresql"]  # DuckDB quotes as PostgreSQL does (E'...', $$...$$)
_TOKENS = {
    name: re.compile(rf"(?P<skip>{skip})|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<other>[^\s])",
                     re.S)
    for name, skip in _SKIP.items()
}
_SUPPORTED = ("sqlite", "postgresql", "mysql", "mariadb")


def check_statement(statement: str, dialect: str | None = None) -> None:
    """Refuse a statement that could write or change the session (see the module docstring).

    Parameters
    ----------
    statement : str
    dialect : {"postgresql", "mysql", "sqlite", "duckdb"}, optional
        How literals and comments are delimited; unknown or None: every dialect's reading
        must pass.

    Raises
    ------
    ReadOnlyViolationError
        Naming the offending word.
    """
    if dialect not in _TOKENS:
        for name in _TOKENS:
            check_statement(statement, name)
        return
    words: list[str] = []
    other: list[str] = []
    end = False  # after a ';': one statement only
    for m in _TOKENS[dialect].finditer(statement or ""):
        if end and (m["word"] or m["other"]):
            raise ReadOnlyViolationError(
                "the registry is read-only: refused several statements in one (synthctl sends "
                "one SELECT at a time)")
        if m["other"] == ";":
            end = True
        elif m["word"]:
            words.append(m["word"].upper())
        elif m["other"] and not words:
            other.append(m["other"])
    first = words[0] if words else ""
    if first not in _ALLOWED_FIRST_WORDS or any(o != "(" for o in other):
        raise ReadOnlyViolationError(
            f"the registry is read-only: refused a {first or 'non-SELECT'} statement "
            "(synthctl never writes to the registry)"
        )
    if first == "SHOW":
        return  # SHOW reads settings and definitions (SHOW CREATE TABLE) and cannot write
    if first == "PRAGMA" and "=" in statement:
        raise ReadOnlyViolationError("the registry is read-only: refused a PRAGMA assignment")
    bad = sorted(set(words[1:]) & _FORBIDDEN_WORDS)
    if bad:
        raise ReadOnlyViolationError(
            f"the registry is read-only: refused a {first} statement containing "
            f"{', '.join(bad)} (data-modifying or session-changing; synthctl never writes to "
            "the registry or changes its session)"
        )


def open_readonly_engine(url: str | sa.URL, timeouts: Timeouts | None = None) -> sa.Engine:
    """Create an engine whose connections cannot write (see the module docstring).

    Parameters
    ----------
    url : str or sqlalchemy.URL
    timeouts : Timeouts, optional
        Connect and statement timeouts (PostgreSQL, MariaDB); default ``Timeouts()``.

    Raises
    ------
    RegistryUnavailableError
        Malformed URL, unsupported backend, missing driver, missing SQLite file.
    """
    timeouts = timeouts or Timeouts()
    shown = mask_url(url)
    try:
        u = sa.make_url(url)
    except ArgumentError:
        raise RegistryUnavailableError(
            "malformed database URL (expected e.g. sqlite:///registry.sqlite or "
            "postgresql+psycopg://user@host/db)"
        ) from None
    backend = u.get_backend_name()
    from connectors.exports import BACKENDS as DUCKDB_BACKENDS  # DuckDB and export folders

    if backend not in _SUPPORTED and backend not in DUCKDB_BACKENDS:
        raise RegistryUnavailableError(
            f"registry {shown}: unsupported database {backend!r} (supported: SQLite, "
            "PostgreSQL, MariaDB/MySQL, DuckDB, parquet:/// or csv:/// export folders), so "
            "read-only access cannot be guaranteed"
        )
    watchdog: Watchdog | None = None
    if backend in DUCKDB_BACKENDS:  # read-only by DuckDB itself; no statement timeout
        from connectors.exports import duckdb_engine

        engine = duckdb_engine(u, shown)
    elif backend == "sqlite":
        engine = _sqlite_engine(u, shown)
    else:
        backend = "postgresql" if backend == "postgresql" else "mysql"
        try:
            # no pool: each connection is fresh (bounded by the connect timeout), never a
            # stale pooled one whose liveness ping could itself hang
            engine = sa.create_engine(u, poolclass=NullPool,
                                      connect_args=connect_args(backend, timeouts))
        except (NoSuchModuleError, ImportError) as exc:
            extra = "postgres" if backend == "postgresql" else "mysql"
            raise RegistryUnavailableError(
                f"registry {shown}: database driver not available ({exc.__class__.__name__}: "
                f"{exc}); install it, e.g. pip install 'synthctl[{extra}]'"
            ) from None
        if backend == "postgresql":
            watchdog = install_watchdog(engine, timeouts)
        event.listen(engine, "connect", _on_connect(backend, timeouts, watchdog))
        event.listen(engine, "begin", _begin_read_only)
    _listen_statements(engine, timeouts, watchdog, shown)
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


def _on_connect(backend: str, timeouts: Timeouts, watchdog: Watchdog | None):
    def on_connect(dbapi_connection, connection_record) -> None:
        if watchdog is not None:  # the greeting is done; the settings are bounded too
            watchdog.arm(dbapi_connection, timeouts.connect_s)
        try:
            cursor = dbapi_connection.cursor()
            try:
                for statement in session_statements(backend, dbapi_connection, timeouts):
                    cursor.execute(statement)
            finally:
                cursor.close()
            # a SET inside a transaction that is later rolled back would be undone (PostgreSQL)
            dbapi_connection.commit()
        except Exception as exc:
            if watchdog is not None and watchdog.fired(dbapi_connection):
                raise RegistryTimeoutError(
                    "the registry database did not answer within the connect timeout of "
                    f"{timeouts.connect_s:g} s (change it with {CONNECT_HINT})"
                ) from None
            raise RegistryUnavailableError(
                f"the registry database refused the read-only session settings ({exc})"
            ) from None
        finally:
            if watchdog is not None:
                watchdog.disarm(dbapi_connection)
        after_connect(backend, dbapi_connection, timeouts)

    return on_connect


def _begin_read_only(conn: sa.Connection) -> None:
    """Start each transaction READ ONLY, whatever the session default has become."""
    autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    if conn.connection.dbapi_connection is None or autocommit:
        return
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute("SET TRANSACTION READ ONLY")
    finally:
        cursor.close()


def _listen_statements(engine: sa.Engine, timeouts: Timeouts, watchdog: Watchdog | None,
                       shown: str):
    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        check_statement(statement, "mysql" if conn.dialect.name == "mariadb"
                        else conn.dialect.name)
        if watchdog is not None:
            watchdog.arm(conn.connection.dbapi_connection)

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        if watchdog is not None:
            watchdog.disarm(conn.connection.dbapi_connection)

    def on_error(context) -> None:
        dbapi = None
        if context.connection is not None and not context.connection.invalidated:
            dbapi = context.connection.connection.dbapi_connection
        if watchdog is not None and dbapi is not None:
            watchdog.disarm(dbapi)
        _map_read_only_error(context)
        translate_error(context, timeouts, watchdog, dbapi, shown)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", on_error)


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


# -- a long list of keys bound as one parameter, per dialect ----------------------------------


def in_one_parameter(dialect: str, column: sa.ColumnElement, values: list, *,
                     name: str = "key_values") -> sa.ColumnElement | None:
    """``column IN (values)`` with the whole list bound as ONE parameter, or None.

    PostgreSQL: ``column = ANY(:values)`` (an array); DuckDB: ``column IN (SELECT
    unnest(:values))`` (a list); SQLite: ``column IN (SELECT value FROM json_each(:values))``
    (a JSON array; JSON integers come back as SQLite integers, text as text). The database
    then joins on the list by hash (no IN list of 10^5 bound parameters, no chunks: one pass
    over the table). ``values`` are all ``int`` or all ``str``; other dialects (MariaDB):
    None, and the caller binds chunked IN lists as before.
    """
    if not values:
        return None
    sql_type = sa.Integer() if isinstance(values[0], int) else sa.String()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(name, values, type_=ARRAY(sql_type)))
    if dialect == "duckdb":
        unnest = sa.func.unnest(sa.bindparam(name, values, type_=sa.ARRAY(sql_type)))
        return column.in_(sa.select(unnest))
    if dialect == "sqlite":
        import json

        listed = sa.func.json_each(sa.bindparam(name, json.dumps(values))).table_valued("value")
        return column.in_(sa.select(listed.c.value))
    return None
