"""``synthctl simulate``: simulation study of the designs against the simulator's known truth.

Library first: the command loads the spec, calls ``synthctl.simulation.run_simulation`` and
``write_outputs``, and renders. ``--json`` prints the summary table as JSON on stdout (the
same records as ``SimulationResult.to_dict()["summary"]``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from synthctl.errors import SynthctlError

__all__ = ["simulate"]


def simulate(
    spec: Annotated[
        Path | None,
        typer.Argument(help="Simulation spec (YAML); default: the shipped sample scenario."),
    ] = None,
    replicates: Annotated[
        int, typer.Option("--replicates", "-n", min=2, help="Number of replicates.")
    ] = 200,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("simulation"),
    n_jobs: Annotated[
        int, typer.Option("--n-jobs", "-j", help="Parallel workers (joblib; -1 = all cores).")
    ] = 1,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Study seed (default: the spec's).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Run a simulation study: bias, SEs, RMSE and coverage of each design against the truth."""
    from synthctl.simulation import load_simulation_spec, run_simulation, write_outputs

    try:
        sim_spec = load_simulation_spec(spec)
        if quiet or as_json:
            result = run_simulation(sim_spec, replicates=replicates, seed=seed, n_jobs=n_jobs)
        else:
            result = _run_with_progress(sim_spec, replicates, seed, n_jobs)
        paths = write_outputs(result, out)
    except SynthctlError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    if as_json:
        records = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
            for rec in result.summary.to_dict(orient="records")
        ]
        typer.echo(
            json.dumps(
                {"summary": records, "files": {k: str(p) for k, p in paths.items()}}, default=str
            )
        )
    elif not quiet:
        from synthctl.simulation.outputs import markdown_table

        typer.echo(markdown_table(result.summary))
        typer.echo(f"wrote {', '.join(p.name for p in paths.values())} to {out}")


def _run_with_progress(spec, replicates: int, seed: int | None, n_jobs: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from synthctl.simulation import run_simulation

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("replicates", total=replicates)
        return run_simulation(
            spec,
            replicates=replicates,
            seed=seed,
            n_jobs=n_jobs,
            progress=lambda done: bar.update(task, completed=done),
        )
