"""Loaders for the R reference cases in tests/fixtures (MatchIt 4.7.2, R 4.2.2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LALONDE_COVARIATES = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
PM_COVARIATES = ["age", "female", "ecog", "histology", "pci", "crs_hipec", "pfi_months"]


def lalonde() -> tuple[pd.DataFrame, dict]:
    """The LaLonde frame (race levels black < hispan < white, as the R script) and its JSON."""
    d = pd.read_csv(FIXTURES / "lalonde" / "lalonde.csv")
    ref = json.loads((FIXTURES / "lalonde" / "lalonde_matchit.json").read_text())
    return d, ref


def pm_external_control_a() -> tuple[pd.DataFrame, dict]:
    """The PM frame after the script's ``ecog <= 1`` with its factor levels, and its JSON."""
    d = pd.read_csv(FIXTURES / "pm_external_control_a" / "pm_external_control_a.csv")
    d = d[d["ecog"] <= 1].copy()
    d["ecog"] = pd.Categorical(d["ecog"], categories=[0, 1])
    d["histology"] = pd.Categorical(d["histology"],
                                    categories=["epithelioid", "biphasic", "sarcomatoid"])
    ref = json.loads(
        (FIXTURES / "pm_external_control_a" / "pm_external_control_a_reference.json").read_text())
    return d, ref


def by_id(mapping: dict, ids) -> np.ndarray:
    """A ``{id: value}`` JSON object as an array in the order of ``ids``."""
    return np.array([mapping[i] for i in ids], dtype=float)


def r_name(name: str, factors: tuple[str, ...]) -> str:
    """Our balance row name (``race_black``) as R's (``raceblack``)."""
    for f in factors:
        if name.startswith(f + "_"):
            return f + name[len(f) + 1:]
    return name
