"""Where the checks read from: a read-only engine, the logical tables, the date difference.

`open_source` accepts a URL, an `Engine` or a `connectors.registry.RegistryConnector`. URLs
are opened with `connectors.readonly.open_readonly_engine` (read-only session + statement
guard); date differences use `connectors.readonly.days_between`, the connectors' one
dialect-portable construct; mappings are read by `connectors.mapping.load_mapping`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.mapping import RegistryMapping, load_mapping
from connectors.readonly import days_between, open_readonly_engine
from connectors.recode import logical_views
from connectors.schema import build_metadata
from connectors.timeouts import Timeouts
from connectors.urls import mask_url


@dataclass(frozen=True, slots=True)
class Source:
    """A read-only view of the registry for the checks (logical table names).

    ``connect()`` opens a read-only connection (a connector's, or one of an engine opened by
    `open_readonly_engine`); a connector's engine is never handed out. ``tables`` are the
    logical views (recoded values, `connectors.recode.logical_views`); ``physical`` the tables
    as stored, for the structural checks.
    """

    connect: Callable[[], sa.Connection]
    dialect: str
    tables: Mapping[str, Any]
    schema: str | None
    label: str  # URL without password, for the report
    dispose: Callable[[], None] | None
    physical: Mapping[str, sa.Table] = None  # type: ignore[assignment]
    mapping: RegistryMapping = field(default_factory=RegistryMapping)

    @staticmethod
    def days_between(start, end) -> sa.ColumnElement:
        """``end - start`` in days (float; NULL when either is NULL)."""
        return days_between(start, end)

    def close(self) -> None:
        if self.dispose is not None:
            self.dispose()


def open_source(
    url_or_connector: Any,
    mapping: str | Path | Mapping[str, Any] | None = None,
    schema: str | None = None,
    timeouts: Timeouts | None = None,
) -> Source:
    """Open the registry read-only (or reuse a connector's connections and tables).

    ``timeouts`` (`connectors.timeouts.Timeouts`) apply to a URL; a connector has its own.
    """
    if isinstance(url_or_connector, str | sa.URL):
        engine = open_readonly_engine(url_or_connector, timeouts)
        dispose: Callable[[], None] | None = engine.dispose
        label = mask_url(url_or_connector)
    elif isinstance(url_or_connector, sa.Engine):
        engine, dispose = url_or_connector, None
        label = mask_url(engine.url)
    else:
        return _from_connector(url_or_connector)
    loaded = load_mapping(mapping)
    _, physical = build_metadata(loaded, schema=schema, with_constraints=False)
    return Source(engine.connect, engine.dialect.name, logical_views(physical, loaded), schema,
                  label, dispose, physical, loaded)


def _from_connector(conn: Any) -> Source:
    """Reuse a `RegistryConnector`'s read-only connections, mapping and schema."""
    connect = getattr(conn, "connection", None)
    if not callable(connect) or not isinstance(getattr(conn, "dialect", None), str):
        raise TypeError(
            "expected a registry URL, an Engine or a RegistryConnector, "
            f"got {type(conn).__name__}"
        )
    schema = getattr(conn, "schema", None)
    loaded = load_mapping(getattr(conn, "mapping", None))
    _, physical = build_metadata(loaded, schema=schema, with_constraints=False)
    return Source(connect, conn.dialect, logical_views(physical, loaded), schema, str(conn.url),
                  None, physical, loaded)
