"""Binary endpoints of the analyze stage: the one table of their outcome sources (issue 15).

A binary endpoint (`reports.endpoints.Binary`) needs a 0/1 outcome per analysed row. Where it
comes from is a `BinarySource` in `BINARY_SOURCES`, keyed by the endpoint's name in
results.json: whether the spec asks for it, a reader, the sentence that defines it and its
null rate. A reader returns a `BinaryOutcome` for the rows of the analysis frame: the 0/1
value of every row (its own rule for patients without any measurement, e.g. "not evaluable
= non-responder" for RECIST), whether each row was assessed, and the count of patients not
assessed per arm (reported as a warning, never dropped silently). Adding a source (biomarker
normalisation from ``lab_results`` / ADLB) is one reader and one entry here, plus its spec
settings; the analysis (bootstrap, sensitivity, Simon, the report) is the same for every
binary endpoint.

Today: ``ORR`` from ``response`` = RECIST 1.1 best overall response (registry tumour
assessments in SQL and the trial's ADaM ADRS, `connectors.response`), or the flat file's
``data.response`` column; ``NORMALISATION`` from ``normalisation`` = a biomarker (hCG) below
the ULN on N consecutive results by a landmark (registry ``lab_results`` in SQL and the
trial's ADaM ADLB, `connectors.biomarker`), or the flat file's ``data.normalised`` column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors import columns as cn
from connectors.columns import RESPONSE
from synthctl.spec import StudySpec
from synthctl.stages._context import StageContext, stage_errors


@dataclass(frozen=True, slots=True)
class BinaryOutcome:
    """A binary source's outcome for the rows of the analysis frame (same index).

    ``value``: 0/1 per row; ``assessed``: whether the row had any measurement (the source's
    rule gave ``value`` to the others); ``onset_days``: days from index to the event that
    made the row a 1 (first response), NaN when unknown or not applicable;
    ``not_assessed``: patients without any measurement per arm; ``rule``: what the value
    of a not-assessed row is (the warning says it); ``detail``: the category behind the
    value where the source has one (the best overall response CR/PR/SD/PD/NE, for the ADaM
    export), else None.
    """

    value: pd.Series
    assessed: pd.Series
    onset_days: pd.Series
    rule: str
    detail: pd.Series | None = None

    @property
    def not_assessed(self) -> int:
        return int((~self.assessed.astype(bool)).sum())


@dataclass(frozen=True, slots=True)
class BinarySource:
    """One binary endpoint's outcome source: ``wanted(spec)``, ``read(ctx, frame, stage)``,
    ``definition(spec)`` (results.json ``definition``), ``null_rate(spec)`` (the trial's
    exact test; None: no test) and ``what`` (the step's name in the progress output)."""

    name: str
    what: str
    wanted: Callable[[StudySpec], bool]
    read: Callable[..., BinaryOutcome]  # (ctx, frame, stage="analyze")
    definition: Callable[[StudySpec], str]
    null_rate: Callable[[StudySpec], float | None]
    has_onset: bool = False


def value_col(name: str) -> str:
    """Column of the analysis frame holding binary endpoint ``name``'s 0/1 outcome."""
    return f"__binary_{name}"


def onset_col(name: str) -> str:
    """Column of the analysis frame holding ``name``'s onset, in the landmark unit."""
    return f"__onset_{name}"


def wanted_sources(spec: StudySpec) -> list[BinarySource]:
    """The binary endpoints the spec asks for, in table order."""
    return [s for s in BINARY_SOURCES.values() if s.wanted(spec)]


def read_binary_outcomes(ctx: StageContext, frame: pd.DataFrame, *,
                         warn: bool = True) -> pd.DataFrame:
    """``frame`` with the value (and onset) columns of every wanted binary endpoint; the
    not-assessed patients are a warning (``warn``). Read with the other outcomes, before
    any analysis, so that a bad source stops the stage early."""
    out = frame.copy()
    unit = ctx.spec.analysis.landmark_unit
    for src in wanted_sources(ctx.spec):
        with ctx.progress.step(f"reading {src.what}"):
            got = src.read(ctx, frame)
        out[value_col(src.name)] = got.value.to_numpy(dtype=float)
        if src.has_onset:
            out[onset_col(src.name)] = cn.days_to(unit, got.onset_days.to_numpy(dtype=float))
        if warn and got.not_assessed:
            ctx.manifest.warn("analyze", f"{src.name}: {got.not_assessed} patient(s) (trial "
                              f"and eligible registry pool) have no {src.what} after index: "
                              f"{got.rule}")
    return out


# --- ORR: RECIST 1.1 best overall response -------------------------------------------------

ORR = "ORR"


def _wants_response(spec: StudySpec) -> bool:
    return "ORR" in spec.binary_endpoints


def _rule(spec: StudySpec):
    from connectors.response import ResponseRule

    s = spec.analysis.response
    return None if s is None else ResponseRule(confirmed=s.confirmed, by=s.by, unit=s.unit)


def _response_definition(spec: StudySpec) -> str:
    rule = _rule(spec)
    if rule is not None:
        return rule.describe()
    assert spec.data is not None
    return f"flat file column {spec.data.response!r} (1 = responder)"


def simon_target(spec: StudySpec) -> str | None:
    """The endpoint ``analysis.simon`` analyses (``primary``: the primary endpoint's name)."""
    a = spec.analysis
    if a.simon is None:
        return None
    return a.primary_endpoint if a.simon.endpoint == "primary" else a.simon.endpoint


def _response_null_rate(spec: StudySpec) -> float | None:
    """``response.null_rate``; else the Simon ``p0`` when the Simon design is on ORR."""
    s, simon = spec.analysis.response, spec.analysis.simon
    if s is not None and s.null_rate is not None:
        return s.null_rate
    return simon.p0 if simon is not None and simon_target(spec) == ORR else None


def _read_responses(ctx: StageContext, frame: pd.DataFrame,
                    stage: str = "analyze") -> BinaryOutcome:
    """Response, assessed flag, onset (days) and best overall response of every row of
    ``frame``, in its order (``stage`` names the command in error messages)."""
    spec = ctx.spec
    nan = pd.Series(np.nan, index=frame.index)
    if spec.data is not None:
        from connectors.flatfile import load_flat_response

        d = spec.data
        with stage_errors(stage, ctx.loaded, str(d.path)):
            got = load_flat_response(d.path, id_col=d.id, response_col=d.response)
        merged = frame[[cn.PATIENT_ID]].astype(str).merge(got, on=cn.PATIENT_ID, how="left")
        return BinaryOutcome(pd.Series(merged[RESPONSE].to_numpy(), index=frame.index),
                             pd.Series(True, index=frame.index), nan, "")
    from connectors.adrs import read_adrs, trial_response
    from synthctl.stages._registry import registry_connector

    tri = spec.trial
    assert spec.registry is not None and tri is not None and tri.adrs is not None
    rule = _rule(spec)
    is_trial = frame[cn.ARM] == cn.TRIAL
    keys = frame.loc[~is_trial, [cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]]
    with (stage_errors(stage, ctx.loaded, "registry responses"),
          registry_connector(spec) as conn):
        ctrl = conn.responses(keys, rule)
    with stage_errors(stage, ctx.loaded, f"trial file {tri.adrs.name}"):
        trial = trial_response(read_adrs(tri.adrs),
                               frame.loc[is_trial, [cn.PATIENT_ID, cn.INDEX_DATE]], rule,
                               paramcd=spec.analysis.response.paramcd)
    value = pd.Series(0.0, index=frame.index)
    assessed = pd.Series(True, index=frame.index)
    onset = nan.copy()
    value[~is_trial] = ctrl[RESPONSE].to_numpy(dtype=float)
    value[is_trial] = trial[RESPONSE].to_numpy(dtype=float)
    assessed[~is_trial] = ctrl["assessed"].to_numpy(dtype=bool)
    assessed[is_trial] = trial["assessed"].to_numpy(dtype=bool)
    onset[~is_trial] = ctrl["days_to_response"].to_numpy(dtype=float)
    if "days_to_response" in trial.columns:  # OVR; a BOR carries no date
        onset[is_trial] = trial["days_to_response"].to_numpy(dtype=float)
    best = pd.Series("NE", index=frame.index, dtype=object)
    best[~is_trial] = ctrl["best_response"].fillna("NE").to_numpy()
    best[is_trial] = trial["best_response"].fillna("NE").to_numpy()
    return BinaryOutcome(value, assessed, onset,
                         "counted as non-responders (best overall response NE)", best)


# --- NORMALISATION: a biomarker below the ULN on N consecutive results by a landmark ------

NORMALISATION = "NORMALISATION"


def _wants_normalisation(spec: StudySpec) -> bool:
    return "NORMALISATION" in spec.binary_endpoints


def _normalisation_rule(spec: StudySpec):
    from connectors.biomarker import NormalisationRule

    s = spec.analysis.normalisation
    return None if s is None else NormalisationRule.by_landmark(
        s.analyte, s.n_consecutive, s.by, s.unit)


def _normalisation_definition(spec: StudySpec) -> str:
    rule, s = _normalisation_rule(spec), spec.analysis.normalisation
    if rule is not None:
        return (f"{s.analyte} below the upper limit of normal on {s.n_consecutive} consecutive "
                f"measurement(s) after index, by {s.by:g} {s.unit}")
    assert spec.data is not None
    return f"flat file column {spec.data.normalised!r} (1 = normalised)"


def _normalisation_null_rate(spec: StudySpec) -> float | None:
    """``normalisation.null_rate``; else the Simon ``p0`` when the Simon design is on it."""
    s, simon = spec.analysis.normalisation, spec.analysis.simon
    if s is not None and s.null_rate is not None:
        return s.null_rate
    return simon.p0 if simon is not None and simon_target(spec) == NORMALISATION else None


def _read_normalisation(ctx: StageContext, frame: pd.DataFrame,
                        stage: str = "analyze") -> BinaryOutcome:
    """Normalised (0/1) and measured flag of every row of ``frame``, in its order: registry
    ``lab_results`` in SQL and the trial's ADLB (`connectors.biomarker`), or the flat file's
    ``data.normalised`` column. The two arms' units must agree."""
    from synthctl.errors import DataError

    spec = ctx.spec
    nan = pd.Series(np.nan, index=frame.index)
    if spec.data is not None:
        from connectors.flatfile import load_flat_response

        d = spec.data
        with stage_errors(stage, ctx.loaded, str(d.path)):
            got = load_flat_response(d.path, id_col=d.id, response_col=d.normalised,
                                     what="normalisation")
        merged = frame[[cn.PATIENT_ID]].astype(str).merge(got, on=cn.PATIENT_ID, how="left")
        return BinaryOutcome(pd.Series(merged[RESPONSE].to_numpy(), index=frame.index),
                             pd.Series(True, index=frame.index), nan, "")
    from connectors.adlb import read_adlb, trial_normalisation
    from connectors.biomarker import NORMALISED
    from synthctl.stages._registry import registry_connector

    tri, settings = spec.trial, spec.analysis.normalisation
    assert spec.registry is not None and tri is not None and tri.adlb is not None
    rule = _normalisation_rule(spec)
    is_trial = frame[cn.ARM] == cn.TRIAL
    keys = frame.loc[~is_trial, [cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]]
    with (stage_errors(stage, ctx.loaded, "registry laboratory results"),
          registry_connector(spec) as conn):
        ctrl = conn.normalisation(keys, rule)
    with stage_errors(stage, ctx.loaded, f"trial file {tri.adlb.name}"):
        trial = trial_normalisation(read_adlb(tri.adlb),
                                    frame.loc[is_trial, [cn.PATIENT_ID, cn.INDEX_DATE]], rule,
                                    settings.adlb_paramcd)
    units = {arm: (got.attrs.get("unit") or "").strip() for arm, got in
             (("registry", ctrl), (f"trial file {tri.adlb.name}", trial))}
    if all(units.values()) and len({u.lower() for u in units.values()}) > 1:
        raise DataError(f"analyze: {settings.analyte} is in {units['registry']!r} in the "
                        f"registry but in {list(units.values())[1]!r} in the "
                        f"{list(units)[1]}: convert one of them (the mapping's 'values' and "
                        "'scale' for the registry)")
    value = pd.Series(0.0, index=frame.index)
    measured = pd.Series(True, index=frame.index)
    value[~is_trial] = ctrl[NORMALISED].to_numpy(dtype=float)
    value[is_trial] = trial[NORMALISED].to_numpy(dtype=float)
    measured[~is_trial] = ctrl["measured"].to_numpy(dtype=bool)
    measured[is_trial] = trial["measured"].to_numpy(dtype=bool)
    return BinaryOutcome(value, measured, nan, "counted as not normalised")


#: the binary endpoints' outcome sources, by endpoint name (a new source: one entry)
BINARY_SOURCES: dict[str, BinarySource] = {
    ORR: BinarySource(ORR, "tumour assessments (responses)", _wants_response, _read_responses,
                      _response_definition, _response_null_rate, has_onset=True),
    NORMALISATION: BinarySource(NORMALISATION, "laboratory results (biomarker normalisation)",
                                _wants_normalisation, _read_normalisation,
                                _normalisation_definition, _normalisation_null_rate),
}
