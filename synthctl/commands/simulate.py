"""``synthctl simulate``: simulation study of the designs against the simulator's known truth.

Library first: the command loads the spec, calls ``synthctl.simulation.run_simulation`` and
``write_outputs``, and renders. ``--json`` prints the summary table as JSON on stdout (the
records of ``SimulationResult.summary``, NaN as null) with the paths of the files written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from synthctl.commands._common import AsJson, Debug, Quiet, guard, note, progress_for

__all__ = ["simulate"]


def simulate(
    spec: Annotated[
        Path | None,
        typer.Argument(help="Simulation spec (YAML); default: the shipped sample scenario."),
    ] = None,
    replicates: Annotated[
        int, typer.Option("--replicates", "-n", min=2, help="Number of replicates.")
    ] = 200,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("simulation"),
    n_jobs: Annotated[
        int, typer.Option("--n-jobs", "-j", help="Parallel workers (joblib; -1 = all cores).")
    ] = 1,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Study seed (default: the spec's).")
    ] = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
    debug: Debug = False,
) -> None:
    """Simulation study: bias, SEs, RMSE and CI coverage of each design against the truth."""
    result, paths = guard(debug, lambda: _run(spec, replicates, out, n_jobs, seed, quiet))
    if as_json:
        typer.echo(json.dumps(summary_json(result, paths), indent=2))
    elif not quiet:
        from synthctl.simulation.outputs import markdown_table

        typer.echo(markdown_table(result.summary))
        typer.echo(
            f"{result.replicates} replicates in {result.elapsed_seconds:.1f} s; wrote "
            f"{', '.join(p.name for p in paths.values())} to {out}"
        )


def _run(spec: Path | None, replicates: int, out: Path, n_jobs: int, seed: int | None, quiet: bool):
    from synthctl.atomic import atomic_output, preflight
    from synthctl.simulation import load_simulation_spec, run_simulation, write_outputs

    preflight(out)  # a bad or foreign --out is an error before the replicates run
    sim_spec = load_simulation_spec(spec)
    with progress_for(quiet) as progress, progress.bar("replicates", replicates) as advance:
        result = run_simulation(
            sim_spec,
            replicates=replicates,
            seed=seed,
            n_jobs=n_jobs,
            progress=lambda _done: advance(1),
        )
    with atomic_output(out, command="simulate",
                       notify=note) as work:
        written = write_outputs(result, work)
    return result, {key: Path(out) / path.name for key, path in written.items()}


def summary_json(result: Any, paths: dict[str, Path]) -> dict[str, Any]:
    """The ``--json`` document: run facts, the summary records (NaN -> null), file paths."""
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        for rec in result.summary.to_dict(orient="records")
    ]
    return {
        "name": result.spec.name,
        "seed": result.seed,
        "replicates": result.replicates,
        "truth_kind": result.spec.truth,
        "summary": records,
        "files": {k: str(p) for k, p in paths.items()},
    }
