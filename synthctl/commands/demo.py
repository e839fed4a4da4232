"""``synthctl demo [--out DIR]``: the shipped demo study (sample registry + 27-patient trial)."""

from __future__ import annotations

from pathlib import Path

from synthctl.commands._common import AsJson, Debug, NJobs, OutOpt, Quiet, run_stages
from synthctl.runner import STAGES


def demo(out: OutOpt = Path("synthctl_demo"), quiet: Quiet = False, as_json: AsJson = False,
         debug: Debug = False, n_jobs: NJobs = 1) -> None:
    """Run the demo study end to end on the shipped sample registry and print the report path."""
    from sample_data.paths import DEMO_SPEC

    run_stages(Path(DEMO_SPEC), out, STAGES, allow_redesign=False, quiet=quiet,
               as_json=as_json, debug=debug, n_jobs=n_jobs)
