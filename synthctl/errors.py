"""Error hierarchy for the I/O layers (`connectors`, `synthctl`).

The CLI maps every `SynthctlError` to exit code 2 with a one-paragraph message (traceback
only with ``--debug``). Messages name the file, line, column or row, what was expected and
what was found.
"""

from __future__ import annotations


class SynthctlError(Exception):
    """Base class for errors a user can fix (bad input, bad spec, unreachable database)."""

    exit_code = 2


class SpecError(SynthctlError):
    """The study spec is invalid (unknown key, wrong type, unknown covariate, missing file)."""


class DataError(SynthctlError):
    """Input data are invalid (malformed trial file, schema mismatch, impossible values)."""


class RegistryConnectionError(SynthctlError):
    """The registry database cannot be reached or opened read-only."""


class DesignChangedError(SynthctlError):
    """``analyze`` found that the locked design (design.json or the spec's design) changed."""


class OutputFolderError(SynthctlError):
    """``--out`` cannot be written: foreign files in it, another run holds it, not a folder."""
