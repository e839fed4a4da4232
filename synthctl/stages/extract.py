"""Extract stage: the candidate pool and the trial arm at index, WITHOUT outcome columns.

Registry source: `RegistryConnector.candidate_pool(include_outcomes=False)` (the database
never returns PFS/OS), trial files through `load_trial_arm` with the outcome columns dropped
before anything is kept. Flat source: the outcome columns are not even read. Writes
``covariates.parquet`` (the design's only input), ``attrition.csv`` and ``extract.json``.
The landmarks and ``rmst_tau`` are checked against each arm's potential follow-up (data
cut-off minus index date, `synthctl.stages._followup`) here, before any design exists.
"""

from __future__ import annotations

import pandas as pd

from connectors import columns as cn
from synthctl.errors import DataError
from synthctl.manifest import mask_url
from synthctl.outdir import write_csv, write_json
from synthctl.stages._context import (
    ATTRITION,
    COVARIATES,
    EXTRACT_INFO,
    StageContext,
    stage_errors,
)
from synthctl.stages._followup import FOLLOW_UP, arm_cutoffs, follow_up_record
from synthctl.stages._registry import index_rule, registry_connector

ATTRITION_COLUMNS = ["step", "criterion", "n_remaining", "n_excluded", "reason"]


def run_extract(ctx: StageContext) -> None:
    """Run the extract stage in ``ctx.folder`` and record it in the manifest."""
    t0 = ctx.manifest.start_stage("extract")
    ctx.manifest.drop_stages("design", "analyze", "report")
    spec = ctx.spec
    with ctx.progress.step("extracting the candidate pool"):
        if spec.data is not None:
            frame, attrition, info = _extract_flat(ctx)
        else:
            frame, attrition, info = _extract_registry(ctx)
    leaked = [c for c in cn.OUTCOME_COLUMNS if c in frame.columns]
    if leaked:  # a contract breach by a connector, not a user error
        raise RuntimeError(f"outcome columns reached the design input: {leaked}")
    frame = frame.reset_index(drop=True)
    frame.to_parquet(ctx.folder / COVARIATES, index=False)
    attrition = attrition.reindex(columns=ATTRITION_COLUMNS)
    artifacts = {
        COVARIATES: _sha_file(ctx, COVARIATES),
        ATTRITION: write_csv(ctx.folder / ATTRITION, attrition),
        EXTRACT_INFO: write_json(ctx.folder / EXTRACT_INFO, info),
    }
    ctx.manifest.end_stage("extract", t0, artifacts,
                           n_trial=info["counts"]["trial"],
                           n_control_pool=info["counts"]["control_pool"])


def _sha_file(ctx: StageContext, name: str) -> str:
    from synthctl.outdir import sha256_file

    return sha256_file(ctx.folder / name)


def _extract_flat(ctx: StageContext) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from connectors.attrition import default_known_columns
    from connectors.flatfile import load_flat_file

    d = ctx.spec.data
    assert d is not None
    ctx.manifest.record_file_input("data", d.path)
    with stage_errors("extract", ctx.loaded, str(d.path)):
        frame = load_flat_file(
            d.path, id_col=d.id, arm_col=d.arm, trial_value=d.trial_value, time_col=d.time,
            event_col=d.event, time_unit=d.time_unit, endpoint=ctx.spec.analysis.endpoint,
            include_outcomes=False, exclude=[d.response] if d.response else [],
        )
        trial = frame[frame[cn.ARM] == cn.TRIAL]
        control = frame[frame[cn.ARM] == cn.CONTROL]
        control_all = control
        control, attrition = _apply_eligibility(control, ctx.spec.eligibility,
                                                "control rows of the flat file")
        _check_not_emptied(ctx, attrition, "control row of the flat file",
                           lambda col: control_all[col].value_counts(dropna=False),
                           known=default_known_columns(frame))
        trial_kept, trial_attr = _apply_eligibility(trial, ctx.spec.eligibility,
                                                    "trial rows of the flat file")
        _check_not_emptied(ctx, trial_attr, "trial row of the flat file",
                           lambda col: trial[col].value_counts(dropna=False),
                           known=default_known_columns(frame))
    info = _info(trial_kept, control, trial_attr, n_trial_source=len(trial))
    if len(trial_kept) < len(trial):
        ctx.manifest.warn("extract", f"{len(trial) - len(trial_kept)} trial patient(s) of the "
                          "flat file do not meet the eligibility criteria and were excluded")
    return pd.concat([trial_kept, control], ignore_index=True), attrition, info


def _apply_eligibility(frame: pd.DataFrame, criteria, label: str):
    from connectors.attrition import apply_criteria_to_frame

    kept, attr = apply_criteria_to_frame(frame, list(criteria), start_label=label)
    return kept, attr.table.copy()


def _extract_registry(ctx: StageContext) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from connectors.trial import load_trial_arm

    spec = ctx.spec
    reg, tri = spec.registry, spec.trial
    assert reg is not None and tri is not None
    ctx.manifest.record_file_input("trial_adsl", tri.adsl)
    ctx.manifest.record_file_input("trial_adtte", tri.adtte)
    if reg.mapping is not None:
        ctx.manifest.record_file_input("registry_mapping", reg.mapping)
    with stage_errors("extract", ctx.loaded, f"trial files {tri.adsl.name}, {tri.adtte.name}"):
        trial = load_trial_arm(tri.adsl, tri.adtte, paramcd=tri.paramcd,
                               variable_map=tri.variable_map)
    cutoffs, cutoff_warnings = arm_cutoffs(spec, trial.attrs.get("data_cutoff"))
    trial = trial.drop(columns=[c for c in cn.OUTCOME_COLUMNS if c in trial.columns])
    with stage_errors("extract", ctx.loaded, f"registry {mask_url(reg.url)}"):
        conn = registry_connector(spec)
        role, role_warning = conn.role_check.to_dict(), conn.role_check.warning(conn.url)
        if role_warning:
            ctx.manifest.warn("extract", role_warning, kind="registry_role")
        try:
            # candidate_pool checks the design tables only: outcome tables are not touched
            rule = index_rule(spec)
            pool = conn.candidate_pool(rule, eligibility=list(spec.eligibility),
                                       include_outcomes=False)
            _check_not_emptied(ctx, pool.attrition.table, "registry patient",
                               lambda col: conn.value_counts(col, rule))
            control, attrition = pool.frame, pool.attrition.table.copy()
            control, attrition, findings = _pool_checks(ctx, conn, control, attrition)
        finally:
            conn.close()
    entry = {"url": mask_url(reg.url), "schema": reg.schema_, "role": role,
             "pool_sha256": pool.content_hash(), "n_pool_rows": len(pool.frame),
             "n_pool_rows_after_validation": len(control)}
    # the run's data dictionary of the mapping's disease-specific covariates, and the source
    # values read as missing (unmapped: missing), counts only (issue 12)
    entry["data_dictionary"] = [c.to_dict() for c in conn.mapping.covariates.values()]
    entry["recoding"] = [p.to_dict() for p in pool.recoding]
    ctx.manifest.record_input("registry", entry)
    info = _info(trial, control, None, n_trial_source=len(trial))
    info["validation"] = findings
    frame = pd.concat([trial, control], ignore_index=True)
    # outcome-blind: dates only, before the design is fitted (issue 14)
    record, fu_warnings = follow_up_record(spec, frame, cutoffs, stage="extract",
                                           population="every extracted patient")
    info[FOLLOW_UP] = {**record, "cutoffs": cutoffs}
    for message in (*cutoff_warnings, *fu_warnings):
        ctx.manifest.warn("extract", message, kind="follow_up")
    return frame, attrition, info


def _check_not_emptied(ctx: StageContext, attrition: pd.DataFrame, unit: str,
                       value_counts, known=None) -> None:
    """Stop at extract when a step leaves nobody, naming the step and, for a criterion, the
    values its columns have (counts only; ``value_counts(column) -> Series``)."""
    from connectors.attrition import Attrition, describe_value_counts, emptying_step
    from connectors.eligibility import parse_criterion

    step = emptying_step(Attrition(attrition))
    if step is None:
        return
    criteria = list(ctx.spec.eligibility)
    text = str(step["criterion"])
    if text not in criteria:  # a population step: no index line, or an empty file
        raise DataError(f"extract stage: no {unit} is left after the step {text!r} "
                        f"({step['reason']}); no design can be built")
    i = criteria.index(text)
    crit = parse_criterion(text, known)  # default: the registry's analysis-frame columns
    first = attrition[attrition["criterion"] == text].iloc[0]
    n_before = int(first["n_remaining"] + first["n_excluded"])
    values = "; ".join(f"{col}: {describe_value_counts(value_counts(col))}"
                       for col in crit.columns)
    raise DataError(
        f"extract stage: eligibility criterion {i + 1} ({text!r}) leaves no {unit}: it "
        f"excluded all {n_before} that met the criteria before it. Values in the data, before "
        f"any criterion: {values}. Correct the value or remove the criterion in the spec "
        f"(eligibility[{i}]).")


def _pool_checks(ctx: StageContext, conn, control: pd.DataFrame, attrition: pd.DataFrame):
    """Run the extract-validation checks that touch the candidate pool (issue 6).

    Fatal findings stop the run; error findings exclude the affected patients, counted in the
    attrition table with the check id as the reason; warnings go to the manifest and report.
    """
    from synthctl.stages._quality import run_pool_checks

    return run_pool_checks(ctx, conn, control, attrition)


def _info(trial: pd.DataFrame, control: pd.DataFrame, trial_attrition, *,
          n_trial_source: int) -> dict:
    info: dict = {
        "counts": {"trial_source": n_trial_source, "trial": len(trial),
                   "control_pool": len(control)},
        "validation": [],
    }
    if trial_attrition is not None:
        info["trial_attrition"] = trial_attrition.to_dict(orient="records")
    return info


def registry_pool_changes(ctx: StageContext) -> list[str]:
    """Whether the registry's candidate pool changed since extract (re-queried, blind).

    Compares the SHA-256 of the pool rows (covariates at index, no outcomes) with the one the
    extract stage recorded; an empty list means unchanged (or no registry source).
    """
    reg = ctx.spec.registry
    recorded = ctx.manifest.data.get("inputs", {}).get("registry", {}).get("pool_sha256")
    if reg is None or recorded is None:
        return []
    with stage_errors("analyze", ctx.loaded, f"registry {mask_url(reg.url)}"), \
            registry_connector(ctx.spec) as conn:
        pool = conn.candidate_pool(index_rule(ctx.spec), eligibility=list(ctx.spec.eligibility),
                                   include_outcomes=False)
    if pool.content_hash() != recorded:
        return ["the registry's candidate pool (covariates at index) changed since the "
                "extract stage"]
    return []
