"""``synthctl map-init``: a commented draft mapping for a new registry (read-only).

Introspects the registry's tables, columns and types, matches them to the schema, lists the
codes of low-cardinality columns with their counts (never identifiers, dates or free text)
and writes a version-2 mapping with TODO lines (`connectors.mapinit`). Then
``synthctl validate --registry URL --mapping DRAFT`` says what is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from synthctl.errors import OutputFolderError

__all__ = ["map_init", "write_draft"]

_SEAL = "# map-init sha256: "  # last line of a draft: the checksum of the lines above


def _seal(text: str) -> str:
    return f"{_SEAL}{hashlib.sha256(text.encode('utf-8')).hexdigest()}\n"


def _unedited_draft(path: Path) -> bool:
    """Whether ``path`` is a draft map-init wrote and nobody edited since (its seal holds)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    body, _, last = text.rstrip("\n").rpartition("\n")
    return last.startswith(_SEAL) and _seal(body + "\n") == last + "\n"


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise OutputFolderError(f"--out {out}: is a folder; give the draft's file name")
    if (out.exists() or out.is_symlink()) and not _unedited_draft(out):
        raise OutputFolderError(
            f"--out {out}: the file exists and is not an unedited map-init draft; map-init "
            "never overwrites a file it did not write (choose another --out, or remove it)")


def write_draft(out: Path, text: str) -> None:
    """Write the draft to ``out`` atomically, sealed with its checksum.

    ``map-init`` writes one file, not an output folder (`synthctl.atomic` governs those): an
    existing file is replaced only if it is a draft map-init wrote and nobody edited (a mapping
    being worked on is never overwritten). The draft is written beside ``out`` and renamed
    over it, so ``out`` is never half-written.

    Raises
    ------
    OutputFolderError
        ``out`` is a folder, or a file map-init did not write or that was edited since.
    """
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + _seal(text))
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
        from connectors.errors import ConnectorError
        from connectors.mapinit import draft_mapping, render
        from connectors.readonly import open_readonly_engine
        from connectors.urls import mask_url
        from synthctl.commands.validate import _as_synthctl_error

        if out is not None:
            _check_out(out)  # a bad --out is an error before the registry is read
        try:
            engine = open_readonly_engine(registry)
            try:
                return render(draft_mapping(engine, schema), mask_url(registry))
            finally:
                engine.dispose()
        except ConnectorError as exc:  # unreachable, timed out, a query refused
            raise _as_synthctl_error(exc) from exc

    text = guard(debug, go)
    if out is None:
        typer.echo(text, nl=False)
    else:
        guard(debug, lambda: write_draft(out, text))
        n_todo = text.count("TODO")
        typer.echo(f"draft mapping written to {out} ({n_todo} TODO line(s)); next: synthctl "
                   f"validate --registry ... --mapping {out}")
