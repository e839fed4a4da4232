"""The extract-validation checks that touch the candidate pool (`connectors.quality`).

Fatal findings stop the run (DataError); patients failing an error check are excluded and
counted in the attrition table with the check id as the reason; warning findings go into the
manifest (and so into the report). Counts only: no patient id leaves this module.
"""

from __future__ import annotations

import pandas as pd

from connectors import columns as cn
from synthctl.errors import DataError
from synthctl.stages._context import StageContext


def run_pool_checks(ctx: StageContext, conn, control: pd.DataFrame, attrition: pd.DataFrame):
    """Apply the pool checks to the blind candidate pool; return (pool, attrition, findings).

    The pool has no outcome columns at this stage, so the derived-outcome checks
    (PFS <= OS, times >= 0) report "not applicable" here.
    """
    from connectors.quality import run_pool_checks as _run

    with ctx.progress.step("validation checks on the candidate pool"):
        outcome = _run(conn, control)
    if outcome.stop:
        failed = "; ".join(f"{r.id} ({r.description}: {r.n_failed} of {r.n_checked} rows)"
                           for r in outcome.fatal)
        raise DataError(f"extract stage: fatal registry validation check(s) failed: {failed}. "
                        "Run `synthctl validate` for the failing rows.")
    rows = []
    for check_id, ids in outcome.excluded.items():
        mask = control[cn.PATIENT_ID].astype(str).isin(set(ids))
        n = int(mask.sum())
        control = control[~mask]
        rows.append((f"registry validation: {check_id}", n, check_id))
        ctx.manifest.warn("extract", f"validation check {check_id} (error): {n} pool patient(s) "
                          "excluded", kind="validation")
    for r in outcome.warnings:
        ctx.manifest.warn("extract", f"validation check {r.id} (warning): {r.description}: "
                          f"{r.n_failed} of {r.n_checked} failing", kind="validation")
    return control, _insert_before_final(attrition, rows), outcome.to_dict()


def _insert_before_final(attrition: pd.DataFrame, rows: list[tuple[str, int, str]]):
    """Add exclusion rows before the ``final`` row, keeping the counts chained."""
    if not rows:
        return attrition
    table = attrition.to_dict(orient="records")
    final = table.pop() if table and table[-1]["criterion"] == "final" else None
    n = int(table[-1]["n_remaining"]) if table else 0
    for criterion, n_excl, reason in rows:
        n -= n_excl
        table.append({"step": 0, "criterion": criterion, "n_remaining": n,
                      "n_excluded": n_excl, "reason": reason})
    if final is not None:
        table.append({**final, "n_remaining": n})
    out = pd.DataFrame(table, columns=attrition.columns)
    out["step"] = range(1, len(out) + 1)
    return out
