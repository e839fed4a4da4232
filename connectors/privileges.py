"""Could the registry role write? Checked at connect, warned about, recorded in the manifest.

synthctl never writes (`connectors.readonly`), but a role that *could* write is one bug or one
stolen connector away from damage: registry administrators should give synthctl a role with
SELECT only. `check_role` asks the database what the connected role may do:

- PostgreSQL: superuser or ``CREATEROLE``/``CREATEDB``; ``CREATE`` on the schema; ``INSERT``,
  ``UPDATE``, ``DELETE`` or ``TRUNCATE`` on any table of the schema (``has_table_privilege``,
  which counts ownership and inherited role membership);
- MariaDB/MySQL: ``SHOW GRANTS`` for the current user: any write privilege (``ALL``,
  ``INSERT``, ``UPDATE``, ``DELETE``, ``CREATE``, ``DROP``, ``ALTER``...) on ``*.*``, the
  registry's database or one of its tables (privileges held only through a role that is not
  the user's current role are not seen);
- SQLite: the file is opened read-only (``mode=ro``): the role cannot write through synthctl.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connectors.errors import RegistryQueryError

__all__ = ["RegistryWritableWarning", "RoleCheck", "check_role"]

_LISTED = 5  # privileges named in the warning (all are in the manifest)
_MYSQL_WRITE = {
    "ALL", "ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX",
    "CREATE VIEW", "TRIGGER", "CREATE ROUTINE", "ALTER ROUTINE", "EXECUTE", "FILE", "SUPER",
    "CREATE TEMPORARY TABLES", "LOCK TABLES", "EVENT", "DELETE HISTORY", "CREATE USER",
}
_WARNED: set[tuple[str, str]] = set()
_GRANT = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<obj>.+?) TO ", re.I | re.S)


class RegistryWritableWarning(UserWarning):
    """The registry role has write privileges (synthctl still never writes)."""


@dataclass(frozen=True, slots=True)
class RoleCheck:
    """What the connected database role may do.

    Attributes
    ----------
    role : str
        The database user ("" for SQLite).
    can_write : bool or None
        True when the role holds any write privilege on the registry; None when it could not
        be determined (the reason is in ``privileges``).
    privileges : tuple of str
        The write privileges found, e.g. ``"INSERT on renape.patients"``, ``"superuser"``.
    """

    role: str
    can_write: bool | None
    privileges: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """For the manifest: role, can_write, privileges."""
        return {"role": self.role, "can_write": self.can_write,
                "privileges": list(self.privileges)}

    def warning(self, where: str) -> str | None:
        """The warning text when the role could write (None otherwise)."""
        if self.can_write is not True:
            return None
        shown = ", ".join(self.privileges[:_LISTED])
        more = f" and {len(self.privileges) - _LISTED} more" if len(
            self.privileges) > _LISTED else ""
        return (f"{where}: the database role {self.role!r} can write to the registry ({shown}"
                f"{more}). synthctl only reads, but use a read-only role (SELECT only) for it.")


def check_role(con: sa.Connection, schema: str | None, where: str) -> RoleCheck:
    """Check the role's write privileges on ``con``; warn (`RegistryWritableWarning`) if any.

    Parameters
    ----------
    con : sqlalchemy.Connection
        A read-only connection of the connector.
    schema : str, optional
        PostgreSQL schema / MariaDB database of the registry; default the connection's.
    where : str
        The registry as shown in messages (URL without password).
    """
    name = con.dialect.name
    try:
        if name == "postgresql":
            result = _postgresql(con, schema)
        elif name in ("mysql", "mariadb"):
            result = _mysql(con, schema)
        else:
            result = RoleCheck("", False, ())
    except RegistryQueryError as exc:  # e.g. catalogue hidden from the role: say so, go on
        return RoleCheck("", None, (f"not checked: {exc.reason}",))
    text = result.warning(where)
    if text and (where, result.role) not in _WARNED:  # once per registry and role
        _WARNED.add((where, result.role))
        warnings.warn(text, RegistryWritableWarning, stacklevel=3)
    return result


def _postgresql(con: sa.Connection, schema: str | None) -> RoleCheck:
    role, superuser, createrole, createdb, schema_name = con.execute(sa.text(
        "SELECT current_user, r.rolsuper, r.rolcreaterole, r.rolcreatedb, "
        "coalesce(CAST(:schema AS text), current_schema()) "
        "FROM pg_catalog.pg_roles r WHERE r.rolname = current_user"),
        {"schema": schema}).one()
    found: list[str] = []
    if superuser:
        found.append("superuser")
    if createrole:
        found.append("CREATEROLE")
    if createdb:
        found.append("CREATEDB")
    rows = con.execute(sa.text(
        "SELECT has_schema_privilege(n.oid, 'CREATE'), c.relname, "
        "has_table_privilege(c.oid, 'INSERT'), has_table_privilege(c.oid, 'UPDATE'), "
        "has_table_privilege(c.oid, 'DELETE'), has_table_privilege(c.oid, 'TRUNCATE') "
        "FROM pg_catalog.pg_namespace n LEFT JOIN pg_catalog.pg_class c "
        "ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') "
        "WHERE n.nspname = :schema ORDER BY c.relname"), {"schema": schema_name}).all()
    if rows and rows[0][0]:
        found.append(f"CREATE on schema {schema_name}")
    for _, table, *privs in rows:
        held = [p for p, ok in zip(("INSERT", "UPDATE", "DELETE", "TRUNCATE"), privs,
                                   strict=True) if ok]
        if table is not None and held:
            found.append(f"{'/'.join(held)} on {schema_name}.{table}")
    return RoleCheck(str(role), bool(found), tuple(found))


def _mysql(con: sa.Connection, schema: str | None) -> RoleCheck:
    user, database = con.execute(sa.text("SELECT CURRENT_USER(), DATABASE()")).one()
    database = schema or database
    found: list[str] = []
    for (line,) in con.execute(sa.text("SHOW GRANTS")).all():
        m = _GRANT.match(str(line))
        if not m:
            continue  # GRANT role TO user: the role's own grants are listed when active
        obj = m["obj"].replace("`", "").strip()
        db, _, _table = obj.partition(".")
        if db not in ("*", database):
            continue
        privs = [p.strip().upper() for p in re.split(r",(?![^(]*\))", m["privs"])]
        held = [p for p in privs if re.sub(r"\s*\(.*\)", "", p) in _MYSQL_WRITE]
        if held:
            found.append(f"{', '.join(held)} on {obj}")
    return RoleCheck(str(user), bool(found), tuple(found))
