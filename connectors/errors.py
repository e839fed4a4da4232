"""Errors raised by the connectors.

`connectors` may not import `synthctl`, so it has its own small hierarchy; the study runner
re-raises these as `synthctl.errors.DataError` / `SpecError` / `RegistryConnectionError`
with the stage added (``raise DataError(...) from exc``). Each message names the file, table,
column or row, what was expected and what was found.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class of the connectors' errors."""


class RegistrySchemaError(ConnectorError):
    """The registry lacks tables or columns of the (mapped) schema."""


class RegistryUnavailableError(ConnectorError):
    """The registry database cannot be reached or opened read-only."""


class ReadOnlyViolationError(ConnectorError):
    """Something tried to write to the registry through the connector."""


class CriterionError(ConnectorError):
    """An eligibility criterion is malformed, unsafe or names an unknown column."""


class TrialDataError(ConnectorError):
    """A trial file (ADaM ADSL/ADTTE, CSV or XPT) is malformed."""


class FollowUpError(ConnectorError):
    """Index dates that contradict a data cut-off (indexed after it, or missing)."""


class MappingError(ConnectorError):
    """A schema mapping file is malformed or names unknown schema elements."""


class RegistryTimeoutError(RegistryUnavailableError):
    """The registry database did not answer within a connect or statement timeout."""


class RegistryQueryError(ConnectorError):
    """The registry database refused a (read) query: its message, password masked.

    ``dbapi_class`` is the PEP 249 class of the database's error ("ProgrammingError",
    "DataError", ...), ``reason`` its first line.
    """

    def __init__(self, message: str, dbapi_class: str = "DatabaseError", reason: str = ""):
        super().__init__(message)
        self.dbapi_class, self.reason = dbapi_class, reason
