"""What every stage receives, and the mapping of library errors to synthctl errors."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from synthctl.errors import DataError, RegistryConnectionError, SpecError, SynthctlError
from synthctl.manifest import Manifest

# artifact names, re-exported for the stages: `synthctl.outdir` owns the output folder contract
from synthctl.outdir import (
    ATTRITION,
    COHORT,
    COVARIATES,
    DESIGN,
    EXTRACT_INFO,
    KM_FIGURE,
    LOVE_PLOT,
    PS_OVERLAP,
    REPORT,
    RESULTS,
)
from synthctl.spec import StudySpec
from synthctl.specfile import LoadedSpec

__all__ = ["ATTRITION", "COHORT", "COVARIATES", "DESIGN", "EXTRACT_INFO", "KM_FIGURE",
           "LOVE_PLOT", "PS_OVERLAP", "REPORT", "RESULTS", "NullProgress", "Progress",
           "StageContext", "stage_errors"]


class Progress(Protocol):
    """Progress display used by the stages (a rich one in the CLI, a silent one otherwise)."""

    def step(self, description: str) -> contextlib.AbstractContextManager[None]: ...

    def bar(self, description: str, total: int) -> contextlib.AbstractContextManager[
        Callable[[int], None]]: ...


class NullProgress:
    """Progress that shows nothing (library use, ``--quiet``, no TTY)."""

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n=1: None


@dataclass
class StageContext:
    """The loaded spec, the working folder, the manifest being built and a progress display."""

    loaded: LoadedSpec
    folder: Path
    manifest: Manifest
    progress: Progress = field(default_factory=NullProgress)
    allow_redesign: bool = False
    n_jobs: int = 1  # bootstrap workers: an execution choice, not part of the analysis

    @property
    def spec(self) -> StudySpec:
        return self.loaded.spec


@contextlib.contextmanager
def stage_errors(stage: str, loaded: LoadedSpec, where: str = "") -> Iterator[None]:
    """Re-raise connector/matching/estimation errors as synthctl errors naming the stage.

    Messages are scrubbed of every value substituted from the environment (passwords).
    """
    from connectors.errors import ConnectorError, CriterionError, RegistryUnavailableError
    from matching import MatchingError
    from reports.errors import EstimationError

    prefix = f"{stage} stage" + (f" ({where})" if where else "")
    try:
        yield
    except SynthctlError as exc:
        exc.args = tuple(loaded.scrub(str(a)) for a in exc.args)
        raise
    except RegistryUnavailableError as exc:
        raise RegistryConnectionError(f"{prefix}: {loaded.scrub(str(exc))}") from None
    except CriterionError as exc:
        raise SpecError(f"{prefix}: eligibility: {loaded.scrub(str(exc))}") from exc
    except ConnectorError as exc:
        raise DataError(f"{prefix}: {loaded.scrub(str(exc))}") from exc
    except (MatchingError, EstimationError) as exc:
        raise DataError(f"{prefix}: {loaded.scrub(str(exc))}") from exc
