"""The ADaM export's variables: names, labels, types, origins and derivations, defined once.

`synthctl.adam_export` builds ADSL/ADTTE with these names, writes their labels into the SAS
XPORT files and the define-style table (``define.csv``) from them, and `synthctl.reanalysis`
hands the same names to the generated R program. Names follow SAS XPORT v5 (at most 8
characters, upper case), labels its 40-character limit.

The covariate variables of a registry study are the trial ADaM loader's own names
(`connectors.trial.DEFAULT_VARIABLE_MAP`), so that loader reads the export back; a flat-file
study's covariates get a derived 8-character name (`flat_variable_names`) and their column
name as label.

Multi-line studies (``registry.index.selection: all``: a registry patient contributes one row
per eligible index line) key every dataset by ``USUBJID`` + ``LINESEQ`` (the patient's index
lines numbered 1, 2, ... by index date): the index line is the unit of the design (its
covariates, PS, weight), so ADSL holds one record per subject *and index line*, a documented
departure from ADaM's one record per subject, and the analyses cluster on ``USUBJID``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from connectors import columns as cn

Dataset = Literal["ADSL", "ADTTE", "ADRS"]
SasType = Literal["Char", "Num"]
Origin = Literal["Predecessor", "Derived", "Assigned"]
MAX_NAME, MAX_LABEL = 8, 40  # SAS XPORT v5
DATE_FORMAT = "DATE9."


@dataclass(frozen=True, slots=True)
class AdamVariable:
    """One variable of an exported dataset (one row of ``define.csv``)."""

    dataset: Dataset
    name: str
    label: str
    type: SasType
    origin: Origin
    derivation: str
    is_date: bool = False

    def __post_init__(self) -> None:
        if len(self.name) > MAX_NAME or not re.fullmatch(r"[A-Z][A-Z0-9_]*", self.name):
            raise ValueError(f"ADaM variable name {self.name!r}: at most {MAX_NAME} upper-case "
                             "letters, digits or _ (SAS XPORT v5)")
        if len(self.label) > MAX_LABEL:
            raise ValueError(f"{self.name}: label longer than {MAX_LABEL} characters "
                             f"({self.label!r})")

    def to_dict(self) -> dict[str, str]:
        """The ``define.csv`` row."""
        return {"dataset": self.dataset, "variable": self.name, "label": self.label,
                "type": self.type, "format": DATE_FORMAT if self.is_date else "",
                "origin": self.origin, "derivation": self.derivation}


# --- ADSL ------------------------------------------------------------------------------------
STUDYID, USUBJID, ARM, EXTCTLFL = "STUDYID", "USUBJID", "ARM", "EXTCTLFL"
TRTSDT = "TRTSDT"
PSCORE, ANLWT, MATCHSET, ANL01FL = "PSCORE", "ANLWT", "MATCHSET", "ANL01FL"
LINESEQ = "LINESEQ"
IMPNUM = "IMPNUM"
YES, NO = "Y", "N"

_ID_VARIABLES = (
    AdamVariable("ADSL", STUDYID, "Study Identifier", "Char", "Assigned",
                 "study.name of the study spec"),
    AdamVariable("ADSL", USUBJID, "Unique Subject Identifier", "Char", "Predecessor",
                 "trial: ADSL.USUBJID; external control: the registry's pseudonymous patient "
                 "id (no other registry identifier is exported)"),
    AdamVariable("ADSL", ARM, "Analysis Arm", "Char", "Derived",
                 f"'{cn.TRIAL}' for trial patients, '{cn.CONTROL}' for registry (external "
                 "control) patients; cohort.csv arm"),
    AdamVariable("ADSL", EXTCTLFL, "External Control Flag", "Char", "Derived",
                 f"'{YES}' when ARM = '{cn.CONTROL}' (registry patient), else '{NO}'"),
)


def lineseq_variable(dataset: Dataset) -> AdamVariable:
    """``LINESEQ`` of a multi-line study (part of every dataset's key with USUBJID)."""
    return AdamVariable(
        dataset, LINESEQ, "Index Line Sequence within Subject", "Num", "Derived",
        "multi-line study (registry.index.selection: all): the subject's eligible index "
        "lines numbered 1, 2, ... by index date (ties: registry line order); trial subjects 1. "
        "Key with USUBJID: one record per subject and index line (the design's unit); the "
        "analyses cluster the variance on USUBJID")


_TRTSDT = AdamVariable("ADSL", TRTSDT, "Index Date (Time Zero)", "Num", "Derived",
                       "trial: ADSL.TRTSDT; external control: start date of the registry index "
                       "line (spec registry.index)", is_date=True)
_DESIGN_VARIABLES = (
    AdamVariable("ADSL", PSCORE, "Propensity Score", "Num", "Derived",
                 "cohort.csv ps: the design's propensity score of being a trial patient "
                 "(design.json ps_model)"),
    AdamVariable("ADSL", ANLWT, "Analysis Weight", "Num", "Derived",
                 "cohort.csv weight: the design's analysis weight (0 = not selected); the case "
                 "weight of every analysis"),
    AdamVariable("ADSL", MATCHSET, "Matched Set Identifier", "Char", "Derived",
                 "cohort.csv match_id: the matched set; blank when unmatched, matched with "
                 "replacement, or for weighting"),
    AdamVariable("ADSL", ANL01FL, "Analysis Flag 01: Analysed by Design", "Char", "Derived",
                 f"'{YES}' when cohort.csv included is True and weight > 0 (the rows the "
                 f"analysis uses, as MatchIt's match.data), else '{NO}'"),
)

#: labels of the registry covariates (the trial loader's variables); value codes as the schema
COVARIATE_LABELS: dict[str, str] = {
    cn.AGE: "Age at Index (years)",
    cn.SEX: "Sex (F/M)",
    cn.ECOG: "ECOG Performance Status at Index",
    cn.HISTOLOGY: "Histology Group",
    cn.PCI: "Peritoneal Cancer Index at Baseline",
    cn.PRIOR_CRS: "Prior Cytoreductive Surgery (Y/N)",
    cn.CRS_HIPEC: "Prior CRS with HIPEC (Y/N)",
    cn.PFI_MONTHS: "Platinum-Free Interval (months)",
    cn.PRIOR_LINES: "Number of Prior Lines",
    cn.PRIOR_IMMUNOTHERAPY: "Prior Immunotherapy (Y/N)",
    cn.MONTHS_SINCE_DIAGNOSIS: "Months Since Diagnosis at Index",
    cn.KI67: "Ki-67 at Baseline (%)",
    cn.BAP1: "BAP1 Status (lost/retained)",
}


_IMPNUM = AdamVariable(
    "ADSL", IMPNUM, "Imputation Number", "Num", "Derived",
    "design.missing: impute: the imputed data set (1..m, cohort.csv imputation) whose completed "
    "covariates, propensity score, weight, matched set and analysis flag this record holds. "
    "Key with USUBJID: one record per subject and imputation; the analysis is run per "
    "imputation and pooled by Rubin's rules")


def adsl_variables(covariates: dict[str, tuple[str, SasType, str]], *, with_dates: bool,
                   flat: bool, multi_line: bool = False,
                   imputed: bool = False) -> tuple[AdamVariable, ...]:
    """ADSL's variables in file order; ``covariates``: analysis column -> (name, type, label)."""
    origin_text = ("the flat analysis file's column {col!r} (data.path)" if flat else
                   "trial: ADSL (connectors.trial); external control: the registry at the index "
                   "line (connectors.registry); analysis column {col!r}")
    covs = tuple(
        AdamVariable("ADSL", name, label, sas_type, "Predecessor",
                     "design covariate; " + origin_text.format(col=col))
        for col, (name, sas_type, label) in covariates.items())
    line = ((lineseq_variable("ADSL"),) if multi_line else ()) + ((_IMPNUM,) if imputed else ())
    return (*_ID_VARIABLES[:2], *line, *_ID_VARIABLES[2:], *((_TRTSDT,) if with_dates else ()),
            *covs, *_DESIGN_VARIABLES)


# --- ADTTE -----------------------------------------------------------------------------------
PARAMCD, PARAM, AVAL, AVALU, CNSR = "PARAMCD", "PARAM", "AVAL", "AVALU", "CNSR"
STARTDT, ADT, EVNTDESC, CNSDTDSC = "STARTDT", "ADT", "EVNTDESC", "CNSDTDSC"
AVALLB = "AVALLB"  # interval-censored PFS: last progression-free assessment (days)
AVAL_UNIT = "DAYS"


@dataclass(frozen=True, slots=True)
class EndpointText:
    """PARAM and the event / censoring descriptions of one time-to-event endpoint."""

    param: str
    event: str
    censored: str
    censored_day0: str


#: per endpoint (`connectors.columns.ENDPOINTS`): the registry's derivation
#: (`connectors.derivation.derive_endpoints`) and the trial's ADTTE rule
ENDPOINT_TEXT: dict[str, EndpointText] = {
    "PFS": EndpointText("Progression-free Survival (days)", "PROGRESSION OR DEATH",
                        "LAST ADEQUATE TUMOUR ASSESSMENT",
                        "NO ADEQUATE POST-BASELINE ASSESSMENT"),
    "OS": EndpointText("Overall Survival (days)", "DEATH", "LAST KNOWN ALIVE",
                       "LAST KNOWN ALIVE"),
}
_FLAT_TEXT = EndpointText("{endpoint} from the flat analysis file (days)", "EVENT", "CENSORED",
                          "CENSORED")


def endpoint_text(endpoint: str, *, flat: bool) -> EndpointText:
    if flat:
        t = _FLAT_TEXT
        return EndpointText(t.param.format(endpoint=endpoint), t.event, t.censored,
                            t.censored_day0)
    return ENDPOINT_TEXT[endpoint]


def adtte_variables(*, with_dates: bool, multi_line: bool = False,
                    left_bound: bool = False) -> tuple[AdamVariable, ...]:
    """ADTTE's variables in file order (dates only when the source has an index date;
    ``LINESEQ`` in multi-line studies; ``AVALLB`` when the endpoint alignment ran)."""
    head = (
        AdamVariable("ADTTE", STUDYID, "Study Identifier", "Char", "Assigned",
                     "study.name of the study spec"),
        AdamVariable("ADTTE", USUBJID, "Unique Subject Identifier", "Char", "Predecessor",
                     "ADSL.USUBJID"),
        *((lineseq_variable("ADTTE"),) if multi_line else ()),
        AdamVariable("ADTTE", PARAMCD, "Parameter Code", "Char", "Assigned",
                     f"endpoint name: {', '.join(cn.ENDPOINTS)} (one record per subject and "
                     "endpoint with a follow-up; none when it is missing)"),
        AdamVariable("ADTTE", PARAM, "Parameter", "Char", "Assigned", "endpoint description"),
        AdamVariable("ADTTE", AVAL, "Analysis Value (days from index)", "Num", "Derived",
                     "days from the index date (TRTSDT) to the event or censoring, as the analyze "
                     "stage reads it (registry: connectors.derivation.derive_endpoints; trial: "
                     "ADTTE AVAL converted from AVALU; flat file: time column x days per unit)"),
        AdamVariable("ADTTE", AVALU, "Analysis Value Unit", "Char", "Assigned", AVAL_UNIT),
        AdamVariable("ADTTE", CNSR, "Censor (0 = event, 1 = censored)", "Num", "Derived",
                     "1 - event indicator of the analysis"),
        *((_AVALLB,) if left_bound else ()),
    )
    dates = (
        AdamVariable("ADTTE", STARTDT, "Time-to-Event Origin Date", "Num", "Derived",
                     "ADSL.TRTSDT (index date)", is_date=True),
        AdamVariable("ADTTE", ADT, "Analysis Date", "Num", "Derived",
                     "STARTDT + AVAL days (rounded to whole days when AVAL is not whole)",
                     is_date=True),
    ) if with_dates else ()
    tail = (
        AdamVariable("ADTTE", EVNTDESC, "Event or Censoring Description", "Char", "Derived",
                     "event: the endpoint's event; censored: the censoring rule (day 0: no "
                     "adequate post-baseline assessment)"),
        AdamVariable("ADTTE", CNSDTDSC, "Censor Date Description", "Char", "Derived",
                     "censored records: what the censoring date is; blank for events"),
    )
    return (*head, *dates, *tail)


_AVALLB = AdamVariable(
    "ADTTE", AVALLB, "Last Progression-Free Assessment (days)", "Num", "Derived",
    "PFS records when the endpoint alignment ran (analysis.endpoint_alignment): the "
    "interval-censoring left bound, days from index to the last tumour assessment without "
    "progression before the event (0 when none; registry: tumour_assessments, "
    "connectors.registry progression_intervals; trial: the protocol schedule; flat file: "
    "data.last_progression_free). A progression lies in (AVALLB, AVAL]; AVALLB = AVAL for an "
    "exact event (death without progression); blank when censored (CNSR = 1) and on OS records. "
    "R: Surv(AVALLB, ifelse(CNSR == 0, AVAL, NA), type = 'interval2'). Sponsor-defined "
    "variable (ADaM has no standard interval-censoring variable)")


# --- ADRS (ADRS-derived subject-level response parameters) ----------------------------------
AVALC = "AVALC"
BOR_PARAMCD = "BOR"
#: AVAL coding of the best overall response (RECIST 1.1 order, best first)
BOR_CODES: dict[str, float] = {"CR": 1.0, "PR": 2.0, "SD": 3.0, "PD": 4.0, "NE": 5.0}


def adrs_variables(*, responder: str, definition: str, with_bor: bool,
                   multi_line: bool = False) -> tuple[AdamVariable, ...]:
    """The ADRS-derived dataset's variables: per subject a ``BOR`` record (best overall
    response; registry/ADaM sources) and a ``responder`` record (the binary endpoint, e.g.
    ``ORR``: AVALC Y/N, AVAL 1/0); ``definition`` is the response rule's text."""
    codes = ", ".join(f"{k} = {v:g}" for k, v in BOR_CODES.items())
    bor = (f"{BOR_PARAMCD}: best overall response after index as the analysis derived it "
           f"({definition}); CR/PR only when the rule's confirmation holds, else SD/PD/NE; NE "
           "when no assessment after index (counted as non-responder). " if with_bor else "")
    return (
        AdamVariable("ADRS", STUDYID, "Study Identifier", "Char", "Assigned",
                     "study.name of the study spec"),
        AdamVariable("ADRS", USUBJID, "Unique Subject Identifier", "Char", "Predecessor",
                     "ADSL.USUBJID"),
        *((lineseq_variable("ADRS"),) if multi_line else ()),
        AdamVariable("ADRS", PARAMCD, "Parameter Code", "Char", "Assigned",
                     (f"{BOR_PARAMCD} and " if with_bor else "") + f"{responder}: one record "
                     "each per subject of ADSL"),
        AdamVariable("ADRS", PARAM, "Parameter", "Char", "Assigned", "parameter description"),
        AdamVariable("ADRS", AVALC, "Analysis Value (C)", "Char", "Derived",
                     bor + f"{responder}: '{YES}' responder, '{NO}' non-responder "
                     f"({definition}); trial: ADaM ADRS (connectors.adrs), external control: "
                     "registry tumour_assessments (connectors.response), flat file: "
                     "data.response"),
        AdamVariable("ADRS", AVAL, "Analysis Value", "Num", "Derived",
                     (f"{BOR_PARAMCD}: {codes}; " if with_bor else "")
                     + f"{responder}: 1 responder, 0 non-responder"),
    )


def flat_variable_names(columns: Iterable[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """An 8-character upper-case SAS name per flat-file column, unique, stable in order.

    ``pfi_months`` -> ``PFI_MONT``; a clash gets a numeric suffix (``PFI_MON2``); a name
    starting with a digit gets ``V`` in front. Names of the fixed ADSL variables and ``taken``
    are avoided.
    """
    fixed = (*_ID_VARIABLES, _TRTSDT, *_DESIGN_VARIABLES)
    taken = {*taken, LINESEQ, IMPNUM, *(v.name for v in fixed)}
    out: dict[str, str] = {}
    for col in columns:
        base = re.sub(r"[^A-Z0-9_]", "_", str(col).upper()) or "V"
        if not base[0].isalpha():
            base = "V" + base
        name, k = base[:MAX_NAME], 1
        while name in taken:
            k += 1
            name = base[: MAX_NAME - len(str(k))] + str(k)
        taken.add(name)
        out[col] = name
    return out
