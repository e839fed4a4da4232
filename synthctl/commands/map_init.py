"""``synthctl map-init``: a commented draft mapping for a new registry (read-only).

Introspects the registry's tables, columns and types, matches them to the schema, lists the
codes of low-cardinality columns with their counts (never identifiers, dates or free text)
and writes a version-2 mapping with TODO lines (`connectors.mapinit`). Then
``synthctl validate --registry URL --mapping DRAFT`` says what is left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthctl.errors import RegistryConnectionError

__all__ = ["map_init"]


def map_init(
    registry: Annotated[str, typer.Option(
        "--registry", help="Registry URL (opened read-only): sqlite:///, duckdb:///, "
        "postgresql+psycopg://, mysql+pymysql://, parquet:///folder, csv:///folder.",
        show_default=False)],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the draft here (default: print it).")] = None,
    schema: Annotated[str | None, typer.Option(
        "--schema", help="Database schema holding the registry tables.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Draft a mapping file for a registry: tables, columns, types and codes, with TODOs."""
    from synthctl.commands._common import guard

    def go() -> str:
        from connectors.errors import RegistryUnavailableError
        from connectors.mapinit import draft_mapping, render
        from connectors.readonly import open_readonly_engine
        from connectors.urls import mask_url

        try:
            engine = open_readonly_engine(registry)
        except RegistryUnavailableError as exc:
            raise RegistryConnectionError(str(exc)) from exc
        try:
            return render(draft_mapping(engine, schema), mask_url(registry))
        finally:
            engine.dispose()

    text = guard(debug, go)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        n_todo = text.count("TODO")
        typer.echo(f"draft mapping written to {out} ({n_todo} TODO line(s)); next: synthctl "
                   f"validate --registry ... --mapping {out}")
