"""From simulated histories to registry tables, and the registry's analysis frame.

`registry_tables` applies what a registry records: the data cut-off and loss to follow-up
(nothing after a patient's horizon), missing values (MCAR), codes of
`connectors.schema`. `control_frame` is a pandas reference implementation of the candidate
pool rules (index line, covariates at index, PFS/OS), used by the simulation study's fast
path and as an independent check of the SQL connector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors import columns as cols
from sample_data import _dgp

EPOCH = np.datetime64("1970-01-01", "D")
CITIES = (
    ("Lyon", "Auvergne-Rhone-Alpes"), ("Paris", "Ile-de-France"),
    ("Marseille", "Provence-Alpes-Cote d'Azur"), ("Bordeaux", "Nouvelle-Aquitaine"),
    ("Toulouse", "Occitanie"), ("Lille", "Hauts-de-France"), ("Nantes", "Pays de la Loire"),
    ("Strasbourg", "Grand Est"), ("Montpellier", "Occitanie"), ("Rennes", "Bretagne"),
    ("Nice", "Provence-Alpes-Cote d'Azur"), ("Grenoble", "Auvergne-Rhone-Alpes"),
    ("Dijon", "Bourgogne-Franche-Comte"), ("Tours", "Centre-Val de Loire"),
    ("Rouen", "Normandie"), ("Clermont-Ferrand", "Auvergne-Rhone-Alpes"),
    ("Brest", "Bretagne"), ("Reims", "Grand Est"), ("Nancy", "Grand Est"),
    ("Angers", "Pays de la Loire"),
)


def day_number(iso: str) -> int:
    """ISO date -> days since 1970-01-01."""
    return int((np.datetime64(iso, "D") - EPOCH).astype(np.int64))


def to_dates(days: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
    """Day numbers -> datetime64 Series (NaT where ``missing``)."""
    days = np.asarray(days, np.int64)
    out = (EPOCH + np.where(missing, 0, days) if missing is not None else EPOCH + days)
    out = out.astype("datetime64[ns]")
    if missing is not None:
        out[missing] = np.datetime64("NaT")
    return pd.Series(out)


@dataclass(frozen=True)
class Structure:
    """The registry's fixed structure: centres, their sizes, effects and imaging habits."""

    centre_p: np.ndarray
    centre_lhr: np.ndarray  # centre effect on the log-hazard of progression
    centre_interval: np.ndarray  # centre's mean imaging interval, days
    criteria_mrecist: np.ndarray  # centre uses mRECIST (else RECIST 1.1)

    @classmethod
    def from_config(cls, cfg) -> Structure:
        rng = np.random.default_rng([cfg.structure_seed, 7])
        size = np.sort(rng.gamma(0.9, 1.0, cfg.n_centres))[::-1] + 0.05
        lo, hi = cfg.registry_interval_weeks
        return cls(
            centre_p=size / size.sum(),
            centre_lhr=rng.normal(0.0, 0.12, cfg.n_centres),
            centre_interval=7.0 * (lo + (hi - lo) * rng.uniform(0.15, 0.7, cfg.n_centres)),
            criteria_mrecist=rng.random(cfg.n_centres) < 0.3,
        )

    def registry_schedule(self, cfg):
        """Irregular imaging: each interval a gamma draw around the centre's habit, clipped."""
        lo, hi = (7.0 * w for w in cfg.registry_interval_weeks)
        window = cfg.registry_visit_window_days
        mean_of = self.centre_interval

        def schedule(rng, cohort, pids):
            noise = rng.gamma(8.0, 1 / 8.0, pids.size)
            step = np.clip(np.round(mean_of[cohort.centre[pids]] * noise), lo, hi)
            jitter = rng.integers(-window, window + 1, pids.size) if window else 0
            return step.astype(np.int64), jitter

        return schedule


def fixed_schedule(interval_weeks: float, window_days: int):
    """Imaging every ``interval_weeks`` from the line start, +/- ``window_days`` per visit."""
    step_days = round(7 * interval_weeks)

    def schedule(rng, cohort, pids):
        jitter = rng.integers(-window_days, window_days + 1, pids.size) if window_days else 0
        return np.full(pids.size, step_days, np.int64), jitter

    return schedule


def patient_ids(n: int, prefix: str = "P") -> np.ndarray:
    """Pseudonymous identifiers P0000001, ... (object array)."""
    width = max(7, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def registry_tables(c: _dgp.Cohort, cfg) -> dict[str, pd.DataFrame]:
    """The registry as recorded at the cut-off: dict of logical table -> DataFrame."""
    rng = np.random.default_rng([cfg.seed, 11])  # missingness only
    n = c.n
    pid = patient_ids(n)
    structure = Structure.from_config(cfg)
    centre_codes = np.array([f"C{i + 1:02d}" for i in range(cfg.n_centres)], dtype=object)
    names = [
        (f"Centre {i + 1:02d} ({CITIES[i % len(CITIES)][0]})", CITIES[i % len(CITIES)][1])
        for i in range(cfg.n_centres)
    ]
    centres = pd.DataFrame(
        {
            "centre_id": centre_codes,
            "centre_name": [nm for nm, _ in names],
            "region": [rg for _, rg in names],
        }
    )
    patients = pd.DataFrame(
        {
            "patient_id": pid,
            "centre_id": centre_codes[c.centre],
            "sex": np.where(c.female, "F", "M").astype(object),
            "birth_date": to_dates(c.birth_day),
        }
    )
    ki67_na = rng.random(n) < cfg.ki67_missing
    bap1_na = rng.random(n) < cfg.bap1_missing
    # PCI is scored during cytoreductive surgery: rarely missing then (1%)
    pci_na = rng.random(n) < np.where(c.crs, 0.01, cfg.pci_missing)
    diagnoses = pd.DataFrame(
        {
            "diagnosis_id": np.arange(1, n + 1),
            "patient_id": pid,
            "diagnosis_date": to_dates(c.diag_day),
            "disease": "peritoneal_mesothelioma",
            "histology": np.array(_dgp.HISTOLOGY, dtype=object)[c.histology],
            "pci": pd.array(np.where(pci_na, 0, c.pci), dtype="Int64"),
            "ki67_percent": np.where(ki67_na, np.nan, c.ki67),
            "bap1_status": np.where(bap1_na, None, np.where(c.bap1_lost, "lost", "retained")),
        }
    )
    diagnoses.loc[pci_na, "pci"] = pd.NA
    # a surgery the DGP dates after the patient's death (non-CRS surgeries are not tied to the
    # first line, whose course draws the death) did not happen: no record
    s_idx = np.flatnonzero(
        c.surgery & (c.surgery_day <= c.horizon) & (c.surgery_day <= c.death_day)
    )
    surgeries = pd.DataFrame(
        {
            "surgery_id": np.arange(1, s_idx.size + 1),
            "patient_id": pid[s_idx],
            "surgery_date": to_dates(c.surgery_day[s_idx]),
            "crs": c.crs[s_idx],
            "hipec": c.hipec[s_idx],
            "cc_score": pd.array(c.cc[s_idx], dtype="Int64"),
        }
    )
    surgeries.loc[~c.crs[s_idx], "cc_score"] = pd.NA
    lines, line_pi, line_last = _lines_table(c, pid, rng, cfg)
    assessments, a_pid, a_day = _assessments_table(c, pid, structure)
    # last recorded fact of each patient: contact is at least then
    last = c.diag_day.copy()
    np.maximum.at(last, line_pi, line_last)
    np.maximum.at(last, a_pid, a_day)
    last = np.where(c.surgery & (c.surgery_day <= c.horizon), np.maximum(last, c.surgery_day), last)
    follow_up = _follow_up_table(c, pid, cfg, last, rng)
    return {
        "centres": centres,
        "patients": patients,
        "diagnoses": diagnoses,
        "surgeries": surgeries,
        "treatment_lines": lines,
        "tumour_assessments": assessments,
        "follow_up": follow_up,
    }


def _lines_table(c, pid, rng, cfg) -> pd.DataFrame:
    observed = c.present & (c.start <= c.horizon[:, None])
    pi, k = np.nonzero(observed)  # row-major: by patient then line
    start = c.start[pi, k]
    end = c.end[pi, k]
    ongoing = end > c.horizon[pi]
    reason = np.array(_dgp.END_REASONS, dtype=object)[np.maximum(c.end_reason[pi, k], 0)]
    reason[ongoing] = None
    regimen = np.array(_dgp.REGIMEN_CODES, dtype=object)[c.regimen[pi, k]]
    classes = np.array([_dgp.REGIMENS[r][0] for r in _dgp.REGIMEN_CODES], dtype=object)
    ecog_na = rng.random(pi.size) < cfg.ecog_missing
    ecog = pd.array(c.ecog[pi, k], dtype="Int64")
    ecog[ecog_na] = pd.NA
    frame = pd.DataFrame(
        {
            "line_id": np.arange(1, pi.size + 1),
            "patient_id": pid[pi],
            "line_number": k + 1,
            "regimen": regimen,
            "drug_classes": classes[c.regimen[pi, k]],
            "start_date": to_dates(start),
            "end_date": to_dates(end, ongoing),
            "end_reason": reason,
            "ecog_at_start": ecog,
        }
    )
    return frame, pi, np.where(ongoing, start, end)


def _assessments_table(c, pid, structure: Structure) -> pd.DataFrame:
    a_pid, a_day, a_resp, a_clin = _dgp.assessments(c)
    criteria = np.where(structure.criteria_mrecist[c.centre[a_pid]], "mRECIST", "RECIST1.1")
    frame = pd.DataFrame(
        {
            "assessment_id": np.arange(1, a_pid.size + 1),
            "patient_id": pid[a_pid],
            "assessment_date": to_dates(a_day),
            "criteria": criteria.astype(object),
            "overall_response": np.array(_dgp.RESPONSES, dtype=object)[a_resp],
            "clinical_progression": a_clin,
        }
    )
    return frame, a_pid, a_day


def _follow_up_table(c, pid, cfg, last, rng) -> pd.DataFrame:
    n = c.n
    dead = c.death_day <= c.horizon
    cutoff = day_number(cfg.data_cutoff)
    lost = c.horizon < cutoff
    recent = np.maximum(last, cutoff - rng.integers(0, 46, n))
    contact = np.where(dead, c.death_day, np.where(lost, c.horizon, np.minimum(recent, cutoff)))
    return pd.DataFrame(
        {
            "patient_id": pid,
            "last_contact_date": to_dates(contact),
            "vital_status": np.where(dead, "dead", "alive").astype(object),
            "death_date": to_dates(c.death_day, ~dead),
        }
    )


# --- the analysis frame of the registry (reference implementation) ---------------------------


def control_frame(tables: dict[str, pd.DataFrame], after_regimen: str = "platinum_pemetrexed"):
    """One row per registry patient with an index line: covariates at index and outcomes.

    Index line: the first line (by start date, then line number) starting after the first
    ``after_regimen`` line started. Covariates at index and PFS/OS as in docs/sample_data.md.
    """
    lines = tables["treatment_lines"].sort_values(["patient_id", "start_date", "line_number"])
    anchor = lines[lines["regimen"] == after_regimen].groupby("patient_id", sort=False).head(1)
    cand = lines.merge(
        anchor[["patient_id", "start_date", "end_date", "line_number"]],
        on="patient_id",
        suffixes=("", "_anchor"),
    )
    cand = cand[cand["start_date"] > cand["start_date_anchor"]]
    index = cand.groupby("patient_id", sort=False).head(1).set_index("patient_id")
    idx_date = index["start_date"]
    pats = tables["patients"].set_index("patient_id").loc[index.index]
    diag = tables["diagnoses"].drop_duplicates("patient_id").set_index("patient_id")
    diag = diag.reindex(index.index)
    frame = pd.DataFrame(index=index.index)
    frame[cols.ARM] = cols.CONTROL
    frame[cols.LINE_ID] = pd.array(index["line_id"], dtype="Int64")
    frame[cols.CENTRE_ID] = pats["centre_id"]
    frame[cols.INDEX_DATE] = idx_date
    frame[cols.DISEASE] = diag["disease"]
    frame[cols.AGE] = (idx_date - pats["birth_date"]).dt.days / 365.25
    frame[cols.SEX] = pats["sex"]
    frame[cols.ECOG] = pd.array(index["ecog_at_start"], dtype="Int64")
    frame[cols.HISTOLOGY] = diag["histology"]
    frame[cols.PCI] = pd.array(diag["pci"], dtype="Int64")
    surg = tables["surgeries"].merge(idx_date.rename("index_date").reset_index(), on="patient_id")
    surg = surg[surg["surgery_date"] < surg["index_date"]]
    crs = surg[surg["crs"].astype(bool)]
    frame[cols.PRIOR_CRS] = frame.index.isin(crs["patient_id"])
    frame[cols.CRS_HIPEC] = frame.index.isin(crs.loc[crs["hipec"].fillna(False).astype(bool),
                                                  "patient_id"])
    pfi_days = (idx_date - index["end_date_anchor"]).dt.days
    frame[cols.PFI_MONTHS] = pfi_days / cols.DAYS_PER_UNIT["months"]
    prior = lines.merge(idx_date.rename("index_date").reset_index(), on="patient_id")
    prior = prior[prior["start_date"] < prior["index_date"]]
    frame[cols.PRIOR_LINES] = pd.array(
        prior.groupby("patient_id").size().reindex(frame.index, fill_value=0), dtype="Int64"
    )
    io = prior[prior["drug_classes"].str.contains("immune_checkpoint_inhibitor", regex=False)]
    frame[cols.PRIOR_IMMUNOTHERAPY] = frame.index.isin(io["patient_id"])
    frame[cols.MONTHS_SINCE_DIAGNOSIS] = (
        (idx_date - diag["diagnosis_date"]).dt.days / cols.DAYS_PER_UNIT["months"]
    )
    frame[cols.KI67] = diag["ki67_percent"].astype(float)
    frame[cols.BAP1] = diag["bap1_status"]
    _outcomes(frame, tables)
    frame = frame.reset_index().rename(columns={"index": cols.PATIENT_ID})
    return frame


def _outcomes(frame: pd.DataFrame, tables) -> None:
    idx = frame[cols.INDEX_DATE].rename("index_date").reset_index()
    a = tables["tumour_assessments"].merge(idx, on="patient_id")
    a = a[a["assessment_date"] > a["index_date"]]
    prog = a["overall_response"].eq("PD") | a["clinical_progression"].fillna(False).astype(bool)
    first_prog = a[prog].groupby("patient_id")["assessment_date"].min()
    last_assess = a[~prog].groupby("patient_id")["assessment_date"].max()
    fu = tables["follow_up"].set_index("patient_id").reindex(frame.index)
    death = fu["death_date"]
    prog_date = first_prog.reindex(frame.index)
    event_date = pd.concat([prog_date, death], axis=1).min(axis=1)
    censor_date = last_assess.reindex(frame.index).fillna(frame[cols.INDEX_DATE])
    pfs_event = event_date.notna()
    pfs_date = event_date.where(pfs_event, censor_date)
    frame[cols.PFS_DAYS] = (pfs_date - frame[cols.INDEX_DATE]).dt.days.astype(float)
    frame[cols.PFS_EVENT] = pfs_event.astype(int)
    os_event = death.notna()
    os_date = death.where(os_event, fu["last_contact_date"])
    frame[cols.OS_DAYS] = (os_date - frame[cols.INDEX_DATE]).dt.days.astype(float)
    frame[cols.OS_EVENT] = os_event.astype(int)
