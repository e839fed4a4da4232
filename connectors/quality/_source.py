"""Where the checks read from: a read-only engine, the logical tables, the date difference.

`open_source` accepts a URL, an `Engine` or a `connectors.registry.RegistryConnector`. URLs
are opened with `connectors.readonly.open_readonly_engine` (read-only session + statement
guard); date differences use `connectors.readonly.days_between`, the connectors' one
dialect-portable construct; mappings are read by `connectors.mapping.load_mapping`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.mapping import RegistryMapping, load_mapping
from connectors.readonly import days_between, open_readonly_engine, safe_url
from connectors.recode import logical_views
from connectors.schema import build_metadata


@dataclass(frozen=True, slots=True)
class Source:
    """A read-only view of the registry for the checks (logical table names).

    ``tables`` are the logical views (recoded values, `connectors.recode.logical_views`);
    ``physical`` the tables as stored, for the structural checks.
    """

    engine: sa.Engine
    tables: Mapping[str, Any]
    schema: str | None
    label: str  # URL without password, for the report
    owns_engine: bool
    physical: Mapping[str, sa.Table] = None  # type: ignore[assignment]
    mapping: RegistryMapping = field(default_factory=RegistryMapping)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @staticmethod
    def days_between(start, end) -> sa.ColumnElement:
        """``end - start`` in days (float; NULL when either is NULL)."""
        return days_between(start, end)

    def close(self) -> None:
        if self.owns_engine:
            self.engine.dispose()


def open_source(
    url_or_connector: Any,
    mapping: str | Path | Mapping[str, Any] | None = None,
    schema: str | None = None,
) -> Source:
    """Open the registry read-only (or reuse a connector's engine and tables)."""
    if isinstance(url_or_connector, str | sa.URL):
        engine, owns = open_readonly_engine(url_or_connector), True
        label = safe_url(url_or_connector)
    elif isinstance(url_or_connector, sa.Engine):
        engine, owns = url_or_connector, False
        label = safe_url(engine.url)
    else:
        return _from_connector(url_or_connector)
    loaded = load_mapping(mapping)
    _, physical = build_metadata(loaded, schema=schema, with_constraints=False)
    return Source(engine, logical_views(physical, loaded), schema, label, owns, physical, loaded)


def _from_connector(conn: Any) -> Source:
    """Reuse a `RegistryConnector`'s read-only engine, mapping and schema."""
    engine = getattr(conn, "engine", None)
    if not isinstance(engine, sa.Engine):
        raise TypeError(
            "expected a registry URL, an Engine or a RegistryConnector, "
            f"got {type(conn).__name__}"
        )
    schema = getattr(conn, "schema", None)
    loaded = load_mapping(getattr(conn, "mapping", None))
    _, physical = build_metadata(loaded, schema=schema, with_constraints=False)
    label = getattr(conn, "url", None) or safe_url(engine.url)
    return Source(engine, logical_views(physical, loaded), schema, str(label), False, physical,
                  loaded)
