"""Simulation study spec: the scenario, the designs to compare and the estimands (YAML).

```yaml
name: sample scenario
seed: 20250601
scenario: {n_registry: 1500, n_trial: 27}      # SimulationConfig overrides (sample_data.simulator)
truth: latent                                   # which truth the scenario is judged against
covariates: [age_at_index, sex, ecog_at_index, histology, pci, crs_hipec, pfi_months]
eligibility: ["ecog_at_index <= 1"]             # applied to the registry pool, as in a study
landmark_weeks: 24
rmst_tau_weeks: 52
designs:                                        # name -> keyword arguments of match_cohort
  naive: {method: none}                         # no adjustment: the whole pool, weight 1
  nearest_1to1: {method: nearest, ratio: 1, caliper: 0.2, caliper_scale: logit}
```
"""

from __future__ import annotations

import dataclasses
import inspect
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from reports.alignment_options import IMPUTATION_MODELS
from synthctl.errors import SpecError

__all__ = ["ESTIMATOR_OPTIONS", "NAIVE", "SimulationSpec", "default_spec_path",
           "load_simulation_spec"]

NAIVE = "none"  # design method meaning "no adjustment" (match_cohort is not called)
# design options that choose the PFS estimator, not the design (issue 13): "standard" reads
# PFS as observed; "harmonised" reads both arms on the trial's schedule (reports.alignment)
ESTIMATOR_OPTIONS = {"estimator": ("standard", "harmonised"), "imputations": None,
                     "impute_trial": None, "imputation_model": tuple(IMPUTATION_MODELS)}
_RESERVED = {"frame", "covariates", "treatment_col", "treated_value", "id_col", "random_state"}


class SimulationSpec(BaseModel):
    """A simulation study: one scenario of the data-generating process, several designs.

    Attributes
    ----------
    kind : {"survival", "binary"}
        ``survival`` (default): the registry simulator of ``sample_data`` and the PFS
        estimands; ``binary``: the binary-endpoint scenario of `synthctl.simulation.binary`
        (its ``scenario`` keys are `BinaryScenario`'s; covariates ``[x, z]``).
    scenario : dict
        Keyword overrides of ``sample_data.simulator.SimulationConfig`` (the seed is set per
        replicate and may not be given here).
    truth : {"latent", "trial_schedule", "trial_grid"}
        ``latent``: the counterfactual curves of the latent progression times (no assessment
        schedule); ``trial_schedule``: both arms as observed on the trial's imaging schedule
        (visit windows, clinical progressions between visits), the right target when the
        scenario gives the registry the trial's schedule; ``trial_grid``: both arms read on
        the trial's nominal grid (every progression at the first grid visit on or after it,
        deaths exact), the estimand of the harmonised estimator. See ``sample_data.truth``
        and benchmarks/README.md.
    designs : dict of str to dict
        Name -> keyword arguments of ``matching.match_cohort``; ``{method: none}`` is the
        unadjusted comparison with the whole eligible pool. ``estimator: harmonised`` (with
        ``imputations``, default 10, and ``imputation_model``) estimates PFS on the trial's
        assessment schedule
        (``reports.alignment.harmonised_estimate``) instead of as observed.
    landmark_weeks, rmst_tau_weeks : float
        Landmark of the survival difference (trial - control) and RMST horizon, in weeks.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "simulation study"
    seed: int = Field(20250601, ge=0)
    kind: Literal["survival", "binary"] = "survival"
    scenario: dict[str, Any] = Field(default_factory=dict)
    truth: Literal["latent", "trial_schedule", "trial_grid"] = "latent"
    covariates: list[str] = Field(min_length=1)
    eligibility: list[str] = Field(default_factory=list)
    designs: dict[str, dict[str, Any]] = Field(min_length=1)
    landmark_weeks: float = Field(24.0, gt=0)
    rmst_tau_weeks: float = Field(52.0, gt=0)
    null_rate: float = Field(0.35, gt=0, lt=1)
    conf_level: float = Field(0.95, gt=0, lt=1)

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "seed" in value:
            raise ValueError("scenario.seed is set per replicate from the study seed; remove it")
        if info.data.get("kind") == "binary":
            from synthctl.simulation.binary import scenario_fields

            unknown = sorted(set(value) - scenario_fields())
            if unknown:
                raise ValueError(f"unknown binary scenario option(s) {unknown}; known: "
                                 f"{sorted(scenario_fields())}")
            return value
        known = _config_fields()
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unknown SimulationConfig option(s) {unknown}; known: {sorted(known)}"
            )
        return value

    @field_validator("designs")
    @classmethod
    def _known_options(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        allowed = _match_cohort_options()
        for name, options in value.items():
            options = dict(options)
            estimator = options.pop("estimator", "standard")
            if estimator not in ESTIMATOR_OPTIONS["estimator"]:
                raise ValueError(f"designs.{name}: estimator must be one of "
                                 f"{list(ESTIMATOR_OPTIONS['estimator'])}, got {estimator!r}")
            imputations = options.pop("imputations", None)
            if imputations is not None and (not isinstance(imputations, int) or imputations < 2
                                            or estimator != "harmonised"):
                raise ValueError(f"designs.{name}: imputations (an integer >= 2) goes with "
                                 "estimator: harmonised")
            impute_trial = options.pop("impute_trial", None)
            if impute_trial is not None and (not isinstance(impute_trial, bool)
                                             or estimator != "harmonised"):
                raise ValueError(f"designs.{name}: impute_trial (true/false) goes with "
                                 "estimator: harmonised")
            model = options.pop("imputation_model", None)
            if model is not None and (model not in ESTIMATOR_OPTIONS["imputation_model"]
                                      or estimator != "harmonised"):
                raise ValueError(f"designs.{name}: imputation_model (one of "
                                 f"{list(ESTIMATOR_OPTIONS['imputation_model'])}) goes with "
                                 "estimator: harmonised")
            if "method" not in options:
                raise ValueError(f"designs.{name}: 'method' is required (or 'none' for naive)")
            if options["method"] == NAIVE:
                extra = set(options) - {"method"}
                if extra:
                    raise ValueError(f"designs.{name}: method 'none' takes no options: {extra}")
                continue
            bad = (set(options) & _RESERVED) | (set(options) - allowed)
            if bad:
                raise ValueError(
                    f"designs.{name}: unknown or reserved match_cohort option(s) {sorted(bad)}"
                )
        return value


def _config_fields() -> set[str]:
    """Option names of ``sample_data.simulator.SimulationConfig``."""
    from sample_data.simulator import SimulationConfig

    return {f.name for f in dataclasses.fields(SimulationConfig)}


def _match_cohort_options() -> set[str]:
    """Keyword options of ``match_cohort``."""
    from matching import match_cohort

    params = inspect.signature(match_cohort).parameters
    return {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY} - _RESERVED


def default_spec_path() -> Path:
    """Path of the shipped default study (``synthctl/simulation_default.yaml``)."""
    return Path(str(resources.files("synthctl").joinpath("simulation_default.yaml")))


def load_simulation_spec(path: str | Path | None = None) -> SimulationSpec:
    """Read and validate a simulation spec; ``None`` reads the shipped default.

    Raises
    ------
    SpecError
        Unreadable file, bad YAML, unknown key or bad value (the message names the file and
        the key).
    """
    path = default_spec_path() if path is None else Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the simulation spec ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of keys at the top level")
    try:
        return SimulationSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SpecError(f"{path}: invalid simulation spec: {problems}") from exc
