"""``synthctl validate``: check a registry extract, read-only, and write the quality outputs.

Writes ``quality.json`` (counts per check and centre), ``quality_failures.csv`` (failing rows
with registry keys: keep it inside the registry's perimeter) and ``quality.html`` (the
dashboard, counts only). Exit code 1 when a fatal or error check fails its threshold, 0
otherwise, 2 on bad input (unreachable registry, bad mapping or check file).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from synthctl.errors import DataError, RegistryConnectionError, SpecError

__all__ = ["validate"]

EXIT_OK, EXIT_CHECK_FAILED = 0, 1


def _as_synthctl_error(exc: Exception) -> Exception:
    from connectors.errors import ConnectorError, MappingError, RegistryUnavailableError
    from connectors.quality import QualityConfigError

    if isinstance(exc, RegistryUnavailableError):
        return RegistryConnectionError(str(exc))
    if isinstance(exc, MappingError | QualityConfigError):
        return SpecError(str(exc))
    if isinstance(exc, ConnectorError):
        return DataError(str(exc))
    return exc


def run_validation(registry: str, out: Path, *, mapping: Path | None = None,
                   centre: str | None = None, checks: Path | None = None,
                   schema: str | None = None, cutoff: dt.date | None = None):
    """Validate and write the three outputs into ``out``; returns the `QualityReport`."""
    from connectors.errors import ConnectorError
    from connectors.quality import validate_registry, write_failures_csv, write_quality_json
    from synthctl.quality_html import write_quality_html

    try:
        report = validate_registry(registry, mapping=mapping, centre=centre, overrides=checks,
                                   cutoff_date=cutoff, schema=schema)
    except ConnectorError as exc:
        raise _as_synthctl_error(exc) from exc
    out.mkdir(parents=True, exist_ok=True)
    write_quality_json(report, out / "quality.json")
    write_failures_csv(report, out / "quality_failures.csv")
    write_quality_html(report, out / "quality.html")
    return report


def validate(
    registry: Annotated[str, typer.Option(
        "--registry", help="Registry database URL (opened read-only), e.g. sqlite:///r.sqlite.",
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("quality"),
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", help="Mapping file (docs/mapping.md): names, codes, types, units, "
        "absent columns; checks run on the recoded values, plus a count of unmapped codes.")]
        = None,
    centre: Annotated[str | None, typer.Option(
        "--centre", help="Validate one centre's patients only.")] = None,
    checks: Annotated[Path | None, typer.Option(
        "--checks", help="Check overrides YAML: thresholds, severities, disabled checks.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    schema: Annotated[str | None, typer.Option(
        "--schema", help="Database schema holding the registry tables.")] = None,
    cutoff: Annotated[str | None, typer.Option(
        "--cutoff", help="Data cut-off date (YYYY-MM-DD); default: the latest last contact.")]
        = None,
) -> None:
    """Validate a registry extract: conformance, completeness, plausibility (read-only)."""
    from synthctl.commands._common import guard

    def go():
        try:
            cutoff_date = dt.date.fromisoformat(cutoff) if cutoff else None
        except ValueError:
            raise SpecError(f"--cutoff: expected a date YYYY-MM-DD, got {cutoff!r}") from None
        return run_validation(registry, out, mapping=mapping, centre=centre, checks=checks,
                              schema=schema, cutoff=cutoff_date)

    report = guard(debug, go)
    if as_json:
        summary = {key: value for key, value in report.to_dict().items() if key != "checks"}
        summary["failed_checks"] = [
            {k: r[k] for k in ("id", "severity", "n_checked", "n_failed", "share_failed",
                               "threshold")}
            for r in report.to_dict()["checks"] if r["status"] == "failed"
        ]
        summary["files"] = {name: str(out / name) for name in
                            ("quality.json", "quality_failures.csv", "quality.html")}
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(report.summary())
        typer.echo(f"outputs in {out}")
    raise typer.Exit(EXIT_OK if report.passed else EXIT_CHECK_FAILED)
