"""Index line, covariates at index, PFS and OS on the tiny hand-made registry (SQLite).

Every expected value below is worked out by hand from the dates in conftest.py (day counts are
written as date differences so that they can be checked by eye). Floats are compared with a
relative tolerance of 1e-12: the database divides the same integer day counts by the same
constants in IEEE double precision, so anything larger than rounding noise is a bug.
"""

from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from connectors import columns as cn
from connectors.errors import ConnectorError
from connectors.registry import FRAME_COLUMNS, OUTCOME_TABLES, IndexRule, RegistryConnector

D = date
YEAR, MONTH = 365.25, 365.25 / 12


def days(a: date, b: date) -> int:
    return (b - a).days


# patient, line, index date, age, ecog, histology, pci, prior_crs, crs_hipec, pfi (months),
# prior lines, prior IO, months since diagnosis, ki67, bap1
COVARIATES = [
    ("P01", 102, D(2019, 9, 1), days(D(1960, 1, 1), D(2019, 9, 1)) / YEAR, 1, "epithelioid",
     12, True, True, days(D(2019, 6, 1), D(2019, 9, 1)) / MONTH, 1, False,
     days(D(2019, 1, 10), D(2019, 9, 1)) / MONTH, 10.0, "lost"),
    ("P02", 203, D(2019, 3, 1), days(D(1955, 6, 15), D(2019, 3, 1)) / YEAR, None, "biphasic",
     25, True, False, days(D(2019, 1, 15), D(2019, 3, 1)) / MONTH, 2, True,
     days(D(2017, 11, 20), D(2019, 3, 1)) / MONTH, np.nan, "retained"),
    ("P03", 302, D(2020, 1, 10), days(D(1970, 2, 28), D(2020, 1, 10)) / YEAR, 2, "biphasic",
     20, False, False, days(D(2019, 7, 1), D(2020, 1, 10)) / MONTH, 1, False,
     days(D(2019, 2, 1), D(2020, 1, 10)) / MONTH, 40.0, "lost"),
    ("P04", 402, D(2016, 1, 1), days(D(1948, 12, 31), D(2016, 1, 1)) / YEAR, 0, "epithelioid",
     None, False, False, np.nan, 1, False,
     days(D(2015, 5, 5), D(2016, 1, 1)) / MONTH, 5.5, "lost"),
    ("P07", 702, D(2019, 5, 1), days(D(1959, 7, 7), D(2019, 5, 1)) / YEAR, 1, None,
     15, False, False, days(D(2019, 3, 15), D(2019, 5, 1)) / MONTH, 1, False,
     days(D(2018, 6, 1), D(2019, 5, 1)) / MONTH, 12.0, "retained"),
    ("P08", 802, D(2019, 1, 10), days(D(1962, 8, 8), D(2019, 1, 10)) / YEAR, 0, "epithelioid",
     7, False, False, days(D(2018, 10, 1), D(2019, 1, 10)) / MONTH, 1, False,
     days(D(2018, 3, 3), D(2019, 1, 10)) / MONTH, 8.0, "lost"),
    ("P09", 902, D(2019, 4, 1), days(D(2003, 5, 1), D(2019, 4, 1)) / YEAR, 0, "other",
     5, False, False, days(D(2019, 2, 1), D(2019, 4, 1)) / MONTH, 1, False,
     days(D(2018, 9, 9), D(2019, 4, 1)) / MONTH, 1.0, "retained"),
    ("P10", 1002, D(2019, 6, 1), days(D(1970, 10, 10), D(2019, 6, 1)) / YEAR, 1, "epithelioid",
     10, False, False, days(D(2019, 4, 1), D(2019, 6, 1)) / MONTH, 1, False,
     days(D(2018, 11, 1), D(2019, 6, 1)) / MONTH, 3.0, "lost"),
]
COV_COLS = [cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE, cn.AGE, cn.ECOG, cn.HISTOLOGY, cn.PCI,
            cn.PRIOR_CRS, cn.CRS_HIPEC, cn.PFI_MONTHS, cn.PRIOR_LINES, cn.PRIOR_IMMUNOTHERAPY,
            cn.MONTHS_SINCE_DIAGNOSIS, cn.KI67, cn.BAP1]

# (patient, pfs_days, pfs_event, os_days, os_event, the rule it shows)
OUTCOMES = [
    ("P01", days(D(2019, 9, 1), D(2020, 1, 5)), 1, days(D(2019, 9, 1), D(2020, 6, 1)), 0,
     "first radiological PD after index; index-day assessment is baseline; OS censored"),
    ("P02", days(D(2019, 3, 1), D(2019, 7, 30)), 1, days(D(2019, 3, 1), D(2019, 10, 1)), 1,
     "clinical progression (response NE) is an event, before death"),
    ("P03", days(D(2020, 1, 10), D(2020, 5, 1)), 1, days(D(2020, 1, 10), D(2020, 5, 1)), 1,
     "death without progression is a PFS event"),
    ("P04", 0, 0, days(D(2016, 1, 1), D(2017, 3, 1)), 0,
     "no assessment after index and alive: PFS censored at day 0"),
    ("P07", days(D(2019, 5, 1), D(2019, 8, 1)), 0, days(D(2019, 5, 1), D(2019, 12, 31)), 0,
     "censored at the last adequate assessment (PR), not the later NE; PD before index ignored"),
    ("P08", days(D(2019, 1, 10), D(2019, 4, 10)), 1, days(D(2019, 1, 10), D(2020, 4, 1)), 0,
     "PD on the index day is baseline, the next PD is the event"),
    ("P09", days(D(2019, 4, 1), D(2019, 6, 1)), 0, None, None,
     "death dated before index: ignored for PFS, OS missing"),
    ("P10", 0, 0, days(D(2019, 6, 1), D(2019, 12, 1)), 0,
     "no assessment at all: PFS censored at day 0"),
]


@pytest.fixture(scope="module")
def conn(tiny_sqlite):
    c = RegistryConnector(tiny_sqlite)
    yield c
    c.close()


def _expected_covariates() -> pd.DataFrame:
    df = pd.DataFrame(COVARIATES, columns=COV_COLS)
    df[cn.INDEX_DATE] = pd.to_datetime(df[cn.INDEX_DATE])
    for c in (cn.LINE_ID, cn.ECOG, cn.PCI, cn.PRIOR_LINES):
        df[c] = pd.array(df[c], dtype="Int64")
    df[cn.HISTOLOGY] = df[cn.HISTOLOGY].astype(object).where(df[cn.HISTOLOGY].notna(), None)
    return df


def test_covariates_at_index_by_hand(conn):
    pool = conn.candidate_pool()
    got = pool.frame[COV_COLS].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, _expected_covariates(), rtol=1e-12, check_dtype=True)
    assert list(pool.frame.columns) == list(FRAME_COLUMNS)
    assert (pool.frame[cn.ARM] == cn.CONTROL).all()
    assert pool.frame.loc[pool.frame[cn.PATIENT_ID] == "P07", cn.SEX].item() is None


@pytest.mark.parametrize("row", OUTCOMES, ids=[r[0] for r in OUTCOMES])
def test_pfs_and_os_rules_by_hand(conn, row):
    patient, pfs_days, pfs_event, os_days, os_event, _rule = row
    frame = conn.candidate_pool(include_outcomes=True).frame.set_index(cn.PATIENT_ID)
    got = frame.loc[patient]
    assert got[cn.PFS_DAYS] == pfs_days and got[cn.PFS_EVENT] == pfs_event
    if os_days is None:
        assert pd.isna(got[cn.OS_DAYS]) and pd.isna(got[cn.OS_EVENT])
    else:
        assert got[cn.OS_DAYS] == os_days and got[cn.OS_EVENT] == os_event


def test_outcome_column_types(conn):
    frame = conn.candidate_pool(include_outcomes=True).frame
    assert frame[cn.PFS_DAYS].dtype == "float64" and frame[cn.PFS_EVENT].dtype == "int64"
    assert frame[cn.OS_DAYS].dtype == "float64" and str(frame[cn.OS_EVENT].dtype) == "Int64"


def test_no_outcome_columns_in_the_design_pool(conn):
    assert not set(cn.OUTCOME_COLUMNS) & set(conn.candidate_pool().frame.columns)


def test_outcomes_by_key_equal_the_joined_extraction(conn):
    pool = conn.candidate_pool(IndexRule(selection="all"), include_outcomes=True)
    keys = pool.frame[[cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]].iloc[::-1]
    got = conn.outcomes(keys)
    assert got.index.equals(keys.index)
    want = pool.frame.loc[keys.index, [cn.PATIENT_ID, cn.LINE_ID, *cn.OUTCOME_COLUMNS]]
    pd.testing.assert_frame_equal(got, want)


def test_outcomes_refuse_keys_that_do_not_match(conn):
    keys = conn.candidate_pool().frame[[cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]].copy()
    shifted = keys.copy()
    shifted.loc[shifted.index[0], cn.INDEX_DATE] = pd.Timestamp("2000-01-01")
    with pytest.raises(ConnectorError, match=r"key row 1 .*does not match"):
        conn.outcomes(shifted)
    unknown = keys.copy()
    unknown.loc[unknown.index[0], cn.LINE_ID] = 999999
    with pytest.raises(ConnectorError, match="line_id \\[999999\\] not in"):
        conn.outcomes(unknown)


def test_all_lines_selection(conn):
    pool = conn.candidate_pool(IndexRule(selection="all"))
    f = pool.frame.set_index(cn.LINE_ID)
    assert f.loc[f[cn.PATIENT_ID] == "P08"].index.tolist() == [802, 803, 804]
    assert f.loc[f[cn.PATIENT_ID] == "P01"].index.tolist() == [102, 103]
    # same-day lines are not "prior" to each other (L1002 is immunotherapy)
    assert f.loc[f[cn.PATIENT_ID] == "P10"].index.tolist() == [1002, 1003]
    assert f.loc[1003, cn.PRIOR_LINES] == 1 and not f.loc[1003, cn.PRIOR_IMMUNOTHERAPY]
    # L804 follows the platinum rechallenge L803: PFI from L803's end, three prior lines
    assert f.loc[804, cn.PFI_MONTHS] == days(D(2019, 9, 1), D(2019, 12, 1)) / MONTH
    assert f.loc[804, cn.PRIOR_LINES] == 3
    # L803 (itself platinum) follows L801
    assert f.loc[803, cn.PFI_MONTHS] == days(D(2018, 10, 1), D(2019, 5, 1)) / MONTH
    t = pool.attrition.table
    assert pool.attrition.unit == "patient-lines"
    assert t["n_remaining"].tolist() == [10, 8, 12, 12]
    assert len(pool.frame) == 12


def test_index_regimen_is_configurable(conn):
    pool = conn.candidate_pool(IndexRule(after_regimen="gemcitabine"))
    got = dict(zip(pool.frame[cn.PATIENT_ID], pool.frame[cn.LINE_ID], strict=True))
    # lines after a gemcitabine line: P01 L103, P08 L803 (P03/P04/P05/P09/P10: none after it)
    assert got == {"P01": 103, "P08": 803}
    t = pool.attrition.table
    assert t.loc[1, "criterion"] == "with an index line after gemcitabine"
    assert t.loc[1, "n_excluded"] == 8


def test_attrition_with_criteria_by_hand(conn):
    pool = conn.candidate_pool(
        eligibility=["age_at_index >= 18", "ecog_at_index <= 1", "histology != 'other'",
                     "disease == 'peritoneal_mesothelioma'"]
    )
    t = pool.attrition.table
    # 10 patients; P05, P06 no index line; P09 age 16 fails; P02 ECOG missing, P03 ECOG 2
    # fails; histology: P07 missing; disease: all remaining are mesothelioma
    assert t["n_excluded"].tolist() == [0, 2, 1, 0, 1, 1, 0, 1, 0, 0, 0]
    assert t["n_remaining"].tolist() == [10, 8, 7, 7, 6, 5, 5, 4, 4, 4, 4]
    assert t["reason"].tolist()[1:6] == [
        "no line starting after a platinum_pemetrexed line", "fails criterion",
        "missing age_at_index", "fails criterion", "missing ecog_at_index",
    ]
    assert pool.frame[cn.PATIENT_ID].tolist() == ["P01", "P04", "P08", "P10"]
    assert pool.criteria[0] == "age_at_index >= 18"


def test_design_stage_does_not_read_outcome_tables(conn):
    """Every statement of candidate_pool(include_outcomes=False) avoids OUTCOME_TABLES."""
    statements: list[str] = []

    def log(conn_, cursor, statement, *args):
        statements.append(statement.lower())

    sa.event.listen(conn._engine, "before_cursor_execute", log)  # test-only peek
    try:
        conn.candidate_pool(eligibility=["ecog_at_index <= 1"])
    finally:
        sa.event.remove(conn._engine, "before_cursor_execute", log)
    assert statements
    for table in OUTCOME_TABLES:
        assert not any(table in s for s in statements), table
    assert not any("end_reason" in s for s in statements)


def test_design_pool_survives_without_outcome_tables_or_index_line_ends(tiny_tables, tmp_path):
    """Outcome tables dropped and index lines' end data changed: the same design pool."""
    from sample_data.writer import write_registry_sqlite

    path = tmp_path / "r.sqlite"
    tables = {k: v.copy() for k, v in tiny_tables.items()}
    index_lines = [102, 203, 302, 402, 702, 802, 902, 1002]
    lines = tables["treatment_lines"]
    changed = lines["line_id"].isin(index_lines)
    lines.loc[changed, "end_date"] = date(2030, 1, 1)
    lines.loc[changed, "end_reason"] = "toxicity"
    write_registry_sqlite(tables, path)
    ref_path = tmp_path / "ref.sqlite"
    write_registry_sqlite(tiny_tables, ref_path)
    with RegistryConnector(f"sqlite:///{ref_path}") as ref:
        want = ref.candidate_pool().frame
    import sqlite3

    with sqlite3.connect(path) as raw:
        for table in OUTCOME_TABLES:
            raw.execute(f"DROP TABLE {table}")
    with RegistryConnector(f"sqlite:///{path}") as c:
        pd.testing.assert_frame_equal(c.candidate_pool().frame, want)
        with pytest.raises(Exception, match="missing table or view tumour_assessments"):
            c.candidate_pool(include_outcomes=True)


def test_content_hash_is_stable_and_sensitive(conn):
    a = conn.candidate_pool()
    b = conn.candidate_pool()
    c = conn.candidate_pool(eligibility=["pci < 20"])
    assert a.content_hash() == b.content_hash() != c.content_hash()
    assert "sqlite" in repr(a)


def test_empty_pool(conn):
    pool = conn.candidate_pool(eligibility=["age_at_index > 200"])
    assert len(pool.frame) == 0 and list(pool.frame.columns) == list(FRAME_COLUMNS)
    assert pool.attrition.n_final == 0


def test_empty_pool_with_outcomes(conn):
    pool = conn.candidate_pool(eligibility=["age_at_index > 200"], include_outcomes=True)
    assert len(pool.frame) == 0
    assert list(pool.frame.columns) == [*FRAME_COLUMNS, *cn.OUTCOME_COLUMNS]


def test_index_rule_is_validated():
    with pytest.raises(ConnectorError, match="'first' or 'all'"):
        IndexRule(selection="last")
    with pytest.raises(ConnectorError, match="regimen code"):
        IndexRule(after_regimen="")


def test_unknown_column_in_a_criterion_is_refused_before_any_query(conn):
    from connectors.errors import CriterionError

    with pytest.raises(CriterionError, match=r"unknown column 'ecog'.*known columns: "):
        conn.candidate_pool(eligibility=["ecog <= 1"])


@pytest.mark.parametrize("one_parameter", [False, True])
def test_outcomes_in_several_key_chunks(conn, monkeypatch, one_parameter):
    # above KEY_CHUNK lines: one statement with the ids as one JSON parameter (SQLite), or,
    # where the dialect has no such form, several IN-list chunks; the same outcomes
    import connectors.registry as registry

    pool = conn.candidate_pool(IndexRule(selection="all"), include_outcomes=True)
    monkeypatch.setattr(registry, "KEY_CHUNK", 3)
    if not one_parameter:
        monkeypatch.setattr(registry, "in_one_parameter", lambda *a, **k: None)
    again = conn.outcomes(pool.frame[[cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]])
    pd.testing.assert_frame_equal(again[list(cn.OUTCOME_COLUMNS)],
                                  pool.frame[list(cn.OUTCOME_COLUMNS)])


@pytest.mark.filterwarnings("error::FutureWarning")
def test_streaming_in_small_chunks_gives_the_same_pool(conn, monkeypatch):
    import connectors.registry as registry

    want = conn.candidate_pool(IndexRule(selection="all"), include_outcomes=True)
    monkeypatch.setattr(registry, "CHUNK_ROWS", 2)
    got = conn.candidate_pool(IndexRule(selection="all"), include_outcomes=True)
    pd.testing.assert_frame_equal(got.frame, want.frame)
    pd.testing.assert_frame_equal(got.attrition.table, want.attrition.table)


def test_content_hash_is_the_sha256_of_pandas_csv(conn):
    # the fast path (floats formatted once per distinct value, dates by numpy) hashes the
    # very bytes of pandas' to_csv, edge values included: recorded hashes stay valid
    import dataclasses
    import hashlib

    pool = conn.candidate_pool(IndexRule(selection="all"), include_outcomes=True)
    frame = pool.frame.copy()
    floats = [c for c in frame.columns if frame[c].dtype == np.float64]
    dates = [c for c in frame.columns if frame[c].dtype.kind == "M"]
    assert floats and dates
    frame.loc[frame.index[0], floats[0]] = -0.0
    frame.loc[frame.index[1], floats[0]] = np.inf
    frame.loc[frame.index[2], floats[0]] = np.nan
    frame.loc[frame.index[3], floats[0]] = 1234567890123.25
    frame.loc[frame.index[4], floats[0]] = 1e-9
    frame.loc[frame.index[0], dates[0]] = pd.NaT
    pool = dataclasses.replace(pool, frame=frame)
    text = frame.to_csv(index=False, date_format="%Y-%m-%d", float_format="%.10g")
    assert pool.content_hash() == hashlib.sha256(text.encode("utf-8")).hexdigest()
