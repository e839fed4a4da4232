"""Registry extract validation: checks as data, counted by the database.

The catalogue (``checks.yaml``, Kahn's conformance / completeness / plausibility categories,
OHDSI Data Quality Dashboard style) lists each check with a severity (fatal / error /
warning) and a threshold: the share of checked rows that may fail. Each check compiles to
SQLAlchemy Core queries; the database computes the counts (per centre) and returns at most
``failure_cap`` failing rows per check, so memory stays bounded on a 10^6-patient registry.
The registry is opened read-only.

Validate an extract::

    from connectors.quality import validate_registry, write_quality_json, write_failures_csv
    report = validate_registry("sqlite:///renape.sqlite", centre=None, overrides="my.yaml")
    report.passed            # False when a fatal or error check fails its threshold
    report["plausibility.line_sequence"].n_failed

Pool checks, for the study runner (``synthctl run``)::

    from connectors.quality import run_pool_checks
    outcome = run_pool_checks(connector, pool.frame)      # or an iterable of patient ids
    if outcome.stop: ...        # fatal check failed (outcome.fatal): stop the run
    outcome.excluded            # {check_id: (patient_id, ...)}: exclude, reason = check id
    outcome.warnings            # CheckResults for the manifest / report
    outcome.to_dict()           # counts only, no patient ids

Only ``pool: true`` checks run there, restricted to the pool's patients (and, when the pool
frame carries ``pfs_days``/``os_days``, the derived-pool checks PFS <= OS and times >= 0).

Privacy: ``quality.json`` and the HTML dashboard hold counts only; ``quality_failures.csv``
holds registry keys (pseudonymous ids) and must stay inside the registry's perimeter.
"""

from connectors.quality.catalogue import (
    Catalogue,
    CheckSpec,
    QualityConfigError,
    load_catalogue,
)
from connectors.quality.pool import PoolCheckOutcome, run_pool_checks
from connectors.quality.report import (
    CentreCount,
    CheckResult,
    Failure,
    QualityReport,
    write_failures_csv,
    write_quality_json,
)
from connectors.quality.validate import QualityCheckError, validate_registry

__all__ = [
    "Catalogue",
    "CentreCount",
    "CheckResult",
    "CheckSpec",
    "Failure",
    "PoolCheckOutcome",
    "QualityCheckError",
    "QualityConfigError",
    "QualityReport",
    "load_catalogue",
    "run_pool_checks",
    "validate_registry",
    "write_failures_csv",
    "write_quality_json",
]
