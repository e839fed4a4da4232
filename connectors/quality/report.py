"""Results of the checks: `CheckResult`, `QualityReport` and the output writers.

``quality.json`` holds counts only (per check and per centre). ``quality_failures.csv`` holds
the failing rows (table, registry key, centre, check id, offending values): registry keys
are pseudonymous patient/record ids, so the file must stay inside the registry's perimeter
(the registry's own secure storage), like the extract itself. Neither is ever logged.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("passed", "failed", "not_applicable")
FAILURE_COLUMNS = ("table", "key", "centre", "check_id", "values")


@dataclass(frozen=True, slots=True)
class CentreCount:
    """Rows checked and failed in one centre (``centre`` None: rows without a known centre)."""

    centre: str | None
    n_checked: int
    n_failed: int

    @property
    def share_failed(self) -> float | None:
        return self.n_failed / self.n_checked if self.n_checked else None

    def to_dict(self) -> dict[str, Any]:
        return {"centre": self.centre, "n_checked": self.n_checked, "n_failed": self.n_failed,
                "share_failed": self.share_failed}


@dataclass(frozen=True, slots=True)
class Failure:
    """One failing row: table, registry key, centre, check id and offending values."""

    table: str
    key: str
    centre: str | None
    check_id: str
    values: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one check.

    ``share_failed`` = n_failed / n_checked (rows of ``table``, or patients/columns where the
    description says so); the check fails when it exceeds ``threshold``. ``capped`` is True
    when more rows failed than the per-check cap kept in ``failures``.
    """

    id: str
    category: str
    table: str
    description: str
    severity: str
    threshold: float
    n_checked: int
    n_failed: int
    status: str
    capped: bool = False
    failure_cap: int = 0
    per_centre: tuple[CentreCount, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    failures: tuple[Failure, ...] = field(default=(), repr=False)

    @property
    def share_failed(self) -> float | None:
        return self.n_failed / self.n_checked if self.n_checked else None

    @property
    def passed(self) -> bool:
        return self.status != "failed"

    @property
    def blocking(self) -> bool:
        """A fatal or error check that failed its threshold (exit code 1)."""
        return self.status == "failed" and self.severity in ("fatal", "error")

    def to_dict(self) -> dict[str, Any]:
        """Counts only: no row keys (those go to the failures CSV)."""
        return {
            "id": self.id, "category": self.category, "table": self.table,
            "description": self.description, "severity": self.severity,
            "threshold": self.threshold, "n_checked": self.n_checked,
            "n_failed": self.n_failed, "share_failed": self.share_failed,
            "status": self.status, "passed": self.passed, "capped": self.capped,
            "failure_cap": self.failure_cap, "n_failures_listed": len(self.failures),
            "per_centre": [c.to_dict() for c in self.per_centre],
            "metrics": dict(self.metrics), "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class QualityReport:
    """The validation of one registry extract.

    ``passed`` is False when any fatal or error check failed its threshold. Dates are ISO
    strings: ``cutoff_date`` is the data cut-off (follow-up staleness), ``extraction_date``
    the date after which any date is "in the future".
    """

    passed: bool
    results: tuple[CheckResult, ...]
    registry: str
    centre: str | None
    cutoff_date: str
    extraction_date: str
    failure_cap: int

    def __getitem__(self, check_id: str) -> CheckResult:
        for result in self.results:
            if result.id == check_id:
                return result
        raise KeyError(check_id)

    @property
    def counts(self) -> dict[str, int]:
        out = {status: 0 for status in STATUSES}
        for result in self.results:
            out[result.status] += 1
        out["blocking"] = sum(r.blocking for r in self.results)
        return out

    def iter_failures(self) -> Iterator[Failure]:
        for result in self.results:
            yield from result.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1, "passed": self.passed, "registry": self.registry,
            "centre": self.centre, "cutoff_date": self.cutoff_date,
            "extraction_date": self.extraction_date, "failure_cap": self.failure_cap,
            "counts": self.counts, "checks": [r.to_dict() for r in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """A short text summary: counts, then the failed checks."""
        c = self.counts
        lines = [
            f"Registry {self.registry}: {'PASSED' if self.passed else 'FAILED'} "
            f"({c['passed']} passed, {c['failed']} failed, {c['not_applicable']} not applicable)"
        ]
        for r in self.results:
            if r.status == "failed":
                lines.append(
                    f"  {r.severity:<7} {r.id}: {r.n_failed}/{r.n_checked} "
                    f"({(r.share_failed or 0):.2%} > {r.threshold:.2%})"
                )
                if r.note:
                    lines.append(f"          {r.note[:500]}")
        return "\n".join(lines)


def write_quality_json(report: QualityReport, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(report.to_json() + "\n", encoding="utf-8")
    return path


def write_failures_csv(report: QualityReport, path: str | Path) -> Path:
    """Write the failing rows (registry keys: keep the file inside the registry perimeter)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FAILURE_COLUMNS)
        for f in report.iter_failures():
            writer.writerow((f.table, f.key, "" if f.centre is None else f.centre,
                             f.check_id, f.values))
    return path
