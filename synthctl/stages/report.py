"""Report stage: ``report.html`` from the folder's artifacts (no patient identifier in it)."""

from __future__ import annotations

import re

import pandas as pd

from connectors import columns as cn
from synthctl.baseline import baseline_table
from synthctl.errors import DesignChangedError
from synthctl.methods import methods_paragraph, study_summary
from synthctl.outdir import (
    IMPUTATION,
    INCLUDED,
    WEIGHT,
    read_cohort,
    read_design,
    read_results,
    sha256_file,
)
from synthctl.stages._context import (
    ALIGNMENT_FIGURE,
    ATTRITION,
    COVARIATES,
    KM_FIGURE,
    LOVE_PLOT,
    PS_OVERLAP,
    REPORT,
    RESULTS,
    StageContext,
)


def run_report(ctx: StageContext) -> int:
    """Render ``report.html``; return 1 if the design's balance check failed, else 0."""
    from reports.html import ReportContent, render_report

    if not (ctx.folder / RESULTS).is_file():
        raise DesignChangedError(f"{ctx.folder}: no {RESULTS} (run `synthctl analyze` first)")
    t0 = ctx.manifest.start_stage("report")
    spec = ctx.spec
    results = read_results(ctx.folder)
    design = read_design(ctx.folder)
    cohort = read_cohort(ctx.folder)
    if IMPUTATION in cohort.columns:  # design.missing: impute: baseline of imputation 1
        cohort = cohort[cohort[IMPUTATION] == 1].reset_index(drop=True)
    covs = pd.read_parquet(ctx.folder / COVARIATES)
    included = cohort[INCLUDED].to_numpy()
    lookup = _balance_lookup(design)
    baseline = with_missing_smds(
        baseline_table(covs, cohort[WEIGHT].to_numpy(dtype=float), included,
                       list(spec.covariates), estimand=spec.design.estimand, balance=lookup),
        lookup)
    ids = set(cohort[cn.PATIENT_ID].astype(str))
    warnings = [dict(w, message=_scrub_ids(w["message"], ids))
                for w in ctx.manifest.data.get("warnings", [])]
    figures = {}
    for key, name in (("love_plot", LOVE_PLOT), ("ps_overlap", PS_OVERLAP), ("km", KM_FIGURE),
                       ("alignment_gaps", ALIGNMENT_FIGURE)):
        path = ctx.folder / name
        if path.is_file():
            figures[key] = (path.read_bytes(), "svg")
    primary = spec.analysis.primary_endpoint
    content = ReportContent(
        title=spec.study.name,
        summary=study_summary(spec, results),
        counts=results["counts"],
        attrition=pd.read_csv(ctx.folder / ATTRITION, keep_default_na=False),
        baseline=baseline,
        endpoint_name=primary,
        endpoint=results["endpoints"][primary],
        null_rate=spec.analysis.null_rate if primary == spec.analysis.endpoint else None,
        secondary={k: v for k, v in results["endpoints"].items() if k != primary},
        km_endpoint=spec.analysis.endpoint,
        sensitivity=results.get("sensitivity", {}),
        figures=figures,
        methods=methods_paragraph(spec, results),
        warnings=warnings,
        manifest=ctx.manifest.data,
        balance_passed=bool(results.get("design", {}).get("balance_passed", True)),
        allow_redesign=bool(ctx.manifest.data.get("redesigns")
                            or ctx.manifest.data.get("allow_redesign")),
        design_kind=design_kind(spec.design),
        variance_ratios=[r for r in (design.get("balance") or {}).get("rows", [])
                         if isinstance(r, dict) and r.get("type") == "continuous"],
    )
    render_report(content, ctx.folder / REPORT)
    ctx.manifest.end_stage("report", t0, {REPORT: sha256_file(ctx.folder / REPORT)})
    return ctx.manifest.balance_code()


MISSING_ROW = ": missing"  # baseline_table's label suffix of a covariate's missing share


def with_missing_smds(baseline: pd.DataFrame, lookup: dict[str, dict[str, float]]
                      ) -> pd.DataFrame:
    """The "<cov>: missing" rows with the SMDs of the design's missing indicator
    (``<cov>_missing`` in design.json), as the love plot shows them (defect 16)."""
    from synthctl.baseline import _fmt_smd

    out = baseline.copy()
    for i, label in out["variable"].items():
        if isinstance(label, str) and label.endswith(MISSING_ROW):
            known = lookup.get(label[: -len(MISSING_ROW)] + "_missing")
            if known:
                out.loc[i, "smd_before"] = _fmt_smd(known.get("smd_before"))
                out.loc[i, "smd_after"] = _fmt_smd(known.get("smd_after"))
    return out


def design_kind(design) -> str:
    """"matched" when the synthetic control is matched registry patients, else "weighted"."""
    return "weighted" if design.yields == "weights" else "matched"


def _balance_lookup(design: dict) -> dict[str, dict[str, float]]:
    """covariate -> {smd_before, smd_after} from design.json's balance table, if present."""
    table = design.get("balance")
    if isinstance(table, dict) and "rows" in table:
        table = table["rows"]
    if isinstance(table, dict):  # column-oriented
        try:
            table = pd.DataFrame(table).to_dict(orient="records")
        except ValueError:
            return {}
    out = {}
    for row in table or []:
        if isinstance(row, dict) and "covariate" in row:
            out[str(row["covariate"])] = {"smd_before": row.get("smd_before"),
                                          "smd_after": row.get("smd_after")}
    return out


def _scrub_ids(text: str, ids: set[str]) -> str:
    """Replace any patient identifier appearing in a message by ``[patient]``."""
    def repl(m: re.Match) -> str:
        return "[patient]" if m.group(0) in ids else m.group(0)

    return re.sub(r"[A-Za-z0-9_.:-]+", repl, text) if ids else text

