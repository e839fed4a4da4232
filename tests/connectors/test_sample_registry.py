"""The shipped sample registry and trial: the demo pool, and SQL == DataFrame eligibility."""

import pandas as pd
import pytest
import yaml

from connectors import columns as cn
from connectors.attrition import apply_criteria_to_frame
from connectors.registry import IndexRule, RegistryConnector
from connectors.trial import load_trial_arm
from sample_data.paths import DEMO_SPEC, SAMPLE_REGISTRY, TRIAL_ADSL, TRIAL_ADTTE


@pytest.fixture(scope="module")
def demo_criteria() -> list[str]:
    return yaml.safe_load(DEMO_SPEC.read_text())["eligibility"]


@pytest.fixture(scope="module")
def conn():
    c = RegistryConnector(f"sqlite:///{SAMPLE_REGISTRY}")
    yield c
    c.close()


def test_demo_pool(conn, demo_criteria):
    conn.check_schema()
    pool = conn.candidate_pool(IndexRule(), eligibility=demo_criteria)
    t = pool.attrition.table
    assert t["criterion"].tolist()[:2] == [
        "registry patients", "with an index line after platinum_pemetrexed"]
    assert pool.attrition.n_start == 2000
    assert 100 < len(pool.frame) < 2000 and pool.attrition.n_final == len(pool.frame)
    assert t.loc[t["reason"] == "missing ecog_at_index", "n_excluded"].item() > 0
    f = pool.frame
    assert f[cn.PATIENT_ID].is_unique and (f[cn.ARM] == cn.CONTROL).all()
    assert f[cn.AGE].between(18, 80).all() and (f[cn.ECOG] <= 1).all()
    assert f[cn.HISTOLOGY].isin(["epithelioid", "biphasic"]).all()
    assert not f[cn.PRIOR_IMMUNOTHERAPY].any()


def test_sql_and_dataframe_eligibility_agree_on_the_sample(conn, demo_criteria):
    """Same rows and same per-criterion counts from SQL and from the flat-file path."""
    criteria = [*demo_criteria, "ki67 == None or ki67 < 30", "pci < 25 and crs_hipec"]
    in_sql = conn.candidate_pool(IndexRule(), eligibility=criteria)
    everyone = conn.candidate_pool(IndexRule())
    kept, attrition = apply_criteria_to_frame(everyone.frame, criteria)
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), in_sql.frame)
    sql_rows = in_sql.attrition.table.iloc[2:].reset_index(drop=True)
    frame_rows = attrition.table.iloc[1:].reset_index(drop=True)
    cols = ["criterion", "n_remaining", "n_excluded", "reason"]
    pd.testing.assert_frame_equal(sql_rows[cols], frame_rows[cols])


def test_shipped_trial_loads(conn):
    trial = load_trial_arm(TRIAL_ADSL, TRIAL_ADTTE)
    assert len(trial) == 27 and (trial[cn.ARM] == cn.TRIAL).all()
    assert trial[[cn.PFS_DAYS, cn.PFS_EVENT, cn.OS_DAYS, cn.OS_EVENT]].notna().all().all()
