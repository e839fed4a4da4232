"""Benchmark: `synthctl validate` (the whole check catalogue) on a 1,000,000-patient registry.

Generates a registry with `sample_data.simulator` (default 1,000,000 patients; the file is
cached in /tmp and reused), writes it to SQLite (and, with ``--pg``, to a scratch PostgreSQL
schema, dropped afterwards), then runs `connectors.quality.validate_registry` in a fresh
Python process so that its peak resident memory (VmHWM, reset at start) is its own. Reported: wall
time, peak RSS, and what validation added to the RSS after imports (the point of computing
the counts in the database: this must not grow with the registry).

Run by hand (minutes at full scale; not part of the test suite)::

    python benchmarks/bench_validate.py                  # 1M patients, SQLite
    python benchmarks/bench_validate.py --pg             # + PostgreSQL
    python benchmarks/bench_validate.py --n 100000       # quick look
    python benchmarks/bench_validate.py --registry duckdb:////tmp/reg.duckdb \
        --registry postgresql+psycopg://postgres@127.0.0.1/test#myschema --repeats 3

``--registry URL[#schema]`` (repeatable) validates registries that already exist instead of
writing one. Each figure comes with the backend's floor in the same run: a bare scan of the
same tables (`benchmarks/floor.py`), and the validation's time as a multiple of it; with
``--repeats N`` the medians of N runs (each validation in a fresh process), with the load
average at each run.

Figures of the last full run: benchmarks/README.md, section "Validation".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PG_ADMIN_URL = os.environ.get("SYNTHCTL_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1/test")


def _rss_mib() -> float:
    """Peak resident set size of this process (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Forget the peak inherited from the parent at fork (Linux >= 4.0: clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measure(url: str, schema: str | None) -> dict:
    """Validate in this process; timings, memory and the report's counts."""
    import sqlalchemy as sa  # noqa: F401

    import connectors.quality as quality  # imports before the baseline RSS

    base = _rss_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    report = quality.validate_registry(url, schema=schema)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _rss_mib()
    patients = report["conformance.unique_key.patients"].n_checked
    return {
        "registry_patients": patients,
        "rows_checked": sum(r.n_checked for r in report.results),
        "checks": len(report.results),
        "failed": sorted(r.id for r in report.results if r.status == "failed"),
        "seconds": round(seconds, 1),
        "client_cpu_seconds": round(cpu, 1),  # SQLite: the whole work; servers: the client
        "peak_rss_mib": round(peak, 1),
        "validation_rss_mib": round(peak - base, 1),
    }


def _measure_in_child(url: str, schema: str | None) -> dict:
    cmd = [sys.executable, __file__, "--measure", url]
    if schema:
        cmd += ["--schema", schema]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def _registry_figures(url: str, schema: str | None, repeats: int) -> dict:
    """Median validation time and bare-scan floor over ``repeats`` runs, interleaved."""
    from floor import bare_scan_seconds

    runs, floors, loads = [], [], []
    for _ in range(repeats):
        floors.append(bare_scan_seconds(url, schema, repeats=1)["seconds"])
        runs.append(_measure_in_child(url, schema))
        loads.append(round(os.getloadavg()[0], 1))
    out = dict(runs[-1])
    out["seconds_runs"] = [r["seconds"] for r in runs]
    out["seconds"] = _median(out["seconds_runs"])
    out["floor_seconds"] = round(_median(floors), 2)
    out["times_floor"] = round(out["seconds"] / out["floor_seconds"], 1)
    out["load_average"] = loads
    return out


def _tables(n: int, seed: int):
    from sample_data.simulator import SimulationConfig, simulate_scenario

    t0 = time.perf_counter()
    sc = simulate_scenario(SimulationConfig(seed=seed, n_registry=n))
    print(f"simulated {n} patients in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return sc.registry_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL")
    parser.add_argument("--registry", action="append", default=[],
                        help="URL[#schema] of an existing registry (repeatable)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _reset_peak()
        print(json.dumps(measure(args.measure, args.schema)))
        return

    if args.registry:
        for entry in args.registry:
            url, _, schema = entry.partition("#")
            print(json.dumps({url.split(":")[0]: _registry_figures(url, schema or None,
                                                                   args.repeats)}), flush=True)
        return

    import sqlalchemy as sa

    from sample_data.writer import write_registry, write_registry_sqlite

    path = Path(f"/tmp/synthctl_bench_validate_{args.n}_{args.seed}.sqlite")
    tables = None
    if not path.exists():
        tables = _tables(args.n, args.seed)
        t0 = time.perf_counter()
        write_registry_sqlite(tables, path.with_suffix(".tmp"), overwrite=True)
        path.with_suffix(".tmp").rename(path)
        print(f"wrote {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    results = {"sqlite": _measure_in_child(f"sqlite:///{path}", None)}
    results["sqlite"]["file_mib"] = round(path.stat().st_size / 2**20, 1)
    print(json.dumps({"sqlite": results["sqlite"]}), flush=True)
    if args.pg:
        tables = tables if tables is not None else _tables(args.n, args.seed)
        engine = sa.create_engine(PG_ADMIN_URL)
        schema = f"bench_validate_{uuid.uuid4().hex[:8]}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            t0 = time.perf_counter()
            write_registry(engine, tables, schema=schema)
            print(f"wrote PostgreSQL schema in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            del tables
            results["postgresql"] = _measure_in_child(PG_ADMIN_URL, schema)
            print(json.dumps({"postgresql": results["postgresql"]}), flush=True)
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            engine.dispose()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
