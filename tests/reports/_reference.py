"""Rebuild the R reference analyses from tests/fixtures (no dependency on matching/)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PM = FIXTURES / "pm_external_control_a"
MATCHED_VARIANTS = (
    "nearest_1to1_nocaliper",
    "nearest_1to1_caliper02_ps",
    "nearest_1to1_caliper02_logit",
    "nearest_1to2_caliper02_logit",
)


@cache
def reference() -> dict:
    return json.loads((PM / "pm_external_control_a_reference.json").read_text())


@cache
def eligible() -> pd.DataFrame:
    """The data after the R script's eligibility (``ecog <= 1``), with ATT odds weights."""
    d = pd.read_csv(PM / "pm_external_control_a.csv")
    d = d[d["ecog"] <= 1].reset_index(drop=True)
    d["w_att"] = d["patient_id"].map(reference()["att_odds_weights"]["weight"])
    return d


def matched(variant: str) -> pd.DataFrame:
    """``match.data(m)`` rebuilt from the pairs: MatchIt's ATT matching weights, subclass.

    MatchIt (weights.subclass for ATT): treated weight 1; each control of subclass s gets
    n_treated(s) / n_control(s), then control weights are rescaled to sum to the number of
    matched controls. Treated units without a control are unmatched (dropped).
    """
    rows = []
    for sub, pair in enumerate(reference()[variant]["pairs"]):
        controls = list(pair["controls"])
        if not controls:
            continue
        rows.append((pair["treated"], 1.0, sub, 1))
        rows.extend((c, 1.0 / len(controls), sub, 0) for c in controls)
    m = pd.DataFrame(rows, columns=["patient_id", "weights", "subclass", "treated_m"])
    ctrl = m["treated_m"] == 0
    m.loc[ctrl, "weights"] *= ctrl.sum() / m.loc[ctrl, "weights"].sum()
    out = eligible().drop(columns="w_att").merge(m, on="patient_id", validate="one_to_one")
    assert (out["treated"] == out["treated_m"]).all()
    return out.drop(columns="treated_m")


def by_arm(rows: list[dict]) -> dict[int, dict]:
    """R's per-stratum rows keyed by treated (0/1)."""
    return {int(r["strata"].split("=")[1]): r for r in rows}


def nonint(w: np.ndarray) -> bool:
    return bool(np.any(w != np.floor(w)))


# the column arguments of `compare_arms` for the reference data set
PM_COLUMNS = {"time_col": "pfs_weeks", "event_col": "pfs_event", "arm_col": "treated",
              "treated_value": 1}
