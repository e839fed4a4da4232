"""``synthctl run SPEC --out DIR``: every stage, extract -> design -> analyze -> report."""

from __future__ import annotations

from synthctl.commands._common import (
    AllowRedesign,
    AsJson,
    Debug,
    ExportAdam,
    NJobs,
    OutOpt,
    Quiet,
    SpecArg,
    run_stages,
)
from synthctl.runner import STAGES


def run(spec: SpecArg, out: OutOpt, allow_redesign: AllowRedesign = False, quiet: Quiet = False,
        as_json: AsJson = False, debug: Debug = False, n_jobs: NJobs = 1,
        export_adam: ExportAdam = False) -> None:
    """Run a study end to end into an output folder (written atomically)."""
    run_stages(spec, out, STAGES, allow_redesign=allow_redesign, quiet=quiet, as_json=as_json,
               debug=debug, n_jobs=n_jobs, export_adam=export_adam)
