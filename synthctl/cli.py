"""The ``synthctl`` command line (typer + rich). One module per command in `synthctl.commands`.

Exit codes: 0 ok; 1 a declared check failed (balance threshold not met, validation errors):
the outputs are still written and say so; 2 bad input (`SynthctlError`: one paragraph, no
traceback unless ``--debug``); 70 a bug.
"""

from __future__ import annotations

import typer

from synthctl.commands.demo import demo
from synthctl.commands.export_adam import export_adam
from synthctl.commands.init import init
from synthctl.commands.map_init import map_init
from synthctl.commands.platform import platform
from synthctl.commands.run import run
from synthctl.commands.simulate import simulate
from synthctl.commands.stages import analyze, design, extract
from synthctl.commands.validate import validate

app = typer.Typer(
    name="synthctl",
    help="Synthetic historical control arms from registries for single-arm trials.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(demo)
app.command()(run)
app.command()(extract)
app.command()(design)
app.command()(analyze)
app.command("export-adam")(export_adam)
app.command()(init)


app.command()(validate)
app.command(name="map-init")(map_init)
app.command()(simulate)
app.command()(platform)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
