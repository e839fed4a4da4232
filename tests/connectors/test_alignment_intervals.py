"""Registry PFS progression interval (`progression_interval_select`): pandas reference, backends."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from connectors import columns as cn
from connectors.registry import IndexRule, RegistryConnector
from sample_data.paths import SAMPLE_REGISTRY
from sample_data.writer import write_registry
from tests.databases import MARIADB_URL, PG_URL


def _extract(url, schema=None):
    with RegistryConnector(url, schema=schema) as conn:
        pool = conn.candidate_pool(IndexRule(selection="all"), include_outcomes=True)
        keys = pool.frame[[cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]]
        return pool.frame, conn.progression_intervals(keys)


def _reference(frame: pd.DataFrame, url_path) -> pd.DataFrame:
    """The rules of the docstring, written again with pandas on the raw tables."""
    con = sqlite3.connect(url_path)
    a = pd.read_sql("select * from tumour_assessments", con, parse_dates=["assessment_date"])
    fu = pd.read_sql("select * from follow_up", con, parse_dates=["death_date"])
    con.close()
    rows = []
    for _, r in frame.iterrows():
        idx = pd.Timestamp(r[cn.INDEX_DATE])
        p = a[(a.patient_id == r[cn.PATIENT_ID]) & (a.assessment_date > idx)]
        days = (p.assessment_date - idx).dt.days.to_numpy()
        prog = ((p.overall_response == "PD") | (p.clinical_progression == 1)).to_numpy()
        pf = (p.overall_response.isin(["CR", "PR", "SD"]) & (p.clinical_progression != 1))
        pf = pf.to_numpy()
        d = fu.loc[fu.patient_id == r[cn.PATIENT_ID], "death_date"]
        death = (d.iloc[0] - idx).days if len(d) and pd.notna(d.iloc[0]) else np.nan
        death = death if death >= 0 else np.nan
        fp = days[prog].min() if prog.any() else np.nan
        is_death = not np.isnan(death) and (np.isnan(fp) or death < fp)
        end = death if is_death else fp
        counted = days <= end if not np.isnan(end) else np.ones(days.size, bool)
        before = pf & ((days < end) if not np.isnan(end) else True)
        n = int(counted.sum())
        rows.append({
            cn.PFS_LAST_PF_DAYS: float(days[before].max()) if before.any() else 0.0,
            cn.PFS_DEATH: is_death,
            cn.PFS_N_ASSESSMENTS: n,
            cn.PFS_MEAN_GAP_DAYS: days[counted].max() / n if n else np.nan,
        })
    return pd.DataFrame(rows, index=frame.index)


def test_sample_registry_equals_pandas_reference_and_pfs():
    frame, got = _extract(f"sqlite:///{SAMPLE_REGISTRY}")
    sub = frame.iloc[::7]  # every 7th index line keeps the reference loop short
    want = _reference(sub, SAMPLE_REGISTRY)
    pd.testing.assert_frame_equal(got.loc[sub.index, list(cn.ALIGNMENT_COLUMNS)], want,
                                  check_dtype=False)
    ev = frame[cn.PFS_EVENT] == 1
    # censored: the last progression-free assessment is the censoring time
    assert (got.loc[~ev, cn.PFS_LAST_PF_DAYS] == frame.loc[~ev, cn.PFS_DAYS]).all()
    prog = ev & ~got[cn.PFS_DEATH]
    assert (got.loc[prog, cn.PFS_LAST_PF_DAYS] < frame.loc[prog, cn.PFS_DAYS]).all()
    assert (got.loc[ev & got[cn.PFS_DEATH], cn.PFS_LAST_PF_DAYS]
            <= frame.loc[ev & got[cn.PFS_DEATH], cn.PFS_DAYS]).all()
    assert 0.05 < got.loc[ev, cn.PFS_DEATH].mean() < 0.2


@pytest.mark.db
def test_postgresql_and_mariadb_equal_sqlite(tiny_sqlite, tiny_tables, pg_schema,
                                             mariadb_database):
    _, want = _extract(tiny_sqlite)
    assert len(want) > 0
    schema, admin = pg_schema
    write_registry(admin, tiny_tables, schema=schema)
    pd.testing.assert_frame_equal(_extract(PG_URL, schema=schema)[1], want, check_exact=True)
    database, admin = mariadb_database
    write_registry(admin, tiny_tables, schema=database)
    pd.testing.assert_frame_equal(_extract(MARIADB_URL, schema=database)[1], want,
                                  check_exact=True)
