"""What a registry database holds: its tables/views and their columns with types.

SQLAlchemy's inspector everywhere, except on DuckDB, where ``information_schema`` is asked
directly (the DuckDB dialect's inspector reads PostgreSQL catalogs DuckDB does not have).
"""

from __future__ import annotations

import contextlib

import sqlalchemy as sa


def relations(con: sa.Connection, schema: str | None) -> set[str]:
    """Names of the tables and views of ``schema`` (default schema when None)."""
    if con.dialect.name == "duckdb":
        stmt = sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                       "coalesce(:schema, current_schema())")
        return {r[0] for r in con.execute(stmt, {"schema": schema})}
    inspector = sa.inspect(con)
    names = set(inspector.get_table_names(schema=schema))
    with contextlib.suppress(NotImplementedError):  # every supported dialect has views
        names |= set(inspector.get_view_names(schema=schema))
    return names


def columns(con: sa.Connection, table: str, schema: str | None) -> list[tuple[str, str]]:
    """(name, type as the database spells it, upper case) of a table's or view's columns."""
    if con.dialect.name == "duckdb":
        stmt = sa.text("SELECT column_name, data_type FROM information_schema.columns WHERE "
                       "table_schema = coalesce(:schema, current_schema()) AND table_name = "
                       ":table ORDER BY ordinal_position")
        return [(r[0], str(r[1]).upper()) for r in con.execute(stmt, {"schema": schema,
                                                                      "table": table})]
    return [(c["name"], str(c["type"]).upper())
            for c in sa.inspect(con).get_columns(table, schema=schema)]
