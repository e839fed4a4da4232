"""Bounded waits on a registry database: connect and statement timeouts, TCP keepalive.

Nothing synthctl asks a database may wait forever:

- **connect** (`Timeouts.connect_s`): TCP connect plus the server's greeting and login
  (psycopg ``connect_timeout``, which libpq and psycopg round up to at least 2 s; PyMySQL
  ``connect_timeout`` and a read timeout of the same length during the handshake);
- **statement** (`Timeouts.statement_s`): each statement (and each fetch of a streamed
  result) is bounded on the server (PostgreSQL ``statement_timeout``, MariaDB
  ``max_statement_time``, MySQL ``max_execution_time``) and, a little later
  (`client_deadline`), on the client: PyMySQL's socket read timeout, and for psycopg a watchdog
  that shuts the socket of a connection whose answer is overdue (a stalled network or server
  never delivers the server's own timeout error);
- **TCP keepalive** finds a silently dead peer while idle (PostgreSQL ``keepalives_*``; PyMySQL
  sets ``SO_KEEPALIVE`` and we shorten the intervals).

Every DBAPI error is re-raised as a connector error with a one-line message, password masked
(`translate_error`): a timeout as `RegistryTimeoutError` naming the timeout and how to change
it, a lost or refused connection as `RegistryUnavailableError`, anything else the database
refused as `RegistryQueryError`. SQLite is a local file: only its busy timeout applies.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connectors.errors import (
    ReadOnlyViolationError,
    RegistryQueryError,
    RegistryTimeoutError,
    RegistryUnavailableError,
)
from connectors.urls import mask_secrets, mask_url

__all__ = ["Timeouts", "client_deadline", "session_statements", "watched"]

KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 30, 10, 3
STATEMENT_HINT = 'registry.timeouts.statement_s in the spec, or "validate --statement-timeout"'
CONNECT_HINT = 'registry.timeouts.connect_s in the spec, or "validate --connect-timeout"'


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long to wait for a registry database.

    Parameters
    ----------
    connect_s : float, default=10
        Seconds to establish a connection (TCP, greeting, login).
    statement_s : float, default=600
        Seconds one statement (or one fetch of a streamed result) may run. Registry queries
        are a few aggregate and window queries over the whole registry: seconds on a
        million-patient registry, so ten minutes means something is wrong.
    """

    connect_s: float = 10.0
    statement_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("connect_s", "statement_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"Timeouts.{name} must be a positive number of seconds, "
                                 f"got {value!r}")

    def to_dict(self) -> dict[str, float]:
        return {"connect_s": self.connect_s, "statement_s": self.statement_s}


def client_deadline(timeouts: Timeouts) -> float:
    """Seconds the client waits for an answer: the server's statement timeout plus a margin
    (so that the server's own, clearer, timeout error normally arrives first)."""
    return timeouts.statement_s + 2.0 + 0.05 * timeouts.statement_s


def connect_args(backend: str, timeouts: Timeouts) -> dict[str, Any]:
    """DBAPI connect arguments bounding the connection (see the module docstring)."""
    if backend == "postgresql":
        return {"connect_timeout": max(1, math.ceil(timeouts.connect_s)), "keepalives": 1,
                "keepalives_idle": KEEPALIVE_IDLE_S,
                "keepalives_interval": KEEPALIVE_INTERVAL_S,
                "keepalives_count": KEEPALIVE_COUNT}
    # PyMySQL: the read timeout bounds the handshake; `after_connect` lengthens it
    return {"connect_timeout": timeouts.connect_s, "read_timeout": timeouts.connect_s,
            "write_timeout": client_deadline(timeouts)}


def session_statements(backend: str, dbapi_connection: Any, timeouts: Timeouts) -> list[str]:
    """The session settings run on every new connection (read-only, statement timeout)."""
    if backend == "postgresql":
        return ["SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
                f"SET statement_timeout = {math.ceil(timeouts.statement_s * 1000)}"]
    info = str(getattr(dbapi_connection, "get_server_info", lambda: "")())
    limit = (f"SET SESSION max_statement_time = {timeouts.statement_s:.3f}"
             if "mariadb" in info.lower()
             else f"SET SESSION max_execution_time = {math.ceil(timeouts.statement_s * 1000)}")
    return ["SET SESSION TRANSACTION READ ONLY", limit]


def after_connect(backend: str, dbapi_connection: Any, timeouts: Timeouts) -> None:
    """PyMySQL: from now on wait `client_deadline` for answers; shorter TCP keepalive."""
    if backend == "postgresql":
        return
    if hasattr(dbapi_connection, "_read_timeout"):  # PyMySQL has no public setter
        dbapi_connection._read_timeout = client_deadline(timeouts)
    sock = getattr(dbapi_connection, "_sock", None)
    if sock is not None and hasattr(socket, "TCP_KEEPIDLE"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)


# -- the psycopg watchdog ----------------------------------------------------------------------


class Watchdog:
    """Shuts the socket of a psycopg connection whose answer is overdue.

    One per engine. `arm` starts a timer for a DBAPI connection, `disarm` stops it; when it
    fires, the socket is shut down (``shutdown(SHUT_RDWR)`` on a duplicate of its descriptor),
    so the blocked read returns at once with a connection error, which `translate_error`
    reports as a timeout because `fired` says so.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._lock = threading.Lock()
        self._timers: dict[int, threading.Timer] = {}
        self._fired: set[int] = set()

    def arm(self, dbapi_connection: Any, seconds: float | None = None) -> None:
        fileno = getattr(dbapi_connection, "fileno", None)
        if fileno is None:
            return
        key = id(dbapi_connection)
        timer = threading.Timer(self.seconds if seconds is None else seconds, self._fire,
                                (key, weakref.ref(dbapi_connection)))
        timer.daemon = True
        with self._lock:
            old = self._timers.pop(key, None)
            self._timers[key] = timer
            self._fired.discard(key)  # a stale mark of a closed connection with the same id
        if old is not None:
            old.cancel()
        timer.start()

    def disarm(self, dbapi_connection: Any) -> None:
        with self._lock:
            timer = self._timers.pop(id(dbapi_connection), None)
        if timer is not None:
            timer.cancel()

    def fired(self, dbapi_connection: Any) -> bool:
        """Whether the timer fired for this connection (and forget it)."""
        with self._lock:
            key = id(dbapi_connection)
            if key in self._fired:
                self._fired.discard(key)
                return True
            return False

    def _fire(self, key: int, ref: weakref.ref) -> None:
        with self._lock:
            if self._timers.pop(key, None) is None:
                return  # disarmed meanwhile
            self._fired.add(key)
        conn = ref()
        if conn is None:
            return
        with contextlib.suppress(Exception):
            dup = os.dup(conn.fileno())
            with socket.socket(fileno=dup) as sock:
                sock.shutdown(socket.SHUT_RDWR)


_WATCHDOGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def install_watchdog(engine: Any, timeouts: Timeouts) -> Watchdog:
    dog = Watchdog(client_deadline(timeouts))
    _WATCHDOGS[engine] = dog
    return dog


def watched(con: Any, results: Iterator) -> Iterator:
    """Iterate a streamed result with each fetch bounded by the engine's watchdog (psycopg)."""
    dog = _WATCHDOGS.get(con.engine)
    if dog is None:
        yield from results
        return
    dbapi = con.connection.dbapi_connection
    while True:
        dog.arm(dbapi)
        try:
            item = next(results)
        except StopIteration:
            return
        finally:
            dog.disarm(dbapi)
        yield item


# -- errors ------------------------------------------------------------------------------------

_PG_TIMEOUT_STATES = {"57014"}  # query_canceled (statement_timeout)
_MYSQL_TIMEOUT_CODES = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time
_MYSQL_LOST = {2006, 2013, 2055}  # gone away, lost connection, lost connection at ...
_PEP249 = ("IntegrityError", "DataError", "ProgrammingError", "NotSupportedError",
           "InternalError", "OperationalError")


def _is_a(exc: BaseException, dbapi: Any, name: str) -> bool:
    """Whether ``exc`` is the driver's PEP 249 exception ``name``.

    duckdb-engine's DBAPI shim lacks most of these classes (its driver's exceptions still
    derive from classes so named), hence the fallback on the class names.
    """
    cls = getattr(dbapi, name, None)
    if isinstance(cls, type):
        return isinstance(exc, cls)
    return any(base.__name__ == name for base in type(exc).__mro__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return mask_secrets(line[:300])


def _code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def translate_error(context: Any, timeouts: Timeouts, watchdog: Watchdog | None,
                    dbapi_connection: Any = None, shown: str | None = None) -> None:
    """``handle_error`` hook: raise the connector error matching a DBAPI error.

    ``shown``: the registry as messages name it (default: the engine's URL, masked; an export
    folder's engine is an in-memory DuckDB database, whose URL would say nothing).
    """
    exc = context.original_exception
    if isinstance(exc, ReadOnlyViolationError | RegistryUnavailableError | RegistryQueryError):
        raise exc
    if context.dialect is None or not isinstance(exc, context.dialect.loaded_dbapi.Error):
        return  # not a database error: leave it alone
    if shown is None and context.engine is not None:
        shown = mask_url(context.engine.url)
    where = f"the registry database {shown}" if shown else "the registry database"
    connecting = context.connection is None
    if dbapi_connection is not None and watchdog is not None and watchdog.fired(
            dbapi_connection):
        raise RegistryTimeoutError(
            f"{where} stopped answering: no reply within {watchdog.seconds:g} s (statement "
            f"timeout {timeouts.statement_s:g} s; change it with {STATEMENT_HINT})")
    text = str(exc).lower()
    code = _code(exc)
    if getattr(exc, "sqlstate", None) in _PG_TIMEOUT_STATES or code in _MYSQL_TIMEOUT_CODES:
        raise RegistryTimeoutError(
            f"{where}: a query ran longer than the statement timeout of "
            f"{timeouts.statement_s:g} s and was cancelled (change it with {STATEMENT_HINT})")
    if "timeout expired" in text or "timed out" in text:
        if connecting or "can't connect" in text:
            raise RegistryTimeoutError(
                f"{where} did not answer within the connect timeout of "
                f"{timeouts.connect_s:g} s (change it with {CONNECT_HINT})")
        raise RegistryTimeoutError(
            f"{where} stopped answering: no reply within {client_deadline(timeouts):g} s "
            f"(statement timeout {timeouts.statement_s:g} s; change it with {STATEMENT_HINT})")
    dbapi = context.dialect.loaded_dbapi
    # SQLite and DuckDB run in-process: their OperationalError is a query's, not the network's
    network = context.dialect.name not in ("sqlite", "duckdb") and (
        _is_a(exc, dbapi, "OperationalError") or _is_a(exc, dbapi, "InterfaceError"))
    if connecting or context.is_disconnect or code in _MYSQL_LOST or network:
        verb = "cannot connect to" if connecting else "lost the connection to"
        raise RegistryUnavailableError(f"{verb} {where} ({_first_line(exc)})")
    pep249 = next((name for name in _PEP249 if _is_a(exc, dbapi, name)),
                  "DatabaseError")
    raise RegistryQueryError(f"{where} refused a query: {type(exc).__name__}: "
                             f"{_first_line(exc)}", pep249, _first_line(exc))
