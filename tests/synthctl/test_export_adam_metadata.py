"""The ADaM variables' metadata (synthctl.adam_metadata) and ADSL building on small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectors import columns as cn
from synthctl import adam_metadata as am
from synthctl import outdir
from synthctl.adam_export import build_adam
from synthctl.errors import DataError


def test_flat_names_are_sas_v5_unique_and_avoid_fixed_variables():
    names = am.flat_variable_names(["pfi_months", "pfi_month_2", "2nd line", "arm", "weight"],
                                   taken=["PFI_MONT"])
    assert names == {"pfi_months": "PFI_MON2", "pfi_month_2": "PFI_MON3",
                     "2nd line": "V2ND_LIN", "arm": "ARM2", "weight": "WEIGHT"}
    assert all(len(n) <= am.MAX_NAME for n in names.values())


def test_variable_names_and_labels_are_checked():
    with pytest.raises(ValueError, match="at most 8"):
        am.AdamVariable("ADSL", "TOOLONGNAME", "x", "Num", "Derived", "x")
    with pytest.raises(ValueError, match="longer than 40"):
        am.AdamVariable("ADSL", "X", "x" * 41, "Num", "Derived", "x")


def _inputs(ids=("T1", "R1", "R2"), covariate=("bap1", "ki67", "extra_score")):
    frame = pd.DataFrame({
        cn.PATIENT_ID: list(ids), cn.ARM: [cn.TRIAL, cn.CONTROL, cn.CONTROL],
        cn.INDEX_DATE: pd.to_datetime(["2023-01-02", "2021-05-06", "2020-01-01"]),
        cn.BAP1: ["lost", None, "retained"], cn.KI67: [10.5, np.nan, 3.0],
        "extra_score": [1.0, 2.0, 3.0], cn.CRS_HIPEC: [True, False, True],
        cn.PFS_DAYS: [100.0, 0.0, np.nan], cn.PFS_EVENT: [1, 0, np.nan],
    })
    cohort = pd.DataFrame({cn.PATIENT_ID: list(ids), cn.ARM: frame[cn.ARM],
                           outdir.PS: [0.5, 0.2, 0.1], outdir.WEIGHT: [1.0, 0.25, 0.0],
                           outdir.MATCH_ID: [np.nan, np.nan, np.nan],
                           outdir.INCLUDED: [True, True, False]})
    return frame, cohort


def test_adsl_codes_flags_and_a_covariate_the_trial_loader_does_not_know():
    frame, cohort = _inputs()
    adam = build_adam(frame, cohort, study="S", covariates=["bap1", "ki67", "extra_score",
                                                            "crs_hipec"], flat=False)
    adsl = adam.adsl
    assert adsl["BAP1BL"].tolist() == ["lost", "", "retained"]
    assert adsl["CRSHIPEC"].tolist() == ["Y", "N", "Y"]
    assert adsl["EXTRA_SC"].tolist() == [1.0, 2.0, 3.0]  # derived name, column as label
    labels = {v.name: v.label for v in adam.variables}
    assert labels["EXTRA_SC"] == "extra_score" and labels["KI67BL"] == "Ki-67 at Baseline (%)"
    assert adsl[am.ANL01FL].tolist() == ["Y", "Y", "N"]
    assert adsl[am.EXTCTLFL].tolist() == ["N", "Y", "Y"]
    # ADTTE: no record without follow-up; day-0 censoring described as such
    adtte = adam.adtte
    assert adtte[am.USUBJID].tolist() == ["T1", "R1"]
    assert adtte[am.CNSR].tolist() == [0.0, 1.0]
    assert adtte[am.EVNTDESC].tolist() == ["PROGRESSION OR DEATH",
                                          "NO ADEQUATE POST-BASELINE ASSESSMENT"]
    assert adtte[am.ADT].astype(str).tolist() == ["2023-04-12", "2021-05-06"]


def test_several_rows_per_patient_need_index_dates_to_order_them():
    """Several index lines of a patient are numbered by index date (LINESEQ); a flat file
    has no dates to order them by: refused."""
    frame, cohort = _inputs(ids=("T1", "R1", "R1"))
    with pytest.raises(DataError, match="several rows and the source has no index date"):
        build_adam(frame, cohort, study="S", covariates=["ki67"], flat=True)
    adam = build_adam(frame, cohort, study="S", covariates=["ki67"], flat=False)
    assert adam.adsl[am.LINESEQ].tolist() == [1, 2, 1]  # R1: 2020-01-01 before 2021-05-06
