"""Names of the analysis frame: the one place where columns, arm labels and time units live.

`connectors` produces the analysis frame (one row per patient, or per index line with the
all-lines option); `matching` and `reports` take column names as arguments, and `synthctl`
wires the two with the constants below.
"""

from __future__ import annotations

from typing import Final, Literal

# identifiers
PATIENT_ID: Final = "patient_id"
LINE_ID: Final = "line_id"  # registry index line (empty for trial patients)
CENTRE_ID: Final = "centre_id"
INDEX_DATE: Final = "index_date"
DISEASE: Final = "disease"  # registry disease code at diagnosis (for eligibility; not a covariate)

# arm
ARM: Final = "arm"
TRIAL: Final = "trial"
CONTROL: Final = "control"
ArmLabel = Literal["trial", "control"]

# covariates at index (registry names; trial files are mapped onto these)
AGE: Final = "age_at_index"  # years
SEX: Final = "sex"  # "F" / "M"
ECOG: Final = "ecog_at_index"  # 0-5
HISTOLOGY: Final = "histology"  # epithelioid / biphasic / sarcomatoid / other
PCI: Final = "pci"  # Peritoneal Cancer Index 0-39
CRS_HIPEC: Final = "crs_hipec"  # prior cytoreductive surgery with HIPEC (bool)
PRIOR_CRS: Final = "prior_crs"  # prior cytoreductive surgery (bool)
PFI_MONTHS: Final = "pfi_months"  # platinum-free interval, months
PRIOR_LINES: Final = "prior_lines"  # number of lines before the index line
PRIOR_IMMUNOTHERAPY: Final = "prior_immunotherapy"  # bool
MONTHS_SINCE_DIAGNOSIS: Final = "months_since_diagnosis"
KI67: Final = "ki67"  # percent 0-100
BAP1: Final = "bap1"  # "lost" / "retained"

COVARIATE_COLUMNS: Final = (
    AGE,
    SEX,
    ECOG,
    HISTOLOGY,
    PCI,
    PRIOR_CRS,
    CRS_HIPEC,
    PFI_MONTHS,
    PRIOR_LINES,
    PRIOR_IMMUNOTHERAPY,
    MONTHS_SINCE_DIAGNOSIS,
    KI67,
    BAP1,
)

#: Readable covariate labels for the methods text, the balance table and the love plot; the
#: meanings are those of docs/data_dictionary.md ("Analysis frame"). A spec's ``labels:``
#: overrides them (and labels a mapping's own covariates).
COVARIATE_LABELS: Final[dict[str, str]] = {
    AGE: "Age at index (years)",
    SEX: "Sex",
    ECOG: "ECOG performance status at index",
    HISTOLOGY: "Histology",
    PCI: "Peritoneal cancer index (PCI)",
    PRIOR_CRS: "Prior cytoreductive surgery",
    CRS_HIPEC: "Prior cytoreductive surgery with HIPEC",
    PFI_MONTHS: "Platinum-free interval (months)",
    PRIOR_LINES: "Number of prior treatment lines",
    PRIOR_IMMUNOTHERAPY: "Prior immunotherapy",
    MONTHS_SINCE_DIAGNOSIS: "Time since diagnosis (months)",
    KI67: "Ki-67 index (%)",
    BAP1: "BAP1 status",
}

# outcomes (never enter the design stage)
PFS_DAYS: Final = "pfs_days"
PFS_EVENT: Final = "pfs_event"  # 1 progression or death, 0 censored
OS_DAYS: Final = "os_days"
OS_EVENT: Final = "os_event"  # 1 death, 0 censored
RESPONSE: Final = "response"  # objective response: 1 responder, 0 non-responder
OUTCOME_COLUMNS: Final = (PFS_DAYS, PFS_EVENT, OS_DAYS, OS_EVENT)

# PFS progression interval (endpoint alignment; outcomes too: never enter the design stage)
PFS_LAST_PF_DAYS: Final = "pfs_last_pf_days"  # last assessment without progression before
#   the PFS event or censoring, days from index (0 when none)
PFS_DEATH: Final = "pfs_death"  # the PFS event is a death without progression (exact time)
PFS_N_ASSESSMENTS: Final = "pfs_n_assessments"  # post-index assessments up to the event
PFS_MEAN_GAP_DAYS: Final = "pfs_mean_gap_days"  # mean days between them (index to first scan
#   included): last one's day / their number; missing when none
ALIGNMENT_COLUMNS: Final = (PFS_LAST_PF_DAYS, PFS_DEATH, PFS_N_ASSESSMENTS, PFS_MEAN_GAP_DAYS)

# endpoints: name -> (time column in days, event column)
ENDPOINTS: Final = {"PFS": (PFS_DAYS, PFS_EVENT), "OS": (OS_DAYS, OS_EVENT)}

# time units
TimeUnit = Literal["days", "weeks", "months", "years"]
DAYS_PER_UNIT: Final[dict[str, float]] = {
    "days": 1.0,
    "weeks": 7.0,
    "months": 365.25 / 12.0,
    "years": 365.25,
}


def days_to(unit: str, days: float):
    """Convert a time in days (scalar or array) into ``unit``."""
    return days / DAYS_PER_UNIT[unit]


def to_days(unit: str, value: float):
    """Convert a time in ``unit`` (scalar or array) into days."""
    return value * DAYS_PER_UNIT[unit]
