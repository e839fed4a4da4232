"""The one place a study's registry connection and index rule are built from its spec.

Every stage that reads the registry (extract; analyze for outcomes and the all-lines
sensitivity analysis) calls these, so the URL, mapping, schema and index rule are read from
the spec in one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from synthctl.spec import StudySpec

if TYPE_CHECKING:
    from connectors.registry import IndexRule, RegistryConnector


def registry_connector(spec: StudySpec) -> RegistryConnector:
    """A `RegistryConnector` on the spec's ``registry:`` (use it as a context manager)."""
    from connectors.registry import RegistryConnector

    reg = spec.registry
    if reg is None:
        raise ValueError("the study has no registry: source (it reads a flat file)")
    return RegistryConnector(reg.url, mapping=reg.mapping, schema=reg.schema_,
                             timeouts=reg.connector_timeouts())


def index_rule(spec: StudySpec, *,
               selection: Literal["first", "all"] | None = None) -> IndexRule:
    """The spec's index rule; ``selection`` overrides ``registry.index.selection``."""
    from connectors.registry import IndexRule

    reg = spec.registry
    if reg is None:
        raise ValueError("the study has no registry: source (it reads a flat file)")
    return IndexRule(after_regimen=reg.index.after_regimen,
                     selection=selection or reg.index.selection)
