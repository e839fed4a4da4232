"""``synthctl init [DIR]``: write a commented study spec template and say what to do next."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

TEMPLATE = "study_template.yaml"


def init(
    folder: Annotated[Path, typer.Argument(help="Folder for study.yaml.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing study.yaml.")]
    = False,
) -> None:
    """Write a commented study spec (study.yaml) to fill in."""
    target = folder / "study.yaml"
    if target.exists() and not force:
        typer.echo(f"error: {target} exists (use --force to overwrite)", err=True)
        raise typer.Exit(2)
    folder.mkdir(parents=True, exist_ok=True)
    text = resources.files("synthctl").joinpath("templates", TEMPLATE).read_text("utf-8")
    target.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {target}\n"
               "Next: edit it (sources, eligibility, covariates, design, analysis), then\n"
               f"  synthctl run {target} --out results/\n"
               "Tip: `synthctl demo` runs a complete example study first.")
