"""The result of the design stage: one frozen object, written to design.json by ``to_dict``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .balance import BalanceTable

SCHEMA_VERSION = 2  # 2: yields, variance_cluster; options per method (distance, truncate_rule)


def kish_ess(w) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2`` over the positive weights."""
    w = np.asarray(w, dtype=float)
    w = w[w > 0]
    return float(w.sum() ** 2 / np.dot(w, w)) if len(w) else 0.0


def _clean(obj):
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


@dataclass(frozen=True, slots=True, repr=False)
class DesignResult:
    """Propensity score, matched sets or weights, and balance of one design.

    Attributes
    ----------
    ps : pd.Series
        P(trial | covariates), aligned with the input frame's index (NaN for excluded rows).
    distance : pd.Series
        The matching distance (``ps`` or its logit, per ``caliper_scale``).
    weights : pd.Series
        Analysis weights: MatchIt's matching weights, or balancing weights (0 = not selected).
    match_id : pd.Series
        ``Int64`` matched-set id (pair/subclass) for nearest/optimal matching without
        replacement; ``<NA>`` when unmatched, with replacement, and for weighting.
    included : pd.Series
        Bool: the patient is in the analysed cohort (weight > 0).
    treated : pd.Series
        Bool: the patient is in the trial arm.
    balance : BalanceTable
    ess : dict
        Kish effective sample size per arm, ``{"trial": float, "control": float}``.
    warnings : list of str
        Separation, positivity, dropped trial patients, ignored options.
    method, estimand : str
    yields : {"sets", "pairs_with_replacement", "weights"}
        What the design gives (`matching.methods`): matched sets (clusters), pairs with
        replacement (a control may serve several trial patients: no sets), or weights.
    variance_cluster : {"match_id", "row"}
        How the outcome variance must be clustered: on ``match_id`` only when ``yields`` is
        ``"sets"``; otherwise a robust variance per row (per patient when a patient has
        several index lines).
    options : dict
        The method's options as used (defaults filled in), and the common ones.
    ps_model : dict
        ``name``, ``coefficients`` (log-odds; logistic only), ``n_iter``, ``converged``.
    counts : dict
        ``trial``, ``control`` (after exclusions), ``trial_selected``, ``control_selected``.
    exclusions : list of dict
        ``{"arm", "reason", "n"}``: every patient left out, with the reason.
    details : dict
        Method-specific facts: ``caliper_abs``, ``total_distance``, trimming, truncation,
        entropy-balancing convergence.
    """

    ps: pd.Series
    distance: pd.Series
    weights: pd.Series
    match_id: pd.Series
    included: pd.Series
    treated: pd.Series
    balance: BalanceTable
    ess: dict
    warnings: list
    method: str
    estimand: str
    yields: str
    variance_cluster: str
    options: dict
    ps_model: dict
    counts: dict
    exclusions: list
    details: dict

    @property
    def max_abs_smd(self) -> float:
        """Largest |SMD| after adjustment over the covariates."""
        return self.balance.max_abs_smd

    @property
    def balance_passed(self) -> bool:
        """Whether ``max_abs_smd`` is within the balance threshold."""
        return self.balance.passed

    def summary(self) -> pd.DataFrame:
        """Balance summary (SMD, variance ratio, KS), indexed by covariate."""
        return self.balance.summary()

    def to_dict(self) -> dict:
        """design.json content (JSON-safe; NaN -> null)."""
        return _clean({
            "schema_version": SCHEMA_VERSION,
            "method": self.method,
            "estimand": self.estimand,
            "yields": self.yields,
            "variance_cluster": self.variance_cluster,
            "options": self.options,
            "ps_model": self.ps_model,
            "counts": self.counts,
            "exclusions": self.exclusions,
            "ess": self.ess,
            "balance": self.balance.to_dict(),
            "warnings": list(self.warnings),
            "details": self.details,
        })

    def __repr__(self) -> str:
        c = self.counts
        return (f"DesignResult(method={self.method!r}, estimand={self.estimand!r}, "
                f"yields={self.yields!r}, "
                f"n_trial={c['trial_selected']}/{c['trial']}, "
                f"n_control={c['control_selected']}/{c['control']}, "
                f"ess_trial={self.ess['trial']:.1f}, ess_control={self.ess['control']:.1f}, "
                f"max_abs_smd={self.max_abs_smd:.3f}, passed={self.balance_passed})")
