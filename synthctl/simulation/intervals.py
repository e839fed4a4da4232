"""PFS progression intervals of a simulated replicate (the harmonised design option).

Registry arm: the rules of `connectors.derivation.progression_interval_select`, applied with
pandas to the simulator's tables (a replicate never goes through a database); the test
`tests/synthctl/test_simulation_alignment.py` checks that both agree on the sample registry.
Trial arm: the protocol schedule (`connectors.progression.schedule_progression_interval`),
as a study without ADRS would do; a PFS event on the day of death is a death.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from connectors import columns as cols
from connectors.derivation import ADEQUATE_RESPONSES, PROGRESSION_RESPONSE
from connectors.progression import schedule_progression_interval


def registry_intervals(tables: dict[str, pd.DataFrame], control: pd.DataFrame) -> pd.DataFrame:
    """`connectors.columns.ALIGNMENT_COLUMNS` of each control row (index of ``control``)."""
    a = tables["tumour_assessments"]
    fu = tables["follow_up"].set_index(cols.PATIENT_ID)["death_date"]
    key = control[[cols.PATIENT_ID, cols.INDEX_DATE]].reset_index(names="_row")
    m = key.merge(a, on=cols.PATIENT_ID, how="inner")
    m["days"] = (pd.to_datetime(m["assessment_date"]) - pd.to_datetime(m[cols.INDEX_DATE])).dt.days
    m = m[m["days"] > 0]
    clin = m["clinical_progression"].fillna(False).astype(bool)
    m["prog"] = (m["overall_response"] == PROGRESSION_RESPONSE) | clin
    m["pf"] = m["overall_response"].isin(ADEQUATE_RESPONSES) & ~clin
    first = m.loc[m["prog"]].groupby("_row")["days"].min()
    death = (pd.to_datetime(control[cols.PATIENT_ID].map(fu))
             - pd.to_datetime(control[cols.INDEX_DATE])).dt.days.to_numpy(float)
    death = np.where(death >= 0, death, np.nan)
    fp = first.reindex(np.arange(len(control))).to_numpy(float)
    is_death = ~np.isnan(death) & (np.isnan(fp) | (death < fp))
    end = np.where(is_death, death, fp)
    m_end = end[m["_row"].to_numpy()]
    counted = np.isnan(m_end) | (m["days"].to_numpy() <= m_end)
    before = m["pf"].to_numpy() & (np.isnan(m_end) | (m["days"].to_numpy() < m_end))
    rows = m["_row"].to_numpy()
    n = len(control)
    last_pf = np.zeros(n)
    np.maximum.at(last_pf, rows[before], m["days"].to_numpy(float)[before])
    n_visits = np.bincount(rows[counted], minlength=n)
    last_visit = np.zeros(n)
    np.maximum.at(last_visit, rows[counted], m["days"].to_numpy(float)[counted])
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(n_visits > 0, last_visit / n_visits, np.nan)
    return pd.DataFrame({cols.PFS_LAST_PF_DAYS: last_pf, cols.PFS_DEATH: is_death,
                         cols.PFS_N_ASSESSMENTS: n_visits.astype("int64"),
                         cols.PFS_MEAN_GAP_DAYS: gap}, index=control.index)


def trial_intervals(trial: pd.DataFrame, every_days: float) -> pd.DataFrame:
    """`connectors.columns.ALIGNMENT_COLUMNS` of the trial rows from the protocol schedule."""
    arm = trial.assign(**{cols.PFS_DEATH: (trial[cols.PFS_EVENT] == 1)
                          & (trial[cols.OS_EVENT] == 1)
                          & (trial[cols.OS_DAYS] == trial[cols.PFS_DAYS])})
    out = schedule_progression_interval(arm, every_days)
    return out.drop(columns=cols.PATIENT_ID)
