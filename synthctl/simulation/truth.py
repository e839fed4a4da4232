"""The scenario's configuration and its true estimands, from ``sample_data.simulator``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthctl.errors import SpecError

__all__ = ["TruthValues", "scenario_config", "truth_values"]


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
        return SimulationConfig(**{**spec.scenario, "seed": seed})
    except TypeError as exc:
        raise SpecError(f"scenario: not a SimulationConfig option ({exc})") from exc


def truth_values(truth: Mapping[str, Any], spec: Any) -> TruthValues:
    """Pick the spec's estimands out of the simulator's truth."""
    raise NotImplementedError  # wired when sample_data.simulator lands
