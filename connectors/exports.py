"""DuckDB: a registry in a DuckDB file, or a folder of CSV / Parquet export files.

URLs (``connectors.readonly.open_readonly_engine`` hands them here):

- ``duckdb:///path/registry.duckdb``: a DuckDB database file, opened with
  ``read_only=True`` (DuckDB itself refuses every write);
- ``parquet:///path/to/folder`` and ``csv:///path/to/folder``: one file per table
  (``patients.parquet``, ``treatment_lines.csv``...; the file stem is the table name the
  mapping uses), queried in place through views of an in-memory DuckDB database. DuckDB
  only ever reads the files (``read_parquet`` / ``read_csv``); nothing is loaded into memory
  beyond what a query needs. CSV files are read with ISO dates detected as dates and every
  other text left as text (a ``dd/mm/yyyy`` column is declared in the mapping).

As for the other backends, a relative path after ``///`` is relative to the working folder
(a study spec resolves it against the spec's folder) and ``////`` starts an absolute one.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.ext.compiler import compiles

from connectors.errors import RegistryUnavailableError
from connectors.readonly import days_between

FOLDER_FORMATS = {"parquet": "read_parquet", "csv": "read_csv"}
#: DuckDB's working memory cap (it spills larger sorts and windows to ``temp_directory``);
#: its default, 80% of the machine's RAM, is not "memory follows the pool".
MEMORY_LIMIT = "1GB"
BACKENDS = ("duckdb", *FOLDER_FORMATS)


@compiles(days_between, "duckdb")
def _days_duckdb(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(date_diff('day', CAST({start} AS DATE), CAST({end} AS DATE)) AS DOUBLE)"


def export_tables(folder: Path, fmt: str) -> dict[str, Path]:
    """Table name -> file of an export folder (``<table>.<fmt>``)."""
    return {p.stem: p for p in sorted(folder.glob(f"*.{fmt}")) if p.is_file()}


def duckdb_engine(u: sa.URL, shown: str) -> sa.Engine:
    """A read-only DuckDB engine for a ``duckdb://``, ``parquet://`` or ``csv://`` URL.

    Raises
    ------
    RegistryUnavailableError
        DuckDB not installed, no such file or folder, a folder without export files.
    """
    backend = u.get_backend_name()
    path = Path(u.database or "").expanduser()
    if not u.database or u.database == ":memory:":
        raise RegistryUnavailableError(
            f"registry {shown}: give a file or folder, e.g. duckdb:///registry.duckdb or "
            "parquet:///exports"
        )
    try:
        import duckdb  # noqa: F401  (the driver; duckdb-engine provides the dialect)
    except ImportError:
        raise RegistryUnavailableError(
            f"registry {shown}: DuckDB is not installed (pip install duckdb duckdb-engine)"
        ) from None
    if backend == "duckdb":
        if not path.is_file():
            raise RegistryUnavailableError(f"registry {shown}: no such DuckDB file {path}")
        return _create(f"duckdb:///{path.resolve()}", shown, {"read_only": True,
                                                             "config": _config()})
    if not path.is_dir():
        raise RegistryUnavailableError(f"registry {shown}: no such folder {path}")
    files = export_tables(path, backend)
    if not files:
        raise RegistryUnavailableError(
            f"registry {shown}: no *.{backend} file in {path} (one file per table, e.g. "
            f"patients.{backend})"
        )
    engine = _create("duckdb:///:memory:", shown, {"config": _config()})
    reader = FOLDER_FORMATS[backend]
    options = ", dateformat = '%Y-%m-%d', header = true" if backend == "csv" else ""

    def create_views(dbapi_connection, connection_record) -> None:
        for table, file in files.items():
            name = table.replace('"', '""')
            location = str(file.resolve()).replace("'", "''")
            dbapi_connection.execute(
                f"CREATE VIEW \"{name}\" AS SELECT * FROM {reader}('{location}'{options})"
            )
        dbapi_connection.execute("SET lock_configuration = true")

    event.listen(engine, "connect", create_views)
    return engine


def _config() -> dict[str, str]:
    import tempfile

    return {"memory_limit": MEMORY_LIMIT,
            "temp_directory": str(Path(tempfile.gettempdir()) / "synthctl_duckdb")}


def _create(url: str, shown: str, connect_args: dict) -> sa.Engine:
    try:
        # each pooled connection of a folder is its own in-memory database with the views
        return sa.create_engine(url, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise RegistryUnavailableError(
            f"registry {shown}: DuckDB's SQLAlchemy dialect is not available "
            f"({type(exc).__name__}); pip install duckdb-engine"
        ) from None
