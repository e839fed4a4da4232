"""The response endpoint is the same whether it comes from the registry (SQL), an ADaM ADRS
or a flat file: the sample registry's assessments of 300 index lines, written out as an ADRS
(per-visit OVR) and as a flat file, give identical responders (issue 15)."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from connectors.adrs import read_adrs, trial_response
from connectors.flatfile import load_flat_response
from connectors.registry import IndexRule, RegistryConnector
from connectors.response import RESPONSE, ResponseRule
from sample_data.paths import SAMPLE_REGISTRY


@pytest.fixture(scope="module")
def pool_keys():
    with RegistryConnector(f"sqlite:///{SAMPLE_REGISTRY}") as reg:
        frame = reg.candidate_pool(IndexRule()).frame
    return frame[["patient_id", "line_id", "index_date"]].head(300).reset_index(drop=True)


@pytest.mark.parametrize("rule", [ResponseRule(), ResponseRule(confirmed=False, by=24)])
def test_registry_adrs_and_flat_file_agree(tmp_path, pool_keys, rule):
    with RegistryConnector(f"sqlite:///{SAMPLE_REGISTRY}") as reg:
        registry = reg.responses(pool_keys, rule)
    assert registry[RESPONSE].sum() > 0  # the sample registry has confirmed responders
    # ADRS: the same patients' assessments as per-visit overall responses
    con = sqlite3.connect(SAMPLE_REGISTRY)
    a = pd.read_sql("select patient_id, assessment_date, overall_response, clinical_progression"
                    " from tumour_assessments", con)
    con.close()
    a = a[a["patient_id"].isin(pool_keys["patient_id"])]
    # clinical progression has no OVR code of its own: a trial records it as PD
    code = np.where(a["clinical_progression"].fillna(0).astype(bool), "PD",
                    a["overall_response"].fillna(""))
    adrs = pd.DataFrame({"USUBJID": a["patient_id"], "PARAMCD": "OVR", "AVALC": code,
                         "ADT": a["assessment_date"]})
    adrs = adrs[adrs["AVALC"] != ""]
    adrs.to_csv(tmp_path / "adrs.csv", index=False)
    subjects = pool_keys[["patient_id", "index_date"]]
    adam = trial_response(read_adrs(tmp_path / "adrs.csv"), subjects, rule)
    np.testing.assert_array_equal(adam[RESPONSE].to_numpy(), registry[RESPONSE].to_numpy())
    np.testing.assert_array_equal(adam["best_response"].to_numpy(),
                                  registry["best_response"].to_numpy())
    # flat file: the response column
    registry[["patient_id", RESPONSE]].rename(columns={RESPONSE: "orr"}).to_csv(
        tmp_path / "flat.csv", index=False)
    flat = load_flat_response(tmp_path / "flat.csv", id_col="patient_id", response_col="orr")
    np.testing.assert_array_equal(flat[RESPONSE].to_numpy(), registry[RESPONSE].to_numpy())


def test_shipped_trial_adrs_agrees_with_adtte():
    """The sample trial's ADRS (per-visit OVR) and ADTTE come from the same assessments: the
    first PD after index is the PFS event date of every progression that is not a death."""
    from connectors.trial import load_trial_arm
    from sample_data.paths import TRIAL_ADRS, TRIAL_ADSL, TRIAL_ADTTE

    trial = load_trial_arm(TRIAL_ADSL, TRIAL_ADTTE)
    adrs = read_adrs(TRIAL_ADRS)
    assert set(adrs["USUBJID"]) <= set(trial["patient_id"])
    adtte = pd.read_csv(TRIAL_ADTTE).query("PARAMCD == 'PFS'").set_index("USUBJID")
    index = trial.set_index("patient_id")["index_date"]
    pd_rows = adrs[(adrs["AVALC"] == "PD")]
    first_pd = pd_rows.groupby("USUBJID")["ADT"].min()
    progressed = adtte.index[adtte["EVNTDESC"].isin(
        ["Radiological progression", "Clinical progression"])]
    for sid in progressed:
        assert (first_pd[sid] - index[sid]).days == adtte.at[sid, "AVAL"], sid
    out = trial_response(adrs, trial[["patient_id", "index_date"]])
    assert len(out) == len(trial) and out["assessed"].all()

