"""``synthctl export-adam RUN_DIR``: the analysed study as ADaM, with its R re-analysis program.

Writes ``adam/`` (ADSL, ADTTE as SAS XPORT v5 and CSV, ``define.csv``) and ``reanalysis.R``
into the run folder, through its ownership/atomic machinery (`synthctl.adam_export`); the
manifest lists them with their SHA-256. Then ``Rscript RUN_DIR/reanalysis.R`` re-derives
results.json's primary numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from synthctl.commands._common import AsJson, Debug, Quiet, guard, note
from synthctl.outdir import REANALYSIS_R

RunDir = Annotated[Path, typer.Argument(help="An analysed run folder (synthctl run/analyze).",
                                        show_default=False, file_okay=False)]
SpecOpt = Annotated[Path | None, typer.Option(
    "--spec", help="The study spec the folder was analysed with (default: the one its "
                   "manifest records; its SHA-256 must match).", dir_okay=False)]


def export_adam(run_dir: RunDir, spec: SpecOpt = None, quiet: Quiet = False,
                as_json: AsJson = False, debug: Debug = False) -> None:
    """Export the analysed study as ADaM (ADSL, ADTTE; XPT v5 + CSV) with reanalysis.R."""
    from synthctl.adam_export import export_adam as run_export

    result = guard(debug, lambda: run_export(run_dir, spec=spec, notify=note))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    elif not quiet:
        typer.echo(f"ADaM export in {result.folder}: ADSL {result.n_adsl} subjects, ADTTE "
                   f"{result.n_adtte} records")
        for name in result.artifacts:
            typer.echo(f"  {name}")
        typer.echo(f"re-derive results.json in R: Rscript {result.folder / REANALYSIS_R}")
