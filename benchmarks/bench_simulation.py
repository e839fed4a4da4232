"""Full simulation study (by hand, not in CI): the shipped spec, >= 500 replicates.

    python benchmarks/bench_simulation.py --replicates 500 --n-jobs 2 --out /tmp/simulation
    python benchmarks/bench_simulation.py --equal-schedules --replicates 500 --out /tmp/sim_eq

Same as ``synthctl simulate [SPEC] --replicates N --out DIR``; prints the markdown table
that goes into benchmarks/README.md ("Simulation study") and the wall time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from synthctl.simulation import load_simulation_spec, run_simulation, write_outputs
    from synthctl.simulation.outputs import markdown_table

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", nargs="?", type=Path, default=None)
    ap.add_argument("--replicates", type=int, default=500)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("/tmp/synthctl_simulation"))
    ap.add_argument(
        "--equal-schedules",
        action="store_true",
        help="registry imaged on the trial's schedule (6 weeks +/- 3 days), judged against "
        "the trial-schedule truth",
    )
    args = ap.parse_args(argv)
    spec = load_simulation_spec(args.spec)
    if args.equal_schedules:
        spec = spec.model_copy(
            update={
                "name": "sample scenario, equal schedules, trial-schedule truth",
                "scenario": {
                    **spec.scenario,
                    "registry_interval_weeks": [6.0, 6.0],
                    "registry_visit_window_days": 3,
                },
                "truth": "trial_schedule",
            }
        )
    done = [0]

    def progress(n: int) -> None:
        if n % 50 == 0 or n == args.replicates:
            print(f"  {n}/{args.replicates}", flush=True)
        done[0] = n

    result = run_simulation(
        spec, replicates=args.replicates, seed=args.seed, n_jobs=args.n_jobs, progress=progress
    )
    write_outputs(result, args.out)
    print(
        f"{spec.name}: {args.replicates} replicates, seed {result.seed}, truth {spec.truth}, "
        f"{result.elapsed_seconds:.0f} s with {args.n_jobs} workers"
    )
    print("truth:", {k: round(v, 4) for k, v in result.truth.items()})
    print(markdown_table(result.summary))
    print(f"outputs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
