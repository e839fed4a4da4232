"""Shared CLI plumbing: options, error guard (exit codes), progress, summaries."""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from synthctl.errors import SynthctlError
from synthctl.stages import NullProgress, Progress

T = TypeVar("T")

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_BUG = 0, 1, 2, 70

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
AllowRedesign = Annotated[bool, typer.Option(
    "--allow-redesign",
    help="Allow a design change after the design was locked or outcomes were analysed "
         "(recorded in the manifest and shown in the report).")]
SpecArg = Annotated[Path, typer.Argument(help="Study spec (YAML).", show_default=False,
                                         dir_okay=False)]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
NJobs = Annotated[int, typer.Option(
    "--n-jobs", "-j", min=1,
    help="Parallel workers for the bootstrap (results are identical for any number).")]


def guard(debug: bool, fn: Callable[[], T]) -> T:
    """Run ``fn``; map errors to exit codes (2 user error, 70 bug) and one-paragraph messages.

    SIGTERM/SIGHUP and SIGINT end the command cleanly: no partial output (the temporary folder
    is removed; a signal during the final swap is acted on once the new folder is in place),
    parallel workers stopped, exit code 143 / 130. Workers started inside also die with this
    process after a ``kill -9`` (`synthctl.signals.worker_guard`).
    """
    from synthctl.signals import (
        EXIT_SIGINT,
        EXIT_SIGTERM,
        Terminated,
        termination_raises,
        worker_guard,
    )

    try:
        with termination_raises(), worker_guard():
            return fn()
    except SynthctlError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except (Terminated, KeyboardInterrupt) as exc:
        signame = str(exc) if isinstance(exc, Terminated) else "interrupted (SIGINT)"
        typer.echo(f"{signame}: stopped; no partial output was written", err=True)
        raise typer.Exit(EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT) from None
    except typer.Exit:
        raise
    except Exception as exc:  # a bug: say so, and how to get the traceback
        if debug:
            traceback.print_exc()
        else:
            typer.echo(f"internal error (a bug in synthctl): {type(exc).__name__}: {exc}\n"
                       "Rerun with --debug for the traceback and report it.", err=True)
        raise typer.Exit(EXIT_BUG) from None


class RichProgress:
    """Progress bars and spinners on stderr (rich)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichBar

        self._progress = RichBar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=False)

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        task = self._progress.add_task(description, total=1)
        yield
        self._progress.update(task, completed=1)

    @contextlib.contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        task = self._progress.add_task(description, total=total)
        yield lambda n=1: self._progress.advance(task, n)
        self._progress.update(task, completed=total)


@contextlib.contextmanager
def progress_for(quiet: bool) -> Iterator[Progress]:
    """Rich progress on stderr when it is a terminal and not ``--quiet``; else nothing."""
    if quiet or not sys.stderr.isatty():
        yield NullProgress()
        return
    with RichProgress() as p:
        yield p


def print_summary(result, *, as_json: bool, quiet: bool) -> None:
    """The end-of-run summary: JSON on stdout with ``--json``, a short text otherwise."""
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return
    if quiet:
        return
    from rich.console import Console

    console = Console(highlight=False)
    console.print(f"[bold]{result.manifest.get('study', '')}[/bold]: stages "
                  f"{', '.join(result.stages)} done in {result.folder}")
    res = result.results
    if res and "analyze" in result.stages:
        n = res["counts"]
        console.print(f"  trial {n['trial']} (analysed {n['trial_selected']}), registry pool "
                      f"{n['control_pool']}, synthetic control {n['control_selected']} "
                      f"(ESS {_f(n.get('control_ess'), 1)})")
        for name, ep in res["endpoints"].items():
            for lm in ep.get("landmarks", []):
                console.print(f"  {name} at {lm['time']:g} {lm['unit']}: trial "
                              f"{_pct(lm['trial'])}, control {_pct(lm['control'])}")
            hr = ep.get("hazard_ratio") or {}
            if hr:
                console.print(f"  hazard ratio {_f(hr.get('estimate'))} "
                              f"({_f(hr.get('lower'))} to {_f(hr.get('upper'))})")
    for w in result.manifest.get("warnings", []):
        console.print(f"  [yellow]warning[/yellow] ({w['stage']}): {w['message']}")
    if result.exit_code == EXIT_CHECK_FAILED:
        console.print("  [red]balance threshold not met[/red]: the report says so (exit code 1)")
    if result.report is not None:
        console.print(f"  report: {result.report}")


def _f(x: Any, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if isinstance(x, int | float) else "NA"


def _pct(est: dict | None) -> str:
    if not est or not isinstance(est.get("estimate"), int | float):
        return "NA"
    lo, hi = est.get("lower"), est.get("upper")
    ci = (f" ({100 * lo:.1f}-{100 * hi:.1f}%)"
          if isinstance(lo, int | float) and isinstance(hi, int | float) else "")
    return f"{100 * est['estimate']:.1f}%{ci}"


def note(message: str) -> None:
    """A note on stderr (e.g. the repair of an interrupted earlier run)."""
    typer.echo(f"note: {message}", err=True)


def run_stages(spec: Path, out: Path, stages: tuple[str, ...], *, allow_redesign: bool,
               quiet: bool, as_json: bool, debug: bool, n_jobs: int = 1) -> None:
    """Shared body of ``run``/``extract``/``design``/``analyze``/``demo``."""
    from synthctl.runner import run_study

    def go():
        with progress_for(quiet or as_json) as progress:
            return run_study(spec, out, stages=stages, allow_redesign=allow_redesign,
                             progress=progress, n_jobs=n_jobs, notify=note)

    result = guard(debug, go)
    print_summary(result, as_json=as_json, quiet=quiet)
    raise typer.Exit(result.exit_code)
