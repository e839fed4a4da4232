"""Seeded simulator of a RENAPE-like peritoneal mesothelioma registry and a single-arm trial.

`simulate_scenario` draws a registry (tables of `connectors.schema.LOGICAL_SCHEMA`), a
27-patient single-arm second-line trial (CDISC ADaM ADSL/ADTTE) whose patients are selected
toward a better prognosis, and the ground truth of the comparison (the counterfactual
standard-of-care PFS of the trial population). `simulate_analysis_frames` gives the same data
directly as analysis frames (the simulation study's fast path). The model is described, with
its literature calibration, in ``docs/sample_data.md``.

Examples
--------
>>> from sample_data.simulator import SimulationConfig, simulate_scenario
>>> sc = simulate_scenario(SimulationConfig(seed=1, n_registry=300))
>>> sorted(sc.registry_tables)[:3]
['centres', 'diagnoses', 'follow_up']
>>> len(sc.trial_adsl)
27
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sample_data import _dgp, _tables, _trial
from sample_data.truth import compute_truth
from sample_data.writer import write_registry, write_registry_sqlite

__all__ = [
    "DEFAULT_SEED",
    "Scenario",
    "SimulationConfig",
    "simulate_analysis_frames",
    "simulate_scenario",
    "write_registry",
    "write_registry_sqlite",
]

DEFAULT_SEED = 20250601


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Every knob of the data-generating process (all times as stated, dates ISO strings).

    Parameters
    ----------
    seed : int
        Seed of the registry and trial patients (``numpy.random.default_rng``). The centres
        (sizes, centre effects, imaging habits) and the truth depend on ``structure_seed`` only,
        so that every replicate of a simulation study shares one truth.
    n_registry : int
        Registry patients (all diagnoses, treated or not; about 60% reach a second line).
    n_centres : int
        Registry centres, of unequal sizes.
    n_trial : int
        Trial patients.
    trial_hr : float
        Conditional hazard ratio of the trial treatment vs standard second-line therapy, on the
        latent progression-or-death time (the same for every patient).
    confounding : float
        Multiplier of the trial-selection log-odds (0: the trial is a random sample of the
        trial-eligible second-line population; 1: default selection toward better prognosis).
    trial_interval_weeks, trial_visit_window_days : float, int
        Trial imaging every ``trial_interval_weeks`` from the first dose, each visit within
        +/- ``trial_visit_window_days`` days.
    registry_interval_weeks : (float, float)
        Registry imaging intervals, irregular, between these bounds (each centre has its own
        habit inside them). ``(6, 6)`` with ``registry_visit_window_days=3`` gives the trial's
        schedule (the "equal schedules" scenario).
    registry_visit_window_days : int
        Jitter of registry visits around their nominal dates.
    ecog_missing, ki67_missing, bap1_missing, pci_missing : float
        Missing-completely-at-random shares in the registry (PCI: among patients without
        CRS; with CRS, where it is scored at surgery, 1%).
    trial_ki67_missing, trial_bap1_missing : float
        Same, in the trial (ECOG and PCI are complete in the trial).
    clinical_progression_rate : float
        Share of progressions noticed clinically before the next scheduled imaging.
    loss_to_follow_up_per_year : float
        Registry loss-to-follow-up hazard, per year from diagnosis.
    diagnosis_start, data_cutoff : str
        Registry diagnosis window start and data cut-off (ISO dates).
    trial_enrolment_start, trial_enrolment_end, trial_cutoff : str
        Trial first-dose window and data cut-off (ISO dates).
    trial_max_age : float
        Trial upper age limit (years); the lower one is 18.
    landmark_weeks, rmst_tau_weeks : float
        Landmark and RMST horizon of the truth (weeks).
    structure_seed : int
        Seed of the centres and of the Monte Carlo truth.
    truth_pool, truth_draws : int
        Candidate histories and outcome draws per arm of the Monte Carlo truth.
    """

    seed: int = DEFAULT_SEED
    n_registry: int = 2000
    n_centres: int = 15
    n_trial: int = 27
    trial_hr: float = 0.5
    confounding: float = 1.0
    trial_interval_weeks: float = 6.0
    trial_visit_window_days: int = 3
    registry_interval_weeks: tuple[float, float] = (8.0, 16.0)
    registry_visit_window_days: int = 0
    ecog_missing: float = 0.10
    ki67_missing: float = 0.55
    bap1_missing: float = 0.45
    pci_missing: float = 0.15
    trial_ki67_missing: float = 0.20
    trial_bap1_missing: float = 0.30
    clinical_progression_rate: float = 0.08
    loss_to_follow_up_per_year: float = 0.02
    diagnosis_start: str = "2010-01-01"
    data_cutoff: str = "2024-12-31"
    trial_enrolment_start: str = "2022-03-01"
    trial_enrolment_end: str = "2023-09-30"
    trial_cutoff: str = "2024-03-31"
    trial_max_age: float = 80.0
    landmark_weeks: float = 24.0
    rmst_tau_weeks: float = 52.0
    structure_seed: int = 1
    truth_pool: int = 200_000
    truth_draws: int = 300_000

    def __post_init__(self) -> None:
        # YAML gives lists: keep the config hashable (the truth is cached per config)
        interval = self.registry_interval_weeks
        if not isinstance(interval, tuple | list) or len(interval) != 2:
            raise ValueError(
                "SimulationConfig.registry_interval_weeks: must be (low, high), "
                f"got {interval!r}"
            )
        object.__setattr__(self, "registry_interval_weeks", tuple(float(w) for w in interval))
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        out = dataclasses.asdict(self)
        out["registry_interval_weeks"] = list(self.registry_interval_weeks)
        return out


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated registry + trial, with the truth of the trial-vs-control comparison.

    Attributes
    ----------
    registry_tables : dict of str -> DataFrame
        Logical table name -> rows, exactly the columns of `connectors.schema.LOGICAL_SCHEMA`.
    trial_adsl, trial_adtte : DataFrame
        CDISC ADaM subject-level and time-to-event data of the trial (PFS and OS, AVAL in days).
    trial_adrs : DataFrame
        ADaM ADRS of the trial: every tumour assessment as a per-visit overall response.
    truth : dict
        See `sample_data.truth.compute_truth`.
    config : SimulationConfig
    """

    registry_tables: dict[str, pd.DataFrame]
    trial_adsl: pd.DataFrame
    trial_adtte: pd.DataFrame
    truth: dict[str, Any]
    config: SimulationConfig
    trial_adrs: pd.DataFrame | None = None  # per-visit overall response (ADaM ADRS, OVR)

    def summary(self) -> str:
        """A few lines: table sizes and the headline truth (latent and trial-schedule PFS)."""
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.registry_tables.items())
        lat, obs = self.truth["latent"], self.truth["trial_schedule"]
        lm = self.truth["landmark"]
        return "\n".join([
            f"seed {self.config.seed}: registry {sizes}; trial {len(self.trial_adsl)} patients",
            f"truth S({lm:g} wk) control/trial: latent {lat['control']['survival_at_landmark']:.3f}"
            f"/{lat['trial']['survival_at_landmark']:.3f}, trial schedule "
            f"{obs['control']['survival_at_landmark']:.3f}/{obs['trial']['survival_at_landmark']:.3f}",
            f"marginal HR {lat['marginal_hr']:.3f} (conditional {self.truth['conditional_hr']:g})",
        ])


def simulate_scenario(config: SimulationConfig | None = None) -> Scenario:
    """Simulate the registry, the trial and the truth of ``config`` (default: the sample)."""
    config = config or SimulationConfig()
    registry, trial = _simulate(config)
    return Scenario(
        registry_tables=_tables.registry_tables(registry, config),
        trial_adsl=trial.adsl,
        trial_adtte=trial.adtte,
        truth=compute_truth(config),
        config=config,
        trial_adrs=trial.adrs,
    )


def simulate_analysis_frames(
    config: SimulationConfig | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Control and trial analysis frames of ``config``, without a database.

    The control frame has one row per registry patient with an index line (the first line
    starting after a platinum-pemetrexed line), before any eligibility criterion; the trial
    frame one row per trial patient. Columns are those of `connectors.columns` (covariates
    and outcomes, ``arm`` = "control"/"trial"), derived from the registry tables and the ADaM
    files by the rules of ``docs/sample_data.md`` (`sample_data._tables.control_frame`).

    Returns
    -------
    (control_frame, trial_frame, truth)
    """
    config = config or SimulationConfig()
    registry, trial = _simulate(config)
    tables = _tables.registry_tables(registry, config)
    return (
        _tables.control_frame(tables),
        _trial.trial_frame(trial.adsl, trial.adtte),
        compute_truth(config),
    )


def __getattr__(name: str) -> Any:
    # TRUTH: the truth of the shipped sample (read from truth.json, not recomputed)
    if name == "TRUTH":
        import json

        from sample_data.paths import TRUTH_JSON

        return json.loads(TRUTH_JSON.read_text(encoding="utf-8"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- orchestration ---------------------------------------------------------------------------


def _simulate(config: SimulationConfig):
    structure = _tables.Structure.from_config(config)
    seeds = np.random.SeedSequence(config.seed).spawn(2)
    rng_registry, rng_trial = (np.random.default_rng(s) for s in seeds)
    day0 = _tables.day_number(config.diagnosis_start)
    cutoff = _tables.day_number(config.data_cutoff)
    n = config.n_registry
    # loss to follow-up, from diagnosis: independent of the history (non-informative)
    ltfu = np.ceil(
        rng_registry.exponential(365.25 / max(config.loss_to_follow_up_per_year, 1e-12), n)
    )
    registry = _dgp.simulate_cohort(
        rng_registry,
        n,
        config,
        structure.centre_p,
        structure.centre_lhr,
        (day0, cutoff - 60),
        lambda diag_day: np.minimum(cutoff, diag_day + np.minimum(ltfu, 1e6).astype(np.int64)),
        structure.registry_schedule(config),
    )
    trial = _trial.simulate_trial(rng_trial, config, structure)
    return registry, trial


def _check(cfg: SimulationConfig) -> None:
    def bad(name, why):
        raise ValueError(f"SimulationConfig.{name}: {why}, got {getattr(cfg, name)!r}")

    for name in ("seed", "structure_seed"):
        if not isinstance(getattr(cfg, name), int | np.integer) or getattr(cfg, name) < 0:
            bad(name, "must be a non-negative int")
    for name, low in (("n_registry", 1), ("n_centres", 1), ("n_trial", 1), ("truth_pool", 1000),
                      ("truth_draws", 1000)):
        if not isinstance(getattr(cfg, name), int | np.integer) or getattr(cfg, name) < low:
            bad(name, f"must be an int >= {low}")
    if not cfg.trial_hr > 0:
        bad("trial_hr", "must be > 0")
    if cfg.confounding < 0:
        bad("confounding", "must be >= 0")
    lo, hi = cfg.registry_interval_weeks
    if not 0 < lo <= hi:
        bad("registry_interval_weeks", "must be (low, high) with 0 < low <= high")
    if not cfg.trial_interval_weeks > 0:
        bad("trial_interval_weeks", "must be > 0")
    for name in ("ecog_missing", "ki67_missing", "bap1_missing", "pci_missing",
                 "trial_ki67_missing", "trial_bap1_missing", "clinical_progression_rate"):
        if not 0 <= getattr(cfg, name) <= 1:
            bad(name, "must be a share in [0, 1]")
    dates = {
        name: _tables.day_number(getattr(cfg, name))
        for name in ("diagnosis_start", "data_cutoff", "trial_enrolment_start",
                     "trial_enrolment_end", "trial_cutoff")
    }
    if dates["data_cutoff"] - dates["diagnosis_start"] < 365:
        bad("data_cutoff", "must be at least a year after diagnosis_start")
    if not dates["trial_enrolment_start"] <= dates["trial_enrolment_end"] < dates["trial_cutoff"]:
        bad("trial_cutoff", "must follow trial_enrolment_start <= trial_enrolment_end")
