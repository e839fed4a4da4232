"""The extract-validation checks that touch the candidate pool (`connectors.quality`).

Fatal findings stop the run (DataError); patients failing an error check are excluded and
counted in the attrition table with the check id as the reason; warning findings go into the
manifest (and so into the report). Counts only: no patient id leaves this module.

Outcome-blindness splits the catalogue in two. The extract stage runs only the pool checks on
the design tables (centres, patients, diagnoses, surgeries, treatment_lines) that read nothing
else (not the "after death / after last contact" ones, which read follow_up), so exclusions
never depend on outcome data. The checks on the outcome tables (tumour_assessments,
follow_up, schema-wide checks) and on the derived PFS/OS run in ``analyze``, after the design
is locked: there a fatal finding stops the run, and error/warning findings are reported (with
the number of selected patients affected) but cannot change the locked cohort.
"""

from __future__ import annotations

import pandas as pd

from connectors import columns as cn
from synthctl.errors import DataError
from synthctl.stages._context import StageContext


def _catalogue(design_tables: bool):
    """The shipped catalogue with only the design-table checks (or only the others) enabled."""
    from dataclasses import replace

    from connectors.derivation import DESIGN_TABLES
    from connectors.quality import Catalogue, load_catalogue

    cat = load_catalogue()
    checks = tuple(replace(c, enabled=c.enabled and (_design_time(c, DESIGN_TABLES)
                                                     == design_tables))
                   for c in cat.checks)
    return Catalogue(checks, cat.failure_cap)


# checks on design tables that compare with death / last-contact dates read follow_up
_READS_FOLLOW_UP = ("after_death", "after_last_contact")


def _design_time(check, design_tables) -> bool:
    return check.table in design_tables and check.kind not in _READS_FOLLOW_UP


def _stop_on_fatal(outcome, stage: str) -> None:
    """A fatal finding stops the run with one DataError naming every fatal check."""
    if outcome.stop:
        failed = "; ".join(f"{r.id} ({r.description}: {r.n_failed} of {r.n_checked} rows)"
                           for r in outcome.fatal)
        raise DataError(f"{stage} stage: fatal registry validation check(s) failed: {failed}. "
                        "Run `synthctl validate` for the failing rows.")


def run_pool_checks(ctx: StageContext, conn, control: pd.DataFrame, attrition: pd.DataFrame):
    """Design-table pool checks on the blind candidate pool; return (pool, attrition, findings)."""
    from connectors.quality import run_pool_checks as _run

    with ctx.progress.step("validation checks on the candidate pool"):
        outcome = _run(conn, control, _catalogue(design_tables=True))
    _stop_on_fatal(outcome, "extract")
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


def run_outcome_checks(ctx: StageContext, conn, selected: pd.DataFrame) -> dict:
    """Outcome-table and derived-outcome checks on the selected registry patients (analyze).

    ``selected`` holds patient_id, pfs_days, os_days of the registry patients in the cohort.
    """
    from connectors.quality import run_pool_checks as _run

    with ctx.progress.step("validation checks on the outcome data"):
        outcome = _run(conn, selected, _catalogue(design_tables=False))
    _stop_on_fatal(outcome, "analyze")
    for check_id, ids in outcome.excluded.items():
        ctx.manifest.warn("analyze", f"validation check {check_id} (error): {len(ids)} pool "
                          "patient(s) affected; the cohort was locked before outcomes "
                          "were read, so they stay in (fix the registry and rerun)",
                          kind="validation")
    for r in outcome.warnings:
        ctx.manifest.warn("analyze", f"validation check {r.id} (warning): {r.description}: "
                          f"{r.n_failed} of {r.n_checked} failing", kind="validation")
    return outcome.to_dict()
