"""The binary-endpoint scenario of the simulation study (``kind: binary``; issue 15).

Known truth: a continuous confounder ``x`` and a binary one ``z`` shift both the chance of
being a trial patient and the chance of response (logistic models, `BinaryScenario`). Per
replicate, ``n_trial`` trial and ``n_registry`` registry patients are drawn, every design of
the spec is fitted on ``x, z`` (`synthctl.simulation.study._apply_design`, as the survival
scenario), and `reports.analysis.analyze_study` estimates the `reports.endpoints.Binary`
endpoint: the trial-minus-control difference in response with its sandwich 95% CI (HC0;
clustered on the matched set for matched designs). Estimand ``proportion_diff``: the ATT
difference, the mean over the trial population of p(response | x, z, trial) - p(response |
x, z, control), computed by Monte Carlo (``truth_draws`` draws; its MC SE is reported).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from connectors import columns as cols

__all__ = ["BINARY_ESTIMANDS", "BinaryScenario", "binary_truth", "run_binary_replicate"]

#: the binary scenario's estimand (trial minus the synthetic control)
BINARY_ESTIMANDS: dict[str, str] = {
    "proportion_diff": "response proportion difference, trial - control (probability scale)",
}
RESPONSE_COL = "response"
COVARIATES = ("x", "z")


@dataclass(frozen=True, slots=True)
class BinaryScenario:
    """The binary scenario's data-generating process (logit scale coefficients).

    Selection into the trial: ``logit P(trial) = logit(p_trial) + sel_x x + sel_z z``;
    response: ``logit P(y = 1) = b0 + b_arm trial + b_x x + b_z z``; ``x ~ N(0, 1)``,
    ``z ~ Bernoulli(p_z)``. ``truth_draws`` draws of the population give the true ATT
    difference; ``truth_seed`` seeds them.
    """

    n_trial: int = 40
    n_registry: int = 400
    p_trial: float = 0.15
    sel_x: float = 0.6
    sel_z: float = -0.5
    p_z: float = 0.4
    b0: float = -0.9
    b_arm: float = 0.8
    b_x: float = 0.9
    b_z: float = -0.6
    truth_draws: int = 1_000_000
    truth_seed: int = 1

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        """``n`` population draws: x, z and the trial indicator."""
        x = rng.normal(size=n)
        z = rng.binomial(1, self.p_z, n)
        lo = np.log(self.p_trial / (1 - self.p_trial)) + self.sel_x * x + self.sel_z * z
        trial = rng.random(n) < 1 / (1 + np.exp(-lo))
        return x, z, trial

    def p_response(self, arm: np.ndarray | float, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.b0 + self.b_arm * arm + self.b_x * x + self.b_z * z)))


def scenario_fields() -> set[str]:
    """Option names of `BinaryScenario` (a spec's ``scenario:`` keys with ``kind: binary``)."""
    return {f.name for f in dataclasses.fields(BinaryScenario)}


@lru_cache(maxsize=8)
def binary_truth(scenario: BinaryScenario) -> tuple[float, float]:
    """(true ATT difference, its Monte Carlo SE) of the scenario."""
    rng = np.random.default_rng(scenario.truth_seed)
    x, z, trial = scenario.draw(rng, scenario.truth_draws)
    d = scenario.p_response(1, x[trial], z[trial]) - scenario.p_response(0, x[trial], z[trial])
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def _scenario(spec: Any) -> BinaryScenario:
    return BinaryScenario(**spec.scenario)


def simulate_binary_frame(scenario: BinaryScenario, seed: int) -> pd.DataFrame:
    """One replicate's analysis frame: ``n_trial`` trial then ``n_registry`` registry rows
    with the covariates ``x, z``, the arm, a patient id and the 0/1 ``response``."""
    rng = np.random.default_rng(seed)
    n_t, n_c = scenario.n_trial, scenario.n_registry
    x = z = trial = np.empty(0)
    while (trial.sum() < n_t) or ((~trial).sum() < n_c):  # enough of both (always, in practice)
        x, z, trial = scenario.draw(rng, max(20 * (n_t + n_c), 2 * x.size))
    idx = np.r_[np.flatnonzero(trial)[:n_t], np.flatnonzero(~trial)[:n_c]]
    arm = np.r_[np.ones(n_t), np.zeros(n_c)]
    y = rng.binomial(1, scenario.p_response(arm, x[idx], z[idx]))
    return pd.DataFrame({cols.PATIENT_ID: [f"S{i}" for i in range(idx.size)],
                         cols.ARM: np.where(arm == 1, cols.TRIAL, cols.CONTROL),
                         "x": x[idx], "z": z[idx], RESPONSE_COL: y})


def _estimate(frame: pd.DataFrame, design, conf_level: float) -> tuple[float, ...]:
    """(estimate, se, lower, upper) of the difference, from `analyze_study`."""
    from reports.analysis import AnalysisSettings, analyze_study
    from reports.endpoints import Binary

    settings = AnalysisSettings(endpoints=(Binary("response", RESPONSE_COL),),
                                arm_col=cols.ARM, treated_value=cols.TRIAL,
                                id_col=cols.PATIENT_ID, conf_level=conf_level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = analyze_study(frame, design, None, settings, naive=False).primary.proportion
    e = d.difference
    return e.estimate, e.se, e.lower, e.upper


def run_binary_replicate(spec: Any, index: int,
                         seed_sequence: np.random.SeedSequence) -> list[dict[str, Any]]:
    """One replicate of the binary scenario through every design (records as
    `synthctl.simulation.study.run_replicate` returns them)."""
    from synthctl.simulation.spec import NAIVE
    from synthctl.simulation.study import (
        _DESIGN_FAILURES,
        _apply_design,
        _balance_threshold,
        _design_options,
    )

    scenario = _scenario(spec)
    data_seed, design_seed = (int(s) for s in seed_sequence.generate_state(2, dtype=np.uint32))
    frame = simulate_binary_frame(scenario, data_seed)
    truth, truth_mcse = binary_truth(scenario)
    n_trial = int((frame[cols.ARM] == cols.TRIAL).sum())
    records, smd_before = [], None
    for name, options in spec.designs.items():
        try:
            design, passed, before, ess = _apply_design(frame, spec, _design_options(options),
                                                        design_seed)
            smd_before = before if before is not None else smd_before
            analysed = int(((frame[cols.ARM] == cols.TRIAL).to_numpy() & design.included
                            & (design.weights > 0)).sum())
            est, error = _estimate(frame, design, spec.conf_level), None
        except _DESIGN_FAILURES as exc:
            est, passed, ess, analysed = (np.nan,) * 4, None, float("nan"), 0
            error = f"{type(exc).__name__}: {exc}"[:300]
        records.append({"replicate": index, "design": name, "estimand": "proportion_diff",
                        "estimate": est[0], "se": est[1], "lower": est[2], "upper": est[3],
                        "truth": truth, "truth_mcse": truth_mcse, "balance_passed": passed,
                        "n_trial": n_trial, "n_trial_analysed": analysed,
                        "control_ess": ess, "error": error})
    threshold = _balance_threshold(spec)
    for rec in records:  # the naive design's "balance" is the balance before adjustment
        if (smd_before is not None and rec["error"] is None
                and spec.designs[rec["design"]]["method"] == NAIVE):
            rec["balance_passed"] = bool(smd_before < threshold)
    return records
