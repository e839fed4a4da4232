"""Benchmark: candidate-pool extraction from a large registry (SQLite and PostgreSQL).

Generates a registry with `sample_data.simulator` (default 1,000,000 patients), writes it to a
SQLite file in /tmp and to a scratch PostgreSQL schema, then times
``RegistryConnector.candidate_pool`` for eligibility criteria of decreasing selectivity. Each
extraction runs in a fresh Python process so that its peak resident memory
(``VmHWM`` of ``/proc/self/status``) belongs to it alone; the figure reported is
the peak minus the resident size after imports and connecting (what the extraction added).
Memory must follow the *eligible pool*: the same registry with stricter criteria should need
less, and a 10x larger registry with the same pool size about the same.

Run by hand (minutes at full scale; one core; not part of the test suite)::

    python benchmarks/bench_extract.py                      # 1M patients, SQLite + PostgreSQL
    python benchmarks/bench_extract.py --n 100000 --no-pg   # quick look

Figures of the last full run are in benchmarks/README.md, section "Extraction".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("SYNTHCTL_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1/test")
SCENARIOS = {  # name -> eligibility criteria (selectivity decreasing)
    "all index lines": [],
    "trial criteria": [
        "age_at_index >= 18", "age_at_index <= 80", "ecog_at_index <= 1",
        "histology in ['epithelioid', 'biphasic']", "not prior_immunotherapy",
    ],
    "narrow (~1%)": ["ecog_at_index == 0", "histology == 'biphasic'", "pci < 10",
                     "crs_hipec", "pfi_months >= 6"],
}


def _status_mib(field: str) -> float:
    """VmHWM (peak) or VmRSS (current) of this process, MiB.

    Not ``getrusage().ru_maxrss``: Linux carries it across ``execve``, so a child started by a
    3 GB parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB


def measure(url: str, schema: str | None, scenario: str, outcomes: bool) -> dict:
    """One extraction, in this process; returns timings and memory."""
    from connectors.registry import IndexRule, RegistryConnector

    conn = RegistryConnector(url, schema=schema)
    conn.check_schema()
    base = _status_mib("VmRSS")
    t0 = time.perf_counter()
    pool = conn.candidate_pool(IndexRule(), eligibility=SCENARIOS[scenario],
                               include_outcomes=outcomes)
    seconds = time.perf_counter() - t0
    peak = _status_mib("VmHWM")
    conn.close()
    return {
        "scenario": scenario,
        "outcomes": outcomes,
        "pool_rows": len(pool.frame),
        "registry_patients": pool.attrition.n_start,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak, 1),
        "extraction_rss_mib": round(peak - base, 1),
        "frame_mib": round(pool.frame.memory_usage(deep=True).sum() / 2**20, 1),
    }


def _measure_in_child(url: str, schema: str | None, scenario: str, outcomes: bool) -> dict:
    cmd = [sys.executable, __file__, "--measure", url, "--scenario", scenario]
    if schema:
        cmd += ["--schema", schema]
    if outcomes:
        cmd.append("--outcomes")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _generate(n: int, seed: int):
    from sample_data.simulator import SimulationConfig, simulate_scenario

    t0 = time.perf_counter()
    sc = simulate_scenario(SimulationConfig(seed=seed, n_registry=n, truth_pool=1000,
                                            truth_draws=1000))
    sizes = {k: len(v) for k, v in sc.registry_tables.items()}
    print(f"simulated {n:,} patients in {time.perf_counter() - t0:.1f} s: {sizes}", flush=True)
    return sc.registry_tables


def _write_sqlite(tables, path: Path) -> None:
    from sample_data.writer import write_registry_sqlite

    t0 = time.perf_counter()
    write_registry_sqlite(tables, path, overwrite=True)
    size = path.stat().st_size / 2**20
    print(f"wrote SQLite {path} ({size:.0f} MiB) in {time.perf_counter() - t0:.1f} s", flush=True)


def _write_pg(tables, schema: str) -> None:
    import sqlalchemy as sa

    from sample_data.writer import write_registry

    engine = sa.create_engine(PG_ADMIN_URL)
    with engine.begin() as con:
        con.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    t0 = time.perf_counter()
    write_registry(engine, tables, schema=schema)
    with engine.begin() as con:
        con.exec_driver_sql('ANALYZE')  # fresh statistics, as a live registry would have
    engine.dispose()
    print(f"wrote PostgreSQL schema {schema} in {time.perf_counter() - t0:.1f} s", flush=True)


def _pg_has(schema: str, n: int) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as con:
            return con.exec_driver_sql(f'SELECT count(*) FROM "{schema}".patients').scalar() == n
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


def _drop_pg(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL)
    with engine.begin() as con:
        con.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def _table(rows: list[dict]) -> str:
    head = ("| backend | registry | criteria | outcomes | pool rows | time (s) | "
            "peak RSS (MiB) | added by extraction (MiB) | frame (MiB) |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['registry_patients']:,} | {r['scenario']} | "
            f"{'yes' if r['outcomes'] else 'no'} | {r['pool_rows']:,} | {r['seconds']} | "
            f"{r['peak_rss_mib']} | {r['extraction_rss_mib']} | {r['frame_mib']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="registry patients")
    parser.add_argument("--small", type=int, default=100_000,
                        help="size of the comparison registry (0: none)")
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files / PG schema")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse kept registries (implies --keep)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--outcomes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # child process: one measurement, JSON on stdout
        print(json.dumps(measure(args.measure, args.schema, args.scenario, args.outcomes)))
        return

    rows: list[dict] = []
    sizes = [args.n] + ([args.small] if args.small else [])
    args.keep = args.keep or args.reuse
    for n in sizes:
        path = Path(f"/tmp/synthctl_bench_{n}.sqlite")
        schema = f"synthctl_bench_{n}"
        use_pg = not args.no_pg and n == args.n
        if not (args.reuse and path.exists() and (not use_pg or _pg_has(schema, n))):
            tables = _generate(n, args.seed)
            _write_sqlite(tables, path)
            if use_pg:
                _write_pg(tables, schema)
            del tables
        backends = [("SQLite", f"sqlite:///{path}", None)]
        if use_pg:
            backends.append(("PostgreSQL", PG_ADMIN_URL, schema))
        try:
            for backend, url, sch in backends:
                for scenario in SCENARIOS:
                    runs = [False, True] if scenario == "trial criteria" else [False]
                    for outcomes in runs:
                        r = _measure_in_child(url, sch, scenario, outcomes)
                        r["backend"] = backend
                        rows.append(r)
                        print(json.dumps(r), flush=True)
        finally:
            if not args.keep:
                path.unlink(missing_ok=True)
                if len(backends) > 1:
                    _drop_pg(schema)
    print()
    print(_table(rows))


if __name__ == "__main__":
    main()
