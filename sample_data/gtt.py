"""A second simulated cohort: chemoresistant gestational trophoblastic tumours (GTT).

IMMUNORARE5's GTT cohort has hCG normalisation at 24 weeks as its primary endpoint. This module
simulates (all data invented, seeded):

- a registry of a *different network*, with its own physical names and codes (`GTT_MAPPING`
  reads it through mapping v2): women treated for GTT, first with methotrexate, then EMA-CO,
  then a salvage line (the index line: first line after ``ema_co``), with weekly hCG results
  (``lab_results``), imaging / clinical progression, and follow-up;
- a 27-patient single-arm trial (ADaM ADSL, ADTTE with PFS and OS, ADLB with PARAMCD HCG),
  selected toward a better prognosis;
- the truth: the normalisation rates (2 consecutive hCG below the ULN by 24 weeks) of the
  trial population under the trial treatment and under salvage chemotherapy (Monte Carlo,
  `gtt_truth`).

The latent model (weeks from index): each patient's hCG falls log-linearly from its baseline to
the laboratory's ULN at ``T`` ~ Weibull(shape 1.5), whose rate grows with
``exp(eta + log(effect))``; ``eta`` = prognosis from age, ECOG, time since EMA-CO and prior
lines. A patient progresses (hCG rises) at ``P`` ~ exponential; when ``P < T`` she never
normalises. hCG is measured weekly (registry: +/- 2 days, 10% missed; trial: +/- 1 day, 5%
missed) until 3 normal results, then every 4 weeks. Described in ``docs/sample_data.md``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connectors.biomarker import NormalisationRule, derive_normalisation

DEFAULT_SEED = 20250602
STUDY_ID = "GTT-IO-001"
PARAMCD_HCG = "HCG"
LANDMARK_WEEKS = 24
N_CONSECUTIVE = 2
INDEX_AFTER = "ema_co"
SALVAGE = ("ema_ep", "tip", "bep", "actinomycin_d")
ULN_TRIAL = 5.0  # IU/L, central laboratory
ULN_CENTRES = (5.0, 2.0)  # registry laboratories: ULN 5 or 2 mIU/mL (= IU/L)


@dataclass(frozen=True, slots=True)
class GttConfig:
    """Knobs of the GTT cohort's data-generating process.

    ``effect`` multiplies the normalisation rate of the trial treatment (conditional, the
    same for every patient); ``confounding`` multiplies the trial-selection log-odds;
    ``truth_n`` is the Monte Carlo size of the truth.
    """

    seed: int = DEFAULT_SEED
    n_registry: int = 600
    n_centres: int = 6
    n_trial: int = 27
    effect: float = 2.0
    confounding: float = 1.0
    truth_n: int = 200_000
    truth_seed: int = 7

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class GttScenario:
    """Registry tables (logical names), trial ADaM frames and the truth."""

    config: GttConfig
    registry_tables: dict[str, pd.DataFrame]
    adsl: pd.DataFrame
    adtte: pd.DataFrame
    adlb: pd.DataFrame
    truth: dict[str, Any]


# --- latent model ---------------------------------------------------------------------------

def _covariates(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Covariates at the salvage line (index)."""
    age = np.clip(rng.normal(34, 8, n), 18, 60)
    ecog = rng.choice([0, 1, 2], n, p=[0.55, 0.35, 0.10])
    tfi_months = rng.gamma(2.0, 1.6, n)  # months since the end of EMA-CO
    prior_lines = np.where(rng.random(n) < 0.7, 2, 1)  # methotrexate then EMA-CO, or EMA-CO
    return pd.DataFrame({"age": age, "ecog": ecog, "tfi_months": tfi_months,
                         "prior_lines": prior_lines})


def _eta(x: pd.DataFrame) -> np.ndarray:
    """Prognosis (higher = faster normalisation, later progression)."""
    return (-0.25 * (x["age"] - 34) / 8 - 0.45 * x["ecog"] + 0.35 * np.log1p(x["tfi_months"])
            - 0.30 * (x["prior_lines"] - 1)).to_numpy()


def _trial_selection(x: pd.DataFrame, confounding: float) -> np.ndarray:
    lo = -2.0 + confounding * (-0.8 * x["ecog"] + 0.5 * np.log1p(x["tfi_months"])
                               - 0.3 * (x["age"] - 34) / 8)
    return 1 / (1 + np.exp(-lo.to_numpy()))


def _times(rng: np.random.Generator, eta: np.ndarray, effect: float) -> tuple[np.ndarray, ...]:
    """Normalisation time T (inf when progression comes first), progression P, death D (weeks)."""
    n = len(eta)
    scale = 26.0 * np.exp(-(eta + np.log(effect)) / 1.5)
    t = scale * (-np.log(rng.random(n))) ** (1 / 1.5)
    p = rng.exponential(30.0 * np.exp(0.5 * eta), n)
    relapse = rng.random(n) < 0.1
    after = t + rng.exponential(52.0, n)
    norm = t < p
    p = np.where(norm, np.where(relapse, after, np.inf), p)
    t = np.where(norm, t, np.inf)
    d = np.where(np.isfinite(p), p + rng.exponential(60.0, n), np.inf)
    return t, p, d


def _lab_days(rng, t_w, p_w, end_w, jitter, missed) -> list[int]:
    """Days of the hCG results after index: weekly until 3 normal results, then 4-weekly."""
    days, week, normal_run = [], 1, 0
    while week <= min(end_w, (p_w + 3) if np.isfinite(p_w) else end_w):
        if rng.random() >= missed:
            day = int(np.rint(7 * week + rng.integers(-jitter, jitter + 1)))
            if day > 0:
                days.append(day)
                normal_run = normal_run + 1 if day / 7 > t_w else 0
        week += 4 if normal_run >= 3 else 1
    return days


def _hcg(day: float, h0: float, uln: float, t_w: float, p_w: float) -> float:
    """hCG on ``day``: log-linear fall from h0 to the ULN at T (and below after), rising after
    progression (doubling every 2 weeks)."""
    w = day / 7
    if np.isfinite(t_w):
        v = uln * (h0 / uln) ** (1 - w / t_w) if w <= t_w else max(0.3 * uln, uln * 0.6 ** (
            (w - t_w) / 2))
    else:  # falls halfway (log scale) until progression, then rises
        lo = np.sqrt(h0 * uln * 4)
        v = h0 * (lo / h0) ** min(1.0, w / max(p_w, 1.0))
    if np.isfinite(p_w) and w > p_w:
        v = max(v, uln * 2) * 2 ** ((w - p_w) / 2)
    return round(float(v), 2)


# --- registry -------------------------------------------------------------------------------

def _registry(cfg: GttConfig, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    n, base = cfg.n_registry, pd.Timestamp("2016-01-01")
    centres = pd.DataFrame({"centre_id": [f"T{i + 1:02d}" for i in range(cfg.n_centres)],
                            "centre_name": [f"GTT centre {i + 1}" for i in range(cfg.n_centres)],
                            "region": None})
    centre_of = rng.choice(cfg.n_centres, n, p=np.linspace(2, 1, cfg.n_centres) /
                           np.linspace(2, 1, cfg.n_centres).sum())
    x = _covariates(rng, n)
    diag = base + pd.to_timedelta(rng.integers(0, 6 * 365, n), unit="D")
    rows: dict[str, list] = {k: [] for k in ("lines", "ta", "labs", "fu", "surg")}
    eta = _eta(x)
    t_w, p_w, d_w = _times(rng, eta, 1.0)
    reach_salvage = rng.random(n) < 0.8
    pid = [f"GTT{i + 1:05d}" for i in range(n)]
    line_id = lab_id = ta_id = 0
    for i in range(n):
        start = diag[i] + pd.Timedelta(days=14)
        ecog_i = int(x.at[i, "ecog"])
        regimens = ["methotrexate", INDEX_AFTER] if x.at[i, "prior_lines"] == 2 else [INDEX_AFTER]
        for k, reg in enumerate(regimens):
            end = start + pd.Timedelta(days=int(rng.integers(56, 140)))
            line_id += 1
            rows["lines"].append((line_id, pid[i], k + 1, reg, "other", start, end, "progression",
                                  max(0, ecog_i - int(rng.random() < 0.3))))
            start = end + pd.Timedelta(days=14)
        last_end = start - pd.Timedelta(days=14)
        if rng.random() < 0.15:
            rows["surg"].append((len(rows["surg"]) + 1, pid[i], last_end, False, False, None))
        fu_end = last_end + pd.Timedelta(days=int(rng.integers(60, 400)))
        if not reach_salvage[i]:
            rows["fu"].append((pid[i], fu_end, "alive", None))
            continue
        t0 = last_end + pd.Timedelta(days=int(np.rint(x.at[i, "tfi_months"] * 30.4375)))
        follow_w = float(rng.uniform(26, 104))
        line_id += 1
        rows["lines"].append((line_id, pid[i], len(regimens) + 1, str(rng.choice(SALVAGE)),
                              "other", t0, None, None, ecog_i))
        dead = d_w[i] <= follow_w
        last_w = d_w[i] if dead else follow_w
        rows["fu"].append((pid[i], t0 + pd.Timedelta(days=int(7 * last_w)),
                           "dead" if dead else "alive",
                           t0 + pd.Timedelta(days=int(7 * d_w[i])) if dead else None))
        for wk in range(8, int(min(last_w, p_w[i] + 8)) + 1, 8):  # imaging every 8 weeks
            ta_id += 1
            prog = wk > p_w[i]
            rows["ta"].append((ta_id, pid[i], t0 + pd.Timedelta(days=7 * wk), "RECIST1.1",
                               "PD" if prog else "SD", bool(prog)))
            if prog:
                break
        if rng.random() < 0.05:  # no hCG after index: counted as unmeasured
            continue
        uln = ULN_CENTRES[centre_of[i] % 2]
        h0 = float(np.exp(rng.normal(np.log(800), 1.0)))
        for day in [0, *_lab_days(rng, t_w[i], p_w[i], last_w, 2, 0.10)]:
            lab_id += 1
            rows["labs"].append((lab_id, pid[i], t0 + pd.Timedelta(days=day), "hcg",
                                 _hcg(day, h0, uln, t_w[i], p_w[i]), "IU/L",
                                 None if rng.random() < 0.005 else uln))
        if rng.random() < 0.3:  # another analyte of the same panel
            lab_id += 1
            rows["labs"].append((lab_id, pid[i], t0 + pd.Timedelta(days=7), "other",
                                 round(float(rng.uniform(0.5, 3)), 2), "mIU/L", 4.0))
    births = diag - pd.to_timedelta((x["age"] * 365.25).round().astype(int), unit="D")
    return {
        "centres": centres,
        "patients": pd.DataFrame({"patient_id": pid, "centre_id": centres["centre_id"].to_numpy()[
            centre_of], "sex": "F", "birth_date": births}),
        "diagnoses": pd.DataFrame({
            "diagnosis_id": np.arange(1, n + 1), "patient_id": pid, "diagnosis_date": diag,
            "disease": "gestational_trophoblastic_tumour", "histology": None, "pci": None,
            "ki67_percent": None, "bap1_status": None}),
        "surgeries": pd.DataFrame(rows["surg"], columns=["surgery_id", "patient_id",
                                  "surgery_date", "crs", "hipec", "cc_score"]),
        "treatment_lines": pd.DataFrame(rows["lines"], columns=[
            "line_id", "patient_id", "line_number", "regimen", "drug_classes", "start_date",
            "end_date", "end_reason", "ecog_at_start"]),
        "tumour_assessments": pd.DataFrame(rows["ta"], columns=[
            "assessment_id", "patient_id", "assessment_date", "criteria", "overall_response",
            "clinical_progression"]),
        "follow_up": pd.DataFrame(rows["fu"], columns=["patient_id", "last_contact_date",
                                                       "vital_status", "death_date"]),
        "lab_results": pd.DataFrame(rows["labs"], columns=[
            "lab_id", "patient_id", "lab_date", "analyte", "value", "unit", "uln"]),
    }


# --- trial ----------------------------------------------------------------------------------

def _select_trial(rng: np.random.Generator, n: int, confounding: float) -> pd.DataFrame:
    """``n`` trial patients: candidates of the salvage population accepted with the
    trial-selection probability."""
    picked: list[pd.DataFrame] = []
    while sum(len(p) for p in picked) < n:
        x = _covariates(rng, 4 * n)
        picked.append(x.loc[rng.random(len(x)) < _trial_selection(x, confounding)])
    return pd.concat(picked, ignore_index=True).head(n)


def _trial(cfg: GttConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, ...]:
    x = _select_trial(rng, cfg.n_trial, cfg.confounding)
    t_w, p_w, d_w = _times(rng, _eta(x), cfg.effect)
    first = pd.Timestamp("2023-03-01")
    adsl, adtte, adlb = [], [], []
    follow_w = 52.0
    for i in range(len(x)):
        site = f"S{int(rng.integers(1, 5)):02d}"
        sid = f"{STUDY_ID}-{site}-{i + 1:03d}"
        t0 = first + pd.Timedelta(days=int(rng.integers(0, 540)))
        adsl.append({"STUDYID": STUDY_ID, "USUBJID": sid, "SUBJID": f"{i + 1:03d}",
                     "SITEID": site, "AGE": int(x.at[i, "age"]), "SEX": "F", "TRTSDT": t0,
                     "ECOGBL": int(x.at[i, "ecog"]), "PFIMO": round(float(x.at[i, "tfi_months"]),
                                                                    2),
                     "PRLINES": int(x.at[i, "prior_lines"]), "PRIOIO": "N", "ITTFL": "Y"})
        pfs, os_ = min(p_w[i], d_w[i]), d_w[i]
        for code, label, t, what in (
                ("OS", "Overall survival (days)", os_, "Death"),
                ("PFS", "Progression-free survival (days)", pfs, "hCG progression")):
            event = t <= follow_w
            days = int(np.rint(7 * (t if event else follow_w)))
            adtte.append({"STUDYID": STUDY_ID, "USUBJID": sid, "PARAMCD": code, "PARAM": label,
                          "AVAL": days, "AVALU": "DAYS", "CNSR": 0 if event else 1,
                          "STARTDT": t0, "ADT": t0 + pd.Timedelta(days=days),
                          "EVNTDESC": what if event else "Censored at end of follow-up"})
        h0 = float(np.exp(rng.normal(np.log(800), 1.0)))
        end_w = min(follow_w, d_w[i])
        for day in [0, *_lab_days(rng, t_w[i], p_w[i], end_w, 1, 0.05)]:
            adlb.append({"STUDYID": STUDY_ID, "USUBJID": sid, "PARAMCD": PARAMCD_HCG,
                         "PARAM": "Human chorionic gonadotropin (IU/L)",
                         "AVAL": _hcg(day, h0, ULN_TRIAL, t_w[i], p_w[i]), "AVALU": "IU/L",
                         "ANRHI": ULN_TRIAL, "ADT": t0 + pd.Timedelta(days=day), "ADY": day + 1,
                         "ABLFL": "Y" if day == 0 else ""})
    return pd.DataFrame(adsl), pd.DataFrame(adtte), pd.DataFrame(adlb)


# --- truth ----------------------------------------------------------------------------------

def _latent_rate(rng: np.random.Generator, t_w, p_w, jitter: int, missed: float) -> np.ndarray:
    """Normalised (0/1) by the landmark under the weekly schedule, without simulating values:
    the normal results form one block (T, P] in time, so ``N_CONSECUTIVE`` consecutive normal
    results by the landmark = that many measured days in the block, on or before it."""
    n, weeks = len(t_w), np.arange(1, LANDMARK_WEEKS + 2)
    days = 7 * weeks[None, :] + rng.integers(-jitter, jitter + 1, (n, len(weeks)))
    seen = rng.random((n, len(weeks))) >= missed
    w = days / 7
    ok = seen & (w > t_w[:, None]) & (w <= p_w[:, None]) & (days <= 7 * LANDMARK_WEEKS)
    return (ok.sum(axis=1) >= N_CONSECUTIVE).astype(float)


def gtt_truth(cfg: GttConfig) -> dict[str, Any]:
    """True normalisation rates (2 consecutive hCG < ULN by 24 weeks, weekly trial schedule)
    of the trial population under the trial treatment and under salvage chemotherapy, and
    their contrasts; Monte Carlo with ``cfg.truth_n`` patients (``mc_se`` given)."""
    rng = np.random.default_rng(cfg.truth_seed)
    x = _select_trial(rng, cfg.truth_n, cfg.confounding)
    eta = _eta(x)
    out: dict[str, Any] = {}
    for arm, effect in (("trial", cfg.effect), ("control", 1.0)):
        t_w, p_w, _ = _times(rng, eta, effect)
        out[arm] = _latent_rate(rng, t_w, p_w, 1, 0.05)
    pt, pc = float(out["trial"].mean()), float(out["control"].mean())
    n = len(x)
    x_all = _covariates(rng, cfg.truth_n)
    t_w, p_w, _ = _times(rng, _eta(x_all), 1.0)
    salvage = float(_latent_rate(rng, t_w, p_w, 1, 0.05).mean())
    return {
        "endpoint": f"hCG below the ULN on {N_CONSECUTIVE} consecutive weekly measurements "
                    f"by {LANDMARK_WEEKS} weeks after index (trial schedule)",
        "normalisation_rate": {
            "trial": round(pt, 4), "control": round(pc, 4), "difference": round(pt - pc, 4),
            "ratio": round(pt / pc, 4),
            "odds_ratio": round(pt / (1 - pt) / (pc / (1 - pc)), 4),
            "mc_se": round(float(np.sqrt(max(pt * (1 - pt), pc * (1 - pc)) / n)), 4),
            "population": "the trial's (ATT)",
        },
        "control_rate_salvage_population": round(salvage, 4),
        "effect": cfg.effect,
        "truth_n": cfg.truth_n,
    }


def simulate_gtt(cfg: GttConfig | None = None) -> GttScenario:
    """The GTT registry, the trial's ADaM frames and the truth, from ``cfg`` (seeded)."""
    cfg = cfg or GttConfig()
    rng = np.random.default_rng(cfg.seed)
    tables = _registry(cfg, rng)
    adsl, adtte, adlb = _trial(cfg, rng)
    return GttScenario(cfg, tables, adsl, adtte, adlb, gtt_truth(cfg))


def trial_rate_by_derivation(sc: GttScenario) -> float:
    """The trial arm's normalisation rate from its ADLB frame through the shared derivation
    (`connectors.biomarker.derive_normalisation`): what the truth's ``trial`` rate estimates."""
    index = dict(zip(sc.adsl["USUBJID"], pd.to_datetime(sc.adsl["TRTSDT"]), strict=True))
    lab = sc.adlb
    raw = pd.DataFrame({"key": lab["USUBJID"], "days": (pd.to_datetime(lab["ADT"])
                        - lab["USUBJID"].map(index)).dt.days, "analyte": "hcg",
                        "value": lab["AVAL"], "unit": lab["AVALU"], "uln": lab["ANRHI"]})
    rule = NormalisationRule("hcg", N_CONSECUTIVE, 7.0 * LANDMARK_WEEKS)
    return float(derive_normalisation(raw, list(sc.adsl["USUBJID"]), rule)["normalised"].mean())


def truth_text(sc: GttScenario) -> str:
    """The JSON text of the truth file, with the generating configuration."""
    return json.dumps({**sc.truth, "config": sc.config.to_dict()}, indent=2) + "\n"


def write_truth(sc: GttScenario, path: Path) -> Path:
    path.write_text(truth_text(sc), encoding="utf-8")
    return path
