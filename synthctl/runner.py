"""The study runner: maps a spec onto the stages and writes the output folder atomically.

``run_study(spec, out)`` runs extract -> design -> analyze -> report in a temporary folder beside
``out`` and swaps it in only when all succeeded. A single stage (``stages=("design",)``) starts
from a copy of the existing folder. The design lock is enforced here: ``analyze`` refuses when
design.json, cohort.csv or the spec's design part changed since the design stage, and no stage
may change the design of a folder whose outcomes were already analysed, unless
``allow_redesign`` (which re-runs extract and design, and is recorded in the manifest and the
report).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthctl.atomic import atomic_output, resolve_out
from synthctl.errors import DesignChangedError, SynthctlError
from synthctl.manifest import Manifest
from synthctl.outdir import MANIFEST, REPORT, read_json, read_results
from synthctl.specfile import LoadedSpec, load_spec
from synthctl.stages._context import NullProgress, Progress, StageContext

STAGES = ("extract", "design", "analyze", "report")


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run produced.

    Attributes
    ----------
    folder : Path
        The output folder (final location).
    exit_code : int
        0 ok; 1 a declared check failed (balance threshold not met; the report still says so).
    stages : tuple of str
        The stages that ran.
    results : dict or None
        ``results.json`` content when analyze ran (or was already in the folder).
    manifest : dict
        ``manifest.json`` content.
    """

    folder: Path
    exit_code: int
    stages: tuple[str, ...]
    results: dict[str, Any] | None
    manifest: dict[str, Any] = field(repr=False)

    @property
    def report(self) -> Path | None:
        path = self.folder / REPORT
        return path if path.is_file() else None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` summary: folder, exit code, stages, counts and results."""
        return {"folder": str(self.folder), "exit_code": self.exit_code,
                "stages": list(self.stages), "report": str(self.report) if self.report else None,
                "warnings": self.manifest.get("warnings", []), "results": self.results}


def run_study(
    spec: str | Path | LoadedSpec,
    out: str | Path,
    *,
    stages: Sequence[str] = STAGES,
    allow_redesign: bool = False,
    progress: Progress | None = None,
    n_jobs: int = 1,
    notify: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the given stages of a study into ``out``.

    Parameters
    ----------
    spec : str, Path or LoadedSpec
        The study spec (YAML path).
    out : str or Path
        Output folder. Written atomically; an existing synthctl folder is replaced on success.
    stages : sequence of str, default=all four
        Subset of ``("extract", "design", "analyze", "report")``, run in that order.
    allow_redesign : bool, default=False
        Allow a design change after the design was locked or the outcomes were analysed.
    n_jobs : int, default=1
        Parallel workers for the bootstrap; the results do not depend on it.
    notify : callable, optional
        Receives a message for each repair of an earlier interrupted run on ``out`` (they are
        also recorded in the manifest's warnings).

    Raises
    ------
    SynthctlError
        Bad spec or data (SpecError, DataError, RegistryConnectionError) or a changed design
        (DesignChangedError); the output folder is then left as it was.
    """
    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(spec)
    order = [s for s in STAGES if s in set(stages)]
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}")
    from synthctl.stages.analyze import run_analyze
    from synthctl.stages.design import run_design
    from synthctl.stages.extract import run_extract
    from synthctl.stages.report import run_report

    fns = {"extract": run_extract, "design": run_design, "analyze": run_analyze,
           "report": run_report}
    full = order == list(STAGES)
    exit_code = 0
    target = resolve_out(out)
    recovered: list[str] = []

    def note(message: str) -> None:
        recovered.append(message)
        if notify is not None:
            notify(message)

    command = "run" if full else "+".join(order)
    with atomic_output(target, command=command, start_from_existing=not full,
                       notify=note) as work, _named_as(work, target):
        previous = Manifest.load_or_new(target)  # read under the folder's lock
        manifest = Manifest.load_or_new(work)
        manifest.set_study(loaded, allow_redesign=allow_redesign)
        if previous.data.get("redesigns"):
            manifest.data["redesigns"] = list(previous.data["redesigns"])
        for message in recovered:
            manifest.warn("output", message, kind="recovered")
        _check_outcomes_not_seen(previous, manifest, loaded, order, allow_redesign)
        ctx = StageContext(loaded, work, manifest, progress or NullProgress(), allow_redesign,
                           n_jobs)
        ran: list[str] = []
        for stage in order:
            if stage == "analyze" and "design" not in ran:
                ran += _enforce_design_lock(ctx, fns)
            exit_code = max(exit_code, fns[stage](ctx) or 0)
            ran.append(stage)
        manifest.save(work)
        results = read_results(work)
        manifest_data = read_json(work / MANIFEST)
    return RunResult(target, exit_code, tuple(ran), results, manifest_data)


@contextlib.contextmanager
def _named_as(work: Path, target: Path) -> Iterator[None]:
    """Errors name the output folder, not the temporary folder the stages work in."""
    try:
        yield
    except SynthctlError as exc:
        exc.args = tuple(str(a).replace(str(work), str(target)) for a in exc.args)
        raise


def _check_outcomes_not_seen(previous: Manifest, manifest: Manifest, loaded: LoadedSpec,
                             order: list[str], allow_redesign: bool) -> None:
    """No stage may change the design of a folder whose outcomes were already analysed.

    With ``allow_redesign`` the change is recorded in the new manifest (old and new hashes).
    """
    stages = previous.data.get("stages", {})
    if "analyze" not in stages or not ({"extract", "design"} & set(order)):
        return
    locked = stages.get("design", {}).get("spec_design_sha256")
    if locked == loaded.spec.design_hash():
        return
    if allow_redesign:
        manifest.record_redesign(previous.data, loaded.spec.design_hash(),
                                 ["the spec's design part (seed, eligibility, covariates, "
                                  "design) changed after the outcomes were analysed"])
        return
    raise DesignChangedError(
        "the outcomes of this output folder were already analysed with another design "
        "(the spec's seed, eligibility, covariates or design changed). Changing the design "
        "after seeing the outcomes must be explicit: rerun with --allow-redesign (it is "
        "recorded in the manifest and shown in the report) or write to a new --out folder."
    )


def _enforce_design_lock(ctx: StageContext, fns) -> list[str]:
    """Before analyze reads outcomes: the locked design must be unchanged (or re-run)."""
    from synthctl.stages.extract import registry_pool_changes

    changes = ctx.manifest.check_design_lock(ctx.folder, ctx.spec.design_hash())
    changes += registry_pool_changes(ctx)
    if not changes:
        return []
    if not ctx.allow_redesign:
        raise DesignChangedError(
            "analyze refused: the design changed since it was locked ("
            + "; ".join(changes)
            + "). Run `synthctl design` again before any outcome is read, or pass "
            "--allow-redesign to re-run the design now (recorded in the manifest and report)."
        )
    ctx.manifest.record_redesign(copy.deepcopy(ctx.manifest.data), ctx.spec.design_hash(),
                                 changes)
    fns["extract"](ctx)
    fns["design"](ctx)
    return ["extract", "design"]
