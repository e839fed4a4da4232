"""The registry's value codes (documented in ``docs/data_dictionary.md``).

Kept apart from `connectors.schema` so that the spec and the stages can name them without
importing SQLAlchemy (the design command's start-up, `tests/synthctl/test_speed_contracts.py`).
"""

SEX_CODES = ("F", "M")
HISTOLOGY_CODES = ("epithelioid", "biphasic", "sarcomatoid", "other")
DISEASE_CODES = (
    "peritoneal_mesothelioma",
    "pseudomyxoma_peritonei",
    "peritoneal_carcinomatosis_colorectal",
    "gestational_trophoblastic_tumour",
    "other",
)
BAP1_CODES = ("lost", "retained")
CC_SCORES = (0, 1, 2, 3)  # completeness of cytoreduction CC-0..CC-3
ECOG_CODES = (0, 1, 2, 3, 4, 5)
END_REASON_CODES = ("completed", "progression", "toxicity", "death", "patient_choice", "other")
# drug classes of a line: a ';'-separated list from this vocabulary, e.g. "platinum;antifolate"
DRUG_CLASS_CODES = (
    "platinum",
    "antifolate",
    "antimetabolite",
    "vinca_alkaloid",
    "anthracycline",
    "immune_checkpoint_inhibitor",
    "antiangiogenic",
    "other",
)
CRITERIA_CODES = ("RECIST1.1", "mRECIST")
# laboratory analytes the endpoints name (``lab_results.analyte``; other analytes may be stored,
# a mapping's ``values`` may translate a registry's own analyte codes into these)
ANALYTE_CODES = ("hcg", "afp", "ca125", "cea", "ldh", "other")
RESPONSE_CODES = ("CR", "PR", "SD", "PD", "NE")
VITAL_STATUS_CODES = ("alive", "dead")
