"""The scenario's configuration and its true estimands, from ``sample_data.simulator``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthctl.errors import SpecError

__all__ = ["TruthValues", "scenario_config", "truth_mc_se", "truth_values"]


@dataclass(frozen=True, slots=True)
class TruthValues:
    """True values of the three estimands (trial minus, or over, the counterfactual control).

    landmark_diff : S_trial(landmark) - S_control(landmark), probability scale.
    log_hr : log of the marginal hazard ratio, trial vs control, in the trial population.
    rmst_diff : RMST_trial(tau) - RMST_control(tau), weeks.
    """

    landmark_diff: float
    log_hr: float
    rmst_diff: float


def scenario_config(spec: Any, seed: int) -> Any:
    """``SimulationConfig`` of the spec's scenario with the replicate's seed."""
    from sample_data.simulator import SimulationConfig

    try:
        defaults = {"landmark_weeks": spec.landmark_weeks, "rmst_tau_weeks": spec.rmst_tau_weeks}
        # YAML gives lists; the config is hashable (its truth is cached) so wants tuples
        scenario = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.scenario.items()}
        return SimulationConfig(**{**defaults, **scenario, "seed": seed})
    except (TypeError, ValueError) as exc:
        raise SpecError(f"scenario: not a SimulationConfig option ({exc})") from exc


def truth_values(truth: Mapping[str, Any], spec: Any) -> TruthValues:
    """The spec's estimands out of the simulator's truth (``sample_data.truth``).

    ``spec.truth`` picks the block: ``latent`` (no assessment schedule),
    ``trial_schedule`` (both arms observed on the trial's imaging schedule; what a perfect
    design estimates when the registry's schedule equals the trial's) or ``trial_grid``
    (both arms read on the trial's nominal grid: the harmonised estimator's estimand).
    """
    if truth.get("landmark") != spec.landmark_weeks or truth.get("rmst_tau") != spec.rmst_tau_weeks:
        raise SpecError(
            f"the simulator's truth is for landmark {truth.get('landmark')} and tau "
            f"{truth.get('rmst_tau')} weeks, the spec asks {spec.landmark_weeks} and "
            f"{spec.rmst_tau_weeks}: set scenario.landmark_weeks / scenario.rmst_tau_weeks"
        )
    block = truth[spec.truth]
    return TruthValues(
        landmark_diff=float(block["landmark_difference"]),
        log_hr=float(block["log_marginal_hr"]),
        rmst_diff=float(block["rmst_difference"]),
    )


def truth_mc_se(truth: Mapping[str, Any], spec: Any) -> dict[str, float]:
    """Monte Carlo SE of each true value (the truth is itself a Monte Carlo estimate).

    The difference of the two arms' MC SEs is combined as if independent (an upper bound
    for the latent truth, where both arms share the covariate draws).
    """
    block = truth[spec.truth]
    c, t = block["control"], block["trial"]
    return {
        "landmark_diff": float(
            np.hypot(c["survival_at_landmark_mc_se"], t["survival_at_landmark_mc_se"])
        ),
        "log_hr": float(block["log_marginal_hr_mc_se"]),
        "rmst_diff": float(np.hypot(c["rmst_mc_se"], t["rmst_mc_se"])),
    }
