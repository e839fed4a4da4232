"""Bias and coverage of the hCG normalisation difference on the simulated GTT cohort (issue 15).

``python benchmarks/sim_gtt_normalisation.py --reps 200`` draws ``reps`` GTT scenarios
(`sample_data.gtt`, seeds 1000, 1001, ...; 600 registry patients, 27 trial patients), builds
the analysis frames from the simulator's canonical tables (the same covariates at index as the
registry SQL; normalisation by the shared derivation, `connectors.biomarker`), fits the demo
design (ATT odds weighting, logistic PS on age, ECOG, months since EMA-CO and prior lines) and
compares the weighted proportions (`reports.binary.compare_proportions`, HC0 sandwich, Wald
limits). The target is the truth's difference (`sample_data/gtt_truth.json`, the trial
population's rates with and without the trial treatment). Prints bias, empirical and mean
model SE, coverage of the 95% limits, each with its Monte Carlo SE, for the weighted and the
naive (unweighted) comparison, and for the weighted comparison of the measured patients only
(patients without any hCG result by the landmark left out instead of counted as not
normalised: the registry has 5% of them, the trial none).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from connectors import columns as cn
from connectors.biomarker import NORMALISED, NormalisationRule, derive_normalisation
from matching import match_cohort
from reports.binary import compare_proportions
from sample_data.gtt import INDEX_AFTER, GttConfig, simulate_gtt
from sample_data.paths import GTT_TRUTH

COVARIATES = [cn.AGE, cn.ECOG, cn.PFI_MONTHS, cn.PRIOR_LINES]
RULE = NormalisationRule.by_landmark("hcg", 2, 24, "weeks")


def _control(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    lines = tables["treatment_lines"].copy()
    lines["start_date"] = pd.to_datetime(lines["start_date"])
    index = lines[lines["end_date"].isna()]  # the salvage (index) line
    ref = lines[lines["regimen"] == INDEX_AFTER].set_index("patient_id")
    births = tables["patients"].set_index("patient_id")["birth_date"]
    t0 = index.set_index("patient_id")["start_date"]
    frame = pd.DataFrame({
        cn.PATIENT_ID: t0.index, cn.ARM: cn.CONTROL, cn.INDEX_DATE: t0.to_numpy(),
        cn.AGE: ((t0 - pd.to_datetime(births.loc[t0.index])).dt.days / 365.25).to_numpy(),
        cn.ECOG: index.set_index("patient_id")["ecog_at_start"].loc[t0.index].to_numpy(),
        cn.PFI_MONTHS: ((t0 - pd.to_datetime(ref["end_date"].loc[t0.index])).dt.days
                        / (365.25 / 12)).to_numpy(),
        cn.PRIOR_LINES: (index.set_index("patient_id")["line_number"].loc[t0.index] - 1
                         ).to_numpy()})
    lab = tables["lab_results"].merge(frame[[cn.PATIENT_ID, cn.INDEX_DATE]], on=cn.PATIENT_ID)
    raw = pd.DataFrame({"key": lab[cn.PATIENT_ID], "analyte": lab["analyte"],
                        "days": (pd.to_datetime(lab["lab_date"]) - lab[cn.INDEX_DATE]).dt.days,
                        "value": lab["value"], "unit": lab["unit"], "uln": lab["uln"]})
    got = derive_normalisation(raw, list(frame[cn.PATIENT_ID]), RULE)
    frame[NORMALISED] = got[NORMALISED].to_numpy()
    frame["measured"] = got["measured"].to_numpy()
    return frame


def _trial(adsl: pd.DataFrame, adlb: pd.DataFrame) -> pd.DataFrame:
    t0 = pd.to_datetime(adsl["TRTSDT"])
    frame = pd.DataFrame({cn.PATIENT_ID: adsl["USUBJID"], cn.ARM: cn.TRIAL,
                          cn.INDEX_DATE: t0, cn.AGE: adsl["AGE"].astype(float),
                          cn.ECOG: adsl["ECOGBL"], cn.PFI_MONTHS: adsl["PFIMO"],
                          cn.PRIOR_LINES: adsl["PRLINES"]})
    index = dict(zip(adsl["USUBJID"], t0, strict=True))
    raw = pd.DataFrame({"key": adlb["USUBJID"], "analyte": "hcg",
                        "days": (pd.to_datetime(adlb["ADT"]) - adlb["USUBJID"].map(index)
                                 ).dt.days, "value": adlb["AVAL"], "unit": adlb["AVALU"],
                        "uln": adlb["ANRHI"]})
    got = derive_normalisation(raw, list(frame[cn.PATIENT_ID]), RULE)
    frame[NORMALISED] = got[NORMALISED].to_numpy()
    frame["measured"] = got["measured"].to_numpy()
    return frame


def replicate(seed: int) -> dict[str, float]:
    sc = simulate_gtt(GttConfig(seed=seed, truth_n=10))
    frame = pd.concat([_trial(sc.adsl, sc.adlb), _control(sc.registry_tables)],
                      ignore_index=True)
    frame = frame[frame[cn.AGE] >= 18].reset_index(drop=True)  # the demo's eligibility
    design = match_cohort(frame, COVARIATES, method="weighting", weights="att_odds",
                          estimand="ATT", random_state=seed)
    out = {}
    w = np.asarray(design.weights, dtype=float)
    measured = frame["measured"].to_numpy(bool)
    for name, data in (("weighted", frame.assign(w=w)), ("naive", frame.assign(w=1.0)),
                       ("weighted_measured", frame.assign(w=w)[measured])):
        d = compare_proportions(data, response_col=NORMALISED, weight_col="w")
        diff = d.difference
        out.update({f"{name}_est": diff.estimate, f"{name}_se": diff.se,
                    f"{name}_lower": diff.lower, f"{name}_upper": diff.upper})
    return out


def summarise(rows: pd.DataFrame, truth: float) -> pd.DataFrame:
    n = len(rows)
    out = []
    for name in ("weighted", "naive", "weighted_measured"):
        est, se = rows[f"{name}_est"], rows[f"{name}_se"]
        cover = (rows[f"{name}_lower"] <= truth) & (truth <= rows[f"{name}_upper"])
        out.append({"comparison": name, "reps": n, "bias": est.mean() - truth,
                    "bias_mcse": est.std(ddof=1) / np.sqrt(n), "emp_se": est.std(ddof=1),
                    "mean_se": se.mean(), "coverage": cover.mean(),
                    "coverage_mcse": np.sqrt(cover.mean() * (1 - cover.mean()) / n)})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    truth = json.loads(GTT_TRUTH.read_text())["normalisation_rate"]["difference"]
    t = time.perf_counter()
    rows = pd.DataFrame([replicate(1000 + r) for r in range(args.reps)])
    print(f"truth difference {truth}; {args.reps} replicates in "
          f"{time.perf_counter() - t:.0f} s")
    print(summarise(rows, truth).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
