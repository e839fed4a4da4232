"""Scratch PostgreSQL schemas and MariaDB databases for the `db` tests.

Each test gets its own uniquely named schema (PostgreSQL) or database (MariaDB) on the
services at 127.0.0.1, dropped afterwards; the URLs can be overridden by environment.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

PG_URL = os.environ.get("SYNTHCTL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("SYNTHCTL_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextmanager
def scratch_pg_schema(prefix: str = "synthctl") -> Iterator[tuple[str, sa.Engine]]:
    """A fresh PostgreSQL schema: (name, admin engine on PG_URL); dropped afterwards."""
    engine = sa.create_engine(PG_URL)
    name = _unique(prefix)
    with engine.begin() as con:
        con.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        yield name, engine
    finally:
        with engine.begin() as con:
            con.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        engine.dispose()


@contextmanager
def scratch_mariadb_database(prefix: str = "synthctl") -> Iterator[tuple[str, sa.Engine]]:
    """A fresh MariaDB database: (name, admin engine on MARIADB_URL); dropped afterwards."""
    engine = sa.create_engine(MARIADB_URL)
    name = _unique(prefix)
    with engine.begin() as con:
        con.exec_driver_sql(f"CREATE DATABASE `{name}`")
    try:
        yield name, engine
    finally:
        with engine.begin() as con:
            con.exec_driver_sql(f"DROP DATABASE `{name}`")
        engine.dispose()


def mariadb_url(database: str) -> str:
    """MARIADB_URL pointed at ``database``."""
    return sa.make_url(MARIADB_URL).set(database=database).render_as_string(hide_password=False)
