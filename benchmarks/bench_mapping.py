"""Benchmark: extraction through a mapping from a Parquet export folder, against SQLite and PG.

Simulates a registry (default 1,000,000 patients, `sample_data.simulator`), writes it as the
canonical schema to SQLite and PostgreSQL (as `bench_extract.py` does) and as the French-style
export of `sample_data.export` to a Parquet folder (text dates and keys, French codes, Ki-67
fraction, no drug classes: every recoding of the shipped example mapping happens in SQL, in
DuckDB). Each ``candidate_pool`` runs in a fresh process; peak RSS is ``VmHWM``, "added" is
peak minus the resident size after imports and connecting (see `bench_extract.py`).

Run by hand (about ten minutes at full scale on a quiet 2-core machine)::

    python benchmarks/bench_mapping.py                      # 1M patients
    python benchmarks/bench_mapping.py --n 100000 --no-pg   # quick look

Figures of the last full run: benchmarks/README.md, section "Extraction through a mapping".
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_extract import (  # noqa: E402  (after the path set-up)
    PG_ADMIN_URL,
    SCENARIOS,
    _drop_pg,
    _generate,
    _status_mib,
    _table,
    _write_pg,
    _write_sqlite,
)

SCENARIO = "trial criteria"


def measure(url: str, schema: str | None, mapping: str | None, outcomes: bool) -> dict:
    """One extraction in this process: timings and memory."""
    from connectors.registry import IndexRule, RegistryConnector

    conn = RegistryConnector(url, schema=schema, mapping=mapping)
    base = _status_mib("VmRSS")
    t0 = time.perf_counter()
    pool = conn.candidate_pool(IndexRule(), eligibility=SCENARIOS[SCENARIO],
                               include_outcomes=outcomes)
    seconds = time.perf_counter() - t0
    peak = _status_mib("VmHWM")
    conn.close()
    return {"scenario": SCENARIO, "outcomes": outcomes, "pool_rows": len(pool.frame),
            "registry_patients": pool.attrition.n_start, "seconds": round(seconds, 2),
            "peak_rss_mib": round(peak, 1), "extraction_rss_mib": round(peak - base, 1),
            "frame_mib": round(pool.frame.memory_usage(deep=True).sum() / 2**20, 1)}


def _child(url: str, schema: str | None, mapping: str | None, outcomes: bool) -> dict:
    cmd = [sys.executable, __file__, "--measure", url]
    cmd += ["--schema", schema] if schema else []
    cmd += ["--mapping", mapping] if mapping else []
    cmd += ["--outcomes"] if outcomes else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write_parquet(tables, folder: Path) -> Path:
    from sample_data.export import export_frames, export_mapping, io_regimens, write_export_parquet

    t0 = time.perf_counter()
    write_export_parquet(export_frames(tables), folder)
    mapping = folder.parent / f"{folder.name}_mapping.yaml"
    mapping.write_text(export_mapping(io_regimens(tables)))
    size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    print(f"wrote Parquet export {folder} ({size:.0f} MiB) in {time.perf_counter() - t0:.1f} s",
          flush=True)
    return mapping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="registry patients")
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the files / PG schema")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--mapping", help=argparse.SUPPRESS)
    parser.add_argument("--outcomes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.schema, args.mapping, args.outcomes)))
        return
    n = args.n
    sqlite_path = Path(f"/tmp/synthctl_bench_map_{n}.sqlite")
    folder = Path(f"/tmp/synthctl_bench_map_{n}_parquet")
    schema = f"synthctl_bench_map_{n}"
    tables = _generate(n, args.seed)
    mapping = _write_parquet(tables, folder)
    _write_sqlite(tables, sqlite_path)
    if not args.no_pg:
        _write_pg(tables, schema)
    del tables
    backends = [("Parquet folder + mapping (DuckDB)", f"parquet:///{folder}", None,
                 str(mapping)), ("SQLite", f"sqlite:///{sqlite_path}", None, None)]
    if not args.no_pg:
        backends.append(("PostgreSQL", PG_ADMIN_URL, schema, None))
    rows = []
    try:
        for name, url, sch, mp in backends:
            for outcomes in (False, True):
                r = _child(url, sch, mp, outcomes)
                r["backend"] = name
                rows.append(r)
                print(json.dumps(r), flush=True)
    finally:
        if not args.keep:
            sqlite_path.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
            mapping.unlink(missing_ok=True)
            if not args.no_pg:
                _drop_pg(schema)
    print()
    print(_table(rows))


if __name__ == "__main__":
    main()
