"""The check catalogue: data (``checks.yaml``), overridable per registry.

A check is declared once in the shipped ``checks.yaml`` (id, Kahn category, table,
description, severity, threshold, kind and parameters). A registry adapts the catalogue with a
small override file, in the spirit of the OHDSI Data Quality Dashboard's threshold files::

    checks:
      completeness.missing.diagnoses.ki67_percent: {threshold: 0.6}
      plausibility.age_unusual: {severity: error}
      completeness.follow_up_stale: {enabled: false}
    failure_cap: 500        # failing rows kept per check (default 100)

Unknown check ids, unknown keys and out-of-range values are errors (`QualityConfigError`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from connectors.errors import ConnectorError

CATEGORIES = ("conformance", "completeness", "plausibility")
SEVERITIES = ("fatal", "error", "warning")
DEFAULT_FAILURE_CAP = 100
_OVERRIDABLE = {"threshold", "severity", "enabled"}
_CHECK_KEYS = {"id", "category", "table", "description", "severity", "threshold", "kind",
               "parameters", "pool"}


class QualityConfigError(ConnectorError):
    """The check catalogue or an override file is malformed (names file, check and key)."""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One check of the catalogue.

    ``threshold`` is the share of checked rows (0-1) that may fail before the check fails;
    ``pool`` marks checks the study pipeline runs on the candidate pool.
    """

    id: str
    category: str
    table: str
    description: str
    severity: str
    threshold: float
    kind: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    pool: bool = False
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Catalogue:
    """An ordered set of checks plus the per-check failing-row cap."""

    checks: tuple[CheckSpec, ...]
    failure_cap: int = DEFAULT_FAILURE_CAP

    def __getitem__(self, check_id: str) -> CheckSpec:
        for spec in self.checks:
            if spec.id == check_id:
                return spec
        raise KeyError(check_id)

    @property
    def enabled(self) -> tuple[CheckSpec, ...]:
        return tuple(spec for spec in self.checks if spec.enabled)

    def with_overrides(self, overrides: Mapping[str, Any] | str | Path | None) -> Catalogue:
        """Return the catalogue with ``overrides`` (dict or YAML path) applied."""
        if overrides is None:
            return self
        where = "overrides"
        if isinstance(overrides, (str, Path)):
            where = str(overrides)
            overrides = _read_yaml(Path(overrides))
        return _apply_overrides(self, overrides, where)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QualityConfigError(f"cannot read check file {path}: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise QualityConfigError(f"{path}: not valid YAML: {exc}") from exc


def _check_threshold(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise QualityConfigError(f"{where}: threshold must be a number in [0, 1], got {value!r}")
    if not (0.0 <= float(value) <= 1.0) or math.isnan(float(value)):
        raise QualityConfigError(f"{where}: threshold must be in [0, 1], got {value!r}")
    return float(value)


def _check_severity(value: Any, where: str) -> str:
    if value not in SEVERITIES:
        raise QualityConfigError(f"{where}: severity must be one of {SEVERITIES}, got {value!r}")
    return value


def _parse_check(raw: Any, where: str) -> CheckSpec:
    if not isinstance(raw, Mapping):
        raise QualityConfigError(f"{where}: each check must be a mapping, got {raw!r}")
    unknown = set(raw) - _CHECK_KEYS
    missing = {"id", "category", "table", "description", "severity", "threshold", "kind"} - set(
        raw
    )
    if unknown or missing:
        raise QualityConfigError(
            f"{where}: check {raw.get('id', '?')!r}: unknown keys {sorted(unknown)}, "
            f"missing keys {sorted(missing)}"
        )
    here = f"{where}: check {raw['id']!r}"
    if raw["category"] not in CATEGORIES:
        raise QualityConfigError(f"{here}: category must be one of {CATEGORIES}")
    return CheckSpec(
        id=str(raw["id"]),
        category=raw["category"],
        table=str(raw["table"]),
        description=str(raw["description"]).strip(),
        severity=_check_severity(raw["severity"], here),
        threshold=_check_threshold(raw["threshold"], here),
        kind=str(raw["kind"]),
        parameters=dict(raw.get("parameters") or {}),
        pool=bool(raw.get("pool", False)),
    )


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load a catalogue file (default: the shipped ``checks.yaml``)."""
    if path is None:
        where = "connectors/quality/checks.yaml"
        raw = yaml.safe_load(resources.files(__package__).joinpath("checks.yaml").read_text())
    else:
        where = str(path)
        raw = _read_yaml(Path(path))
    if not isinstance(raw, Mapping) or not isinstance(raw.get("checks"), list):
        raise QualityConfigError(f"{where}: expected a mapping with a 'checks' list")
    checks = tuple(_parse_check(item, where) for item in raw["checks"])
    seen: set[str] = set()
    for spec in checks:
        if spec.id in seen:
            raise QualityConfigError(f"{where}: duplicate check id {spec.id!r}")
        seen.add(spec.id)
    cap = raw.get("failure_cap", DEFAULT_FAILURE_CAP)
    return Catalogue(checks, _check_cap(cap, where))


def _check_cap(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise QualityConfigError(f"{where}: failure_cap must be an integer >= 0, got {value!r}")
    return value


def _apply_overrides(catalogue: Catalogue, raw: Any, where: str) -> Catalogue:
    if raw is None:
        return catalogue
    if not isinstance(raw, Mapping) or set(raw) - {"checks", "failure_cap"}:
        raise QualityConfigError(
            f"{where}: expected a mapping with keys 'checks' and/or 'failure_cap', got "
            f"{sorted(raw) if isinstance(raw, Mapping) else type(raw).__name__}"
        )
    by_id = {spec.id: spec for spec in catalogue.checks}
    changes = raw.get("checks") or {}
    if not isinstance(changes, Mapping):
        raise QualityConfigError(f"{where}: 'checks' must map check ids to settings")
    for check_id, settings in changes.items():
        if check_id not in by_id:
            raise QualityConfigError(
                f"{where}: unknown check id {check_id!r} (see `synthctl validate` output or "
                "connectors/quality/checks.yaml for the ids)"
            )
        here = f"{where}: check {check_id!r}"
        if not isinstance(settings, Mapping) or set(settings) - _OVERRIDABLE:
            raise QualityConfigError(
                f"{here}: settings must be a mapping of {sorted(_OVERRIDABLE)}, got {settings!r}"
            )
        update: dict[str, Any] = {}
        if "threshold" in settings:
            update["threshold"] = _check_threshold(settings["threshold"], here)
        if "severity" in settings:
            update["severity"] = _check_severity(settings["severity"], here)
        if "enabled" in settings:
            if not isinstance(settings["enabled"], bool):
                raise QualityConfigError(f"{here}: enabled must be true or false")
            update["enabled"] = settings["enabled"]
        by_id[check_id] = replace(by_id[check_id], **update)
    cap = _check_cap(raw.get("failure_cap", catalogue.failure_cap), where)
    return Catalogue(tuple(by_id[spec.id] for spec in catalogue.checks), cap)
