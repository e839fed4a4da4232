"""The single-arm trial: candidate pool, selection toward better prognosis, ADaM files.

Trial candidates are second-line patients from the registry's own data-generating process
(platinum-pemetrexed first line, progression, a second line started), restricted to the trial
eligibility (age 18 to ``trial_max_age``, ECOG 0-1, epithelioid or biphasic histology, no prior
immunotherapy) and then *selected* with probability proportional to ``exp(confounding * g(x))``
where ``g`` favours younger, ECOG 0, epithelioid patients with a long platinum-free interval
and prior CRS-HIPEC. Selection depends on these observed covariates only: no unmeasured
confounding, by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors import columns as cols
from sample_data import _dgp
from sample_data._tables import Structure, day_number, fixed_schedule, to_dates

STUDYID = "MESO-2L-001"
# g(x): log-odds of selection per unit of each covariate (multiplied by `confounding`)
SELECTION = {
    "age_per_year": -0.025,
    "ecog_1": -0.4,
    "epithelioid": 0.3,
    "pfi_per_month": 0.045,  # capped at 12 months
    "crs_hipec": 0.2,
}


@dataclass(frozen=True)
class TrialData:
    """ADaM ADSL, ADTTE and ADRS (per-visit overall response) of the simulated trial."""

    adsl: pd.DataFrame
    adtte: pd.DataFrame
    adrs: pd.DataFrame


def candidate_pool(rng, n: int, cfg, structure: Structure):
    """Histories of ``n`` patients up to a second-line start.

    Returns (cohort, eligible indices, selection log-weights of the eligible).
    """
    day0 = day_number(cfg.diagnosis_start)
    day1 = day_number(cfg.data_cutoff) - 60
    pool = _dgp.simulate_cohort(
        rng, n, cfg, structure.centre_p, structure.centre_lhr, (day0, day1), _dgp.NEVER,
        structure.registry_schedule(cfg), last_line=1,
    )
    eligible, score = selection_score(pool, cfg)
    return pool, eligible, cfg.confounding * score


def second_line_population(pool: _dgp.Cohort) -> np.ndarray:
    """Indices of pool patients on a second line after first-line platinum-pemetrexed."""
    return np.flatnonzero(pool.present[:, 1] & (pool.regimen[:, 0] == _dgp.PLAT_PEM))


def selection_score(pool: _dgp.Cohort, cfg) -> tuple[np.ndarray, np.ndarray]:
    """Trial-eligible indices and their selection score g(x)."""
    idx = second_line_population(pool)
    age = (pool.start[idx, 1] - pool.birth_day[idx]) / 365.25
    ecog = pool.ecog[idx, 1]
    ok = (age >= 18) & (age <= cfg.trial_max_age) & (ecog <= 1) & (pool.histology[idx] <= 1)
    idx, age, ecog = idx[ok], age[ok], ecog[ok]
    crs_hipec = pool.crs[idx] & pool.hipec[idx] & (pool.surgery_day[idx] < pool.start[idx, 1])
    g = (
        SELECTION["age_per_year"] * (age - 63.0)
        + SELECTION["ecog_1"] * (ecog == 1)
        + SELECTION["epithelioid"] * (pool.histology[idx] == 0)
        + SELECTION["pfi_per_month"] * np.minimum(pool.pfi_months[idx, 1], 12.0)
        + SELECTION["crs_hipec"] * crs_hipec
    )
    return idx, g


def simulate_trial(rng, cfg, structure: Structure) -> TrialData:
    """Select ``cfg.n_trial`` patients, treat them, follow them on the trial schedule."""
    pool, eligible, logw = candidate_pool(rng, max(4000, 200 * cfg.n_trial), cfg, structure)
    if eligible.size < 5 * cfg.n_trial:
        raise ValueError(f"only {eligible.size} trial candidates for n_trial={cfg.n_trial}")
    p = np.exp(logw - logw.max())
    chosen = rng.choice(eligible, size=cfg.n_trial, replace=False, p=p / p.sum())
    t = subset(pool, np.sort(chosen))
    # move each history so that the first trial dose falls in the enrolment window
    lo, hi = day_number(cfg.trial_enrolment_start), day_number(cfg.trial_enrolment_end)
    delta = rng.integers(lo, hi + 1, t.n) - t.start[:, 1]
    for name in ("birth_day", "diag_day", "surgery_day"):
        setattr(t, name, getattr(t, name) + delta)
    for name in ("start", "end"):
        arr = getattr(t, name)
        setattr(t, name, np.where(arr < _dgp.NEVER, arr + delta[:, None], arr))
    t.horizon = np.full(t.n, day_number(cfg.trial_cutoff), np.int64)
    everyone = np.arange(t.n)
    _dgp.run_line(
        rng, t, 1, everyone, t.lp[:, 1] + np.log(cfg.trial_hr),
        fixed_schedule(cfg.trial_interval_weeks, cfg.trial_visit_window_days),
        clinical_rate=cfg.clinical_progression_rate, p_next=None,
    )
    return TrialData(*_adam(t, cfg, rng))


def subset(c: _dgp.Cohort, idx: np.ndarray) -> _dgp.Cohort:
    """A new cohort with patients ``idx`` of ``c`` (no assessments)."""
    patient = (
        "centre", "female", "diag_day", "birth_day", "age_dx", "histology", "pci", "ki67",
        "bap1_lost", "fitness", "surgery", "crs", "hipec", "cc", "surgery_day", "horizon",
    )
    out = _dgp.Cohort(n=idx.size, **{k: getattr(c, k)[idx].copy() for k in patient})
    for k in ("present", "regimen", "start", "end", "end_reason", "ecog", "pfi_months", "lp",
              "death_day"):
        setattr(out, k, getattr(c, k)[idx].copy())
    return out


def _adam(t: _dgp.Cohort, cfg, rng) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n = t.n
    sites = np.array([f"C{i + 1:02d}" for i in range(cfg.n_centres)], dtype=object)[t.centre]
    subj = np.array([f"{i + 1:03d}" for i in range(n)], dtype=object)
    usubjid = np.array([f"{STUDYID}-{s}-{j}" for s, j in zip(sites, subj, strict=True)], object)
    trtsdt = t.start[:, 1]
    prior_crs = t.crs & (t.surgery_day < trtsdt)
    ki67_na = rng.random(n) < cfg.trial_ki67_missing
    bap1_na = rng.random(n) < cfg.trial_bap1_missing
    yn = np.array(["N", "Y"], dtype=object)
    adsl = pd.DataFrame(
        {
            "STUDYID": STUDYID,
            "USUBJID": usubjid,
            "SUBJID": subj,
            "SITEID": sites,
            "AGE": np.floor((trtsdt - t.birth_day) / 365.25).astype(np.int64),
            "SEX": np.where(t.female, "F", "M").astype(object),
            "TRTSDT": to_dates(trtsdt),
            "ECOGBL": t.ecog[:, 1],
            "HISTGR": np.array(_dgp.HISTOLOGY, dtype=object)[t.histology],
            "PCIBL": t.pci,
            "PRCRS": yn[prior_crs.astype(int)],
            "CRSHIPEC": yn[(prior_crs & t.hipec).astype(int)],
            "PFIMO": np.round((trtsdt - t.end[:, 0]) / _dgp.DAYS_PER_MONTH, 2),
            "PRLINES": 1,
            "PRIOIO": "N",
            "DIAGMO": np.round((trtsdt - t.diag_day) / _dgp.DAYS_PER_MONTH, 2),
            "KI67BL": np.where(ki67_na, np.nan, t.ki67),
            "BAP1BL": np.where(bap1_na, None, np.where(t.bap1_lost, "lost", "retained")),
            "ITTFL": "Y",
        }
    )
    # PFS: first PD / clinical progression or death; else censored at the last assessment
    a_pid, a_day, a_resp, a_clin = _dgp.assessments(t)
    is_prog = (a_resp == _dgp.RESPONSES.index("PD")) | a_clin
    big = _dgp.NEVER
    prog_day = np.full(n, big)
    np.minimum.at(prog_day, a_pid[is_prog], a_day[is_prog])
    prog_clin = np.zeros(n, bool)
    first_is_clin = a_clin & is_prog & (a_day == prog_day[a_pid])
    prog_clin[a_pid[first_is_clin]] = True
    last_ok = trtsdt.copy()
    np.maximum.at(last_ok, a_pid[~is_prog], a_day[~is_prog])
    has_assess = np.bincount(a_pid[~is_prog], minlength=n) > 0
    cutoff = day_number(cfg.trial_cutoff)
    death = np.where(t.death_day <= cutoff, t.death_day, big)
    event_day = np.minimum(prog_day, death)
    pfs_event = event_day < big
    pfs_day = np.where(pfs_event, event_day, last_ok)
    pfs_desc = np.select(
        [pfs_event & (death < prog_day), pfs_event & prog_clin, pfs_event, has_assess],
        ["Death without progression", "Clinical progression", "Radiological progression",
         "Censored at last tumour assessment"],
        default="Censored at first dose (no post-baseline assessment)",
    )
    os_event = death < big
    os_day = np.where(os_event, death, cutoff)
    os_desc = np.where(os_event, "Death", "Censored at data cut-off (alive)")
    rows = []
    for paramcd, param, day, event, desc in (
        ("PFS", "Progression-free survival (days)", pfs_day, pfs_event, pfs_desc),
        ("OS", "Overall survival (days)", os_day, os_event, os_desc),
    ):
        rows.append(
            pd.DataFrame(
                {
                    "STUDYID": STUDYID,
                    "USUBJID": usubjid,
                    "PARAMCD": paramcd,
                    "PARAM": param,
                    "AVAL": (day - trtsdt).astype(np.int64),
                    "AVALU": "DAYS",
                    "CNSR": (~event).astype(np.int64),
                    "STARTDT": to_dates(trtsdt),
                    "ADT": to_dates(day),
                    "EVNTDESC": desc.astype(object),
                }
            )
        )
    adtte = pd.concat(rows, ignore_index=True).sort_values(["USUBJID", "PARAMCD"], kind="stable")
    # ADRS: every tumour assessment as a per-visit overall response (no random draw, so the
    # other files do not change); a clinical progression is recorded as PD
    codes = np.array(_dgp.RESPONSES, dtype=object)[a_resp]
    adrs = pd.DataFrame(
        {
            "STUDYID": STUDYID,
            "USUBJID": usubjid[a_pid],
            "PARAMCD": "OVR",
            "PARAM": "Overall response by investigator (RECIST 1.1)",
            "AVALC": np.where(a_clin, "PD", codes).astype(object),
            "ADT": to_dates(a_day),
        }
    )
    return adsl, adtte.reset_index(drop=True), adrs


def trial_frame(adsl: pd.DataFrame, adtte: pd.DataFrame) -> pd.DataFrame:
    """The trial's analysis frame (arm "trial"), the columns of `connectors.columns`."""
    s = adsl.set_index("USUBJID")
    frame = pd.DataFrame(index=s.index)
    frame[cols.ARM] = cols.TRIAL
    frame[cols.LINE_ID] = pd.array([pd.NA] * len(s), dtype="Int64")
    frame[cols.CENTRE_ID] = s["SITEID"]
    frame[cols.INDEX_DATE] = pd.to_datetime(s["TRTSDT"])
    frame[cols.DISEASE] = "peritoneal_mesothelioma"
    frame[cols.AGE] = s["AGE"].astype(float)
    frame[cols.SEX] = s["SEX"]
    frame[cols.ECOG] = pd.array(s["ECOGBL"], dtype="Int64")
    frame[cols.HISTOLOGY] = s["HISTGR"]
    frame[cols.PCI] = pd.array(s["PCIBL"], dtype="Int64")
    frame[cols.PRIOR_CRS] = s["PRCRS"].eq("Y")
    frame[cols.CRS_HIPEC] = s["CRSHIPEC"].eq("Y")
    frame[cols.PFI_MONTHS] = s["PFIMO"].astype(float)
    frame[cols.PRIOR_LINES] = pd.array(s["PRLINES"], dtype="Int64")
    frame[cols.PRIOR_IMMUNOTHERAPY] = s["PRIOIO"].eq("Y")
    frame[cols.MONTHS_SINCE_DIAGNOSIS] = s["DIAGMO"].astype(float)
    frame[cols.KI67] = s["KI67BL"].astype(float)
    frame[cols.BAP1] = s["BAP1BL"]
    for paramcd, (time_col, event_col) in cols.ENDPOINTS.items():
        tte = adtte[adtte["PARAMCD"] == paramcd].set_index("USUBJID").reindex(s.index)
        frame[time_col] = tte["AVAL"].astype(float)
        frame[event_col] = (1 - tte["CNSR"]).astype(int)
    return frame.reset_index().rename(columns={"USUBJID": cols.PATIENT_ID})

