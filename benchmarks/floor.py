"""The floor of a registry benchmark: a bare scan of the registry's tables on that backend.

`bare_scan_seconds` runs, for each of the seven registry tables, one query that reads every
column of every row inside the database and returns one row (``SELECT count(*), sum(CASE
WHEN c1 IS NULL THEN 0 ELSE 1 END), ... FROM t``; an expression, so that no backend answers
from its column statistics, as DuckDB does for ``count(c)``): the least work any check or
extraction that reads each table once must do. The benchmarks report their own time as a
multiple of it, measured in the same run (so the machine's load of the moment cancels out, roughly).
"""

from __future__ import annotations

import time

import sqlalchemy as sa


def bare_scan_seconds(url: str, schema: str | None = None, repeats: int = 3) -> dict:
    """Median wall time (s) of a bare scan of the registry tables, and its per-table parts.

    Opened read-only (`connectors.readonly.open_readonly_engine`), as the checks open it.
    """
    from connectors.readonly import open_readonly_engine
    from connectors.schema import LOGICAL_SCHEMA, build_metadata

    _, tables = build_metadata(schema=schema, with_constraints=False)
    engine = open_readonly_engine(url)
    runs: list[dict[str, float]] = []
    rows = 0
    try:
        for _ in range(repeats):
            per: dict[str, float] = {}
            rows = 0
            with engine.connect() as conn:
                for name in LOGICAL_SCHEMA:
                    table = tables[name]
                    stmt = sa.select(sa.func.count(), *(
                        sa.func.sum(sa.case((c.is_(None), 0), else_=1)) for c in table.c))
                    t0 = time.perf_counter()
                    rows += int(conn.execute(stmt).first()[0])
                    per[name] = time.perf_counter() - t0
            runs.append(per)
    finally:
        engine.dispose()
    totals = sorted(sum(r.values()) for r in runs)
    median = totals[len(totals) // 2]
    return {"seconds": median, "rows": rows, "runs": totals,
            "per_table": {n: sorted(r[n] for r in runs)[len(runs) // 2] for n in runs[0]}}


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    print(json.dumps(bare_scan_seconds(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None),
                     indent=1))
