"""``synthctl extract|design|analyze SPEC --out DIR``: one stage at a time on the same folder.

``analyze`` also renders the report. Each command starts from a copy of the folder and swaps it
in only on success, like ``run``.
"""

from __future__ import annotations

from synthctl.commands._common import (
    AllowRedesign,
    AsJson,
    Debug,
    NJobs,
    OutOpt,
    Quiet,
    SpecArg,
    run_stages,
)


def extract(spec: SpecArg, out: OutOpt, allow_redesign: AllowRedesign = False,
            quiet: Quiet = False, as_json: AsJson = False, debug: Debug = False) -> None:
    """Extract the candidate pool and the trial arm (covariates only) and the attrition."""
    run_stages(spec, out, ("extract",), allow_redesign=allow_redesign, quiet=quiet,
               as_json=as_json, debug=debug)


def design(spec: SpecArg, out: OutOpt, allow_redesign: AllowRedesign = False,
           quiet: Quiet = False, as_json: AsJson = False, debug: Debug = False) -> None:
    """Fit the propensity score, match or weight, check balance; lock design.json."""
    run_stages(spec, out, ("design",), allow_redesign=allow_redesign, quiet=quiet,
               as_json=as_json, debug=debug)


def analyze(spec: SpecArg, out: OutOpt, allow_redesign: AllowRedesign = False,
            quiet: Quiet = False, as_json: AsJson = False, debug: Debug = False,
            n_jobs: NJobs = 1) -> None:
    """Read the outcomes, compare the arms on the locked design, write the report."""
    run_stages(spec, out, ("analyze", "report"), allow_redesign=allow_redesign, quiet=quiet,
               as_json=as_json, debug=debug, n_jobs=n_jobs)
