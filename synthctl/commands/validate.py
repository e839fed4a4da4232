"""``synthctl validate``: check a registry extract, read-only, and write the quality outputs.

Writes ``quality.json`` (counts per check and centre), ``quality_failures.csv`` (failing rows
with registry keys: keep it inside the registry's perimeter) and ``quality.html`` (the
dashboard, counts only). Exit code 1 when a fatal or error check fails its threshold, 0
otherwise, 2 on bad input (unreachable registry, bad mapping or check file).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from connectors.timeouts import Timeouts
from synthctl.errors import DataError, RegistryConnectionError, SpecError
from synthctl.outdir import QUALITY_FAILURES, QUALITY_FILES, QUALITY_HTML, QUALITY_JSON

__all__ = ["validate"]

EXIT_OK, EXIT_CHECK_FAILED = 0, 1
_DEFAULTS = Timeouts()


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
                   schema: str | None = None, cutoff: dt.date | None = None,
                   notify: Callable[[str], None] | None = None, timeouts=None):
    """Validate and write the three outputs into ``out``; returns the `QualityReport`.

    ``out`` is written like every output folder (`synthctl.atomic.atomic_output`): refused if
    it holds files synthctl did not write, replaced atomically on success only.
    """
    from connectors.errors import ConnectorError
    from connectors.quality import validate_registry, write_failures_csv, write_quality_json
    from synthctl.atomic import atomic_output, preflight
    from synthctl.quality_html import write_quality_html

    preflight(out)  # a bad or foreign --out is an error before the registry is read

    try:
        report = validate_registry(registry, mapping=mapping, centre=centre, overrides=checks,
                                   cutoff_date=cutoff, schema=schema, timeouts=timeouts)
    except ConnectorError as exc:
        raise _as_synthctl_error(exc) from exc
    with atomic_output(out, command="validate", notify=notify) as work:
        write_quality_json(report, work / QUALITY_JSON)
        write_failures_csv(report, work / QUALITY_FAILURES)
        write_quality_html(report, work / QUALITY_HTML)
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
    connect_timeout: Annotated[float | None, typer.Option(
        "--connect-timeout", min=0.001, show_default=False,
        help=f"Seconds to wait for the database to connect (default {_DEFAULTS.connect_s:g}).")]
        = None,
    statement_timeout: Annotated[float | None, typer.Option(
        "--statement-timeout", min=0.001, show_default=False,
        help=f"Seconds one query may run (default {_DEFAULTS.statement_s:g}).")] = None,
) -> None:
    """Validate a registry extract: conformance, completeness, plausibility (read-only)."""
    from synthctl.commands._common import guard, note

    def go():
        try:
            cutoff_date = dt.date.fromisoformat(cutoff) if cutoff else None
        except ValueError:
            raise SpecError(f"--cutoff: expected a date YYYY-MM-DD, got {cutoff!r}") from None
        timeouts = Timeouts(connect_s=connect_timeout or _DEFAULTS.connect_s,
                            statement_s=statement_timeout or _DEFAULTS.statement_s)
        return run_validation(registry, out, mapping=mapping, centre=centre, checks=checks,
                              schema=schema, cutoff=cutoff_date, notify=note,
                              timeouts=timeouts)

    report = guard(debug, go)
    if as_json:
        summary = {key: value for key, value in report.to_dict().items() if key != "checks"}
        summary["failed_checks"] = [
            {k: r[k] for k in ("id", "severity", "n_checked", "n_failed", "share_failed",
                               "threshold")}
            for r in report.to_dict()["checks"] if r["status"] == "failed"
        ]
        summary["files"] = {name: str(out / name) for name in QUALITY_FILES}
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(report.summary())
        typer.echo(f"outputs in {out}")
    raise typer.Exit(EXIT_OK if report.passed else EXIT_CHECK_FAILED)
