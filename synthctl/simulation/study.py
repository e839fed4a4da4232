"""Run a simulation study: replicates in parallel, designs on each, performance per design.

Reproducibility: the study seed spawns one ``np.random.SeedSequence`` child per replicate;
a replicate draws its data and seeds its designs from its own child only, so the result is
the same whatever the number of workers or the joblib backend (loky, or dask through
``joblib.parallel_config(backend="dask")``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pandas as pd

from connectors import columns as cols
from reports.alignment_options import DEFAULT_IMPUTATION_MODEL
from synthctl.simulation.metrics import performance_measures, share_with_mcse
from synthctl.simulation.spec import ESTIMATOR_OPTIONS, NAIVE, SimulationSpec
from synthctl.simulation.truth import scenario_config, truth_mc_se, truth_values

__all__ = [
    "ESTIMANDS",
    "SimulationResult",
    "run_replicate",
    "run_simulation",
    "summarise_runs",
]

# estimand key -> (label, scale note); all are trial minus (or over) the synthetic control
ESTIMANDS: dict[str, str] = {
    "landmark_diff": "S(landmark) difference, trial - control (probability scale)",
    "log_hr": "log hazard ratio, trial vs control",
    "rmst_diff": "RMST difference up to tau, trial - control (weeks)",
}
TIME_COL = "pfs_weeks"
LEFT_COL, EXACT_COL = "pfs_left_weeks", cols.PFS_DEATH
# imputations of the harmonised estimator in a simulation: 10 (the default is 20);
# the Rubin variance's between part is (1 + 1/M) B, so M = 10 vs 20 changes the total
# variance by < 5% of B, and the coverage is measured, not assumed
SIMULATION_IMPUTATIONS = 10
# failures of one design on one replicate are recorded (with the message), not raised:
# with 27 trial patients, separation or an empty caliper match happens and must be counted.
_DESIGN_FAILURES = (ValueError, ArithmeticError, np.linalg.LinAlgError)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Outcome of ``run_simulation``.

    Attributes
    ----------
    runs : DataFrame
        One row per replicate x design x estimand: ``replicate, design, estimand, estimate,
        se, lower, upper, truth, truth_mcse, balance_passed, n_trial, n_trial_analysed,
        control_ess, error``.
    summary : DataFrame
        One row per design x estimand: the measures of ``PerformanceMeasures`` plus
        ``balance_share`` and its MC SE, ``mean_control_ess``, ``mean_trial_analysed``,
        ``n_failed`` and
        ``truth_mcse`` (the Monte Carlo SE of the true value itself).
    """

    spec: SimulationSpec
    seed: int
    replicates: int
    runs: pd.DataFrame
    summary: pd.DataFrame
    truth: dict[str, float]
    elapsed_seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "seed": self.seed,
            "replicates": self.replicates,
            "truth_kind": self.spec.truth,
            "truth": self.truth,
            "elapsed_seconds": self.elapsed_seconds,
            "meta": self.meta,
            "summary": self.summary.to_dict(orient="records"),
        }


def run_simulation(
    spec: SimulationSpec,
    *,
    replicates: int,
    seed: int | None = None,
    n_jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Run ``replicates`` replicates of the spec's scenario through every design.

    Parameters
    ----------
    spec : SimulationSpec
    replicates : int
        Number of independent registries + trial arms drawn from the scenario.
    seed : int, optional
        Study seed (default: ``spec.seed``).
    n_jobs : int, default=1
        joblib workers. The backend is loky unless a ``joblib.parallel_config`` context
        chooses another (``backend="dask"`` runs on a dask.distributed client).
    progress : callable, optional
        Called with the number of replicates finished so far, after each one.
    """
    if replicates < 2:
        raise ValueError(f"replicates must be >= 2 (got {replicates}): the MC SEs need two")
    seed = spec.seed if seed is None else int(seed)
    children = np.random.SeedSequence(seed).spawn(replicates)
    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    for done, chunk in enumerate(_parallel_map(spec, children, n_jobs), start=1):
        records.extend(chunk)
        if progress is not None:
            progress(done)
    runs = pd.DataFrame.from_records(records)
    runs["design"] = pd.Categorical(runs["design"], categories=list(spec.designs), ordered=True)
    runs = runs.sort_values(["replicate", "design", "estimand"], ignore_index=True)
    summary = summarise_runs(runs)
    truth = runs.groupby("estimand", observed=True)["truth"].mean().astype(float).to_dict()
    return SimulationResult(
        spec=spec,
        seed=seed,
        replicates=replicates,
        runs=runs,
        summary=summary,
        truth=truth,
        elapsed_seconds=time.perf_counter() - start,
        meta={"n_jobs": n_jobs},
    )


def _parallel_map(
    spec: SimulationSpec, children: list[np.random.SeedSequence], n_jobs: int
) -> Iterator[list[dict[str, Any]]]:
    """Replicates in order; a generator so the caller can report progress as they finish."""
    if n_jobs == 1:
        for index, child in enumerate(children):
            yield run_replicate(spec, index, child)
        return
    tasks = (
        joblib.delayed(run_replicate)(spec, index, child) for index, child in enumerate(children)
    )
    yield from joblib.Parallel(n_jobs=n_jobs, return_as="generator")(tasks)


def run_replicate(
    spec: SimulationSpec, index: int, seed_sequence: np.random.SeedSequence
) -> list[dict[str, Any]]:
    """Draw one registry + trial arm and estimate every estimand with every design.

    Returns one record per design x estimand (see ``SimulationResult.runs``).
    """
    if spec.kind == "binary":  # the binary-endpoint scenario (issue 15)
        from synthctl.simulation.binary import run_binary_replicate

        return run_binary_replicate(spec, index, seed_sequence)
    data_seed, design_seed = (int(s) for s in seed_sequence.generate_state(2, dtype=np.uint32))
    frame, raw_truth = simulate_replicate_frame(spec, data_seed)
    truth, truth_mcse = truth_values(raw_truth, spec), truth_mc_se(raw_truth, spec)
    records: list[dict[str, Any]] = []
    smd_before: float | None = None
    for name, options in spec.designs.items():
        base = {"replicate": index, "design": name}
        try:
            design, balance_passed, max_smd_before, control_ess = _apply_design(
                frame, spec, _design_options(options), design_seed
            )
            n_trial_analysed = int(
                ((frame[cols.ARM] == cols.TRIAL).to_numpy() & design.included
                 & (design.weights > 0)).sum()
            )
            if max_smd_before is not None:
                smd_before = max_smd_before
            estimates = _estimate(frame, design, spec, _blocks(spec, options, design_seed))
            error = None
        except _DESIGN_FAILURES as exc:
            estimates, balance_passed, control_ess = {}, None, float("nan")
            n_trial_analysed = 0
            error = f"{type(exc).__name__}: {exc}"[:300]
        for key in ESTIMANDS:
            est = estimates.get(key, (np.nan,) * 4)
            records.append(
                {
                    **base,
                    "estimand": key,
                    "estimate": est[0],
                    "se": est[1],
                    "lower": est[2],
                    "upper": est[3],
                    "truth": getattr(truth, key),
                    "truth_mcse": truth_mcse[key],
                    "balance_passed": balance_passed,
                    "n_trial": int((frame[cols.ARM] == cols.TRIAL).sum()),
                    "n_trial_analysed": n_trial_analysed,
                    "control_ess": control_ess,
                    "error": error,
                }
            )
    # the naive design's "balance" is the balance before adjustment, known once any design ran
    if smd_before is not None:
        threshold = _balance_threshold(spec)
        for rec in records:
            if spec.designs[rec["design"]]["method"] == NAIVE and rec["error"] is None:
                rec["balance_passed"] = bool(smd_before < threshold)
    return records


def simulate_replicate_frame(
    spec: SimulationSpec, data_seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Analysis frame (trial + eligible registry pool, PFS in weeks) and the simulator's truth.

    The truth depends on the scenario, not on ``data_seed`` (``sample_data.truth``).
    """
    from sample_data.simulator import simulate_analysis_frames

    config = scenario_config(spec, data_seed)
    if any(o.get("estimator") == "harmonised" for o in spec.designs.values()):
        control, trial, truth = _frames_with_intervals(config)
    else:
        control, trial, truth = simulate_analysis_frames(config)
    control = _apply_eligibility(control, spec.eligibility)
    frame = pd.concat([trial, control], ignore_index=True)
    frame[TIME_COL] = cols.days_to("weeks", frame[cols.PFS_DAYS].astype(float))
    return frame, truth


def _frames_with_intervals(config) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """`simulate_analysis_frames` plus the PFS progression interval of each row (weeks)."""
    from sample_data import _tables, _trial
    from sample_data.simulator import _simulate, compute_truth
    from synthctl.simulation.intervals import registry_intervals, trial_intervals

    registry, trial_raw = _simulate(config)
    tables = _tables.registry_tables(registry, config)
    control = _tables.control_frame(tables)
    trial = _trial.trial_frame(trial_raw.adsl, trial_raw.adtte)
    control = control.join(registry_intervals(tables, control))
    every = cols.to_days("weeks", config.trial_interval_weeks)
    trial = trial.join(trial_intervals(trial, every))
    for f in (control, trial):
        f[LEFT_COL] = cols.days_to("weeks", f[cols.PFS_LAST_PF_DAYS].astype(float))
    return control, trial, compute_truth(config)


def _design_options(options: dict[str, Any]) -> dict[str, Any]:
    """The match_cohort part of a design's options (the estimator keys removed)."""
    return {k: v for k, v in options.items() if k not in ESTIMATOR_OPTIONS}


def _apply_eligibility(pool: pd.DataFrame, criteria: list[str]) -> pd.DataFrame:
    if not criteria:
        return pool
    from connectors.attrition import apply_criteria_to_frame

    kept, _attrition = apply_criteria_to_frame(pool, criteria)
    return kept


def _balance_threshold(spec: SimulationSpec) -> float:
    for options in spec.designs.values():
        if "balance_threshold" in options:
            return float(options["balance_threshold"])
    return 0.1


def _apply_design(
    frame: pd.DataFrame, spec: SimulationSpec, options: dict[str, Any], seed: int
):
    """(AnalysisDesign aligned with ``frame``, balance passed, max |SMD| before, control ESS)."""
    from reports.analysis import AnalysisDesign

    if options["method"] == NAIVE:
        n_control = float((frame[cols.ARM] == cols.CONTROL).sum())
        return AnalysisDesign.unweighted(len(frame)), None, None, n_control
    from matching import match_cohort

    with warnings.catch_warnings():
        # separation/positivity warnings are expected in some replicates; balance_passed
        # and the failure count carry the consequence into the table
        warnings.simplefilter("ignore")
        res = match_cohort(
            frame,
            spec.covariates,
            treatment_col=cols.ARM,
            treated_value=cols.TRIAL,
            id_col=cols.PATIENT_ID,
            random_state=seed,
            **options,
        )
    design = AnalysisDesign.from_result(res)
    smd_before = res.balance.frame["smd_before"].abs().max()
    return design, bool(res.balance_passed), float(smd_before), float(res.ess["control"])


def _estimate(frame: pd.DataFrame, design, spec: SimulationSpec, blocks: tuple = ()
              ) -> dict[str, tuple[float, float, float, float]]:
    """(estimate, se, lower, upper) per estimand from `reports.analysis.analyze_study`
    (analytic variances: no bootstrap; the naive comparison is a design of its own here;
    ``blocks``: the PFS endpoint's blocks, e.g. the harmonised estimator as primary)."""
    from reports.analysis import analyze_study, time_to_event_settings

    settings = time_to_event_settings(
        "PFS", time_col=TIME_COL, event_col=cols.PFS_EVENT, landmarks=[spec.landmark_weeks],
        unit="weeks", null_rate=spec.null_rate, rmst_tau=spec.rmst_tau_weeks, conf_type="log",
        arm_col=cols.ARM, treated_value=cols.TRIAL, id_col=cols.PATIENT_ID,
        conf_level=spec.conf_level, blocks={"PFS": blocks} if blocks else {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-integer weights -> robust variance, by design
        d = analyze_study(frame, design, None, settings, naive=False).to_dict()[
            "endpoints"]["PFS"]
    # an estimate the data cannot give (RMST with follow-up shorter than tau, a landmark
    # beyond the last time) is None in results.json: NaN here, counted as not valid
    land = (d["landmarks"][0] if d["landmarks"] else {}).get("difference") or {}
    hr = d.get("hazard_ratio") or {}
    rmst = (d.get("rmst") or {}).get("difference") or {}
    with np.errstate(divide="ignore", invalid="ignore"):
        log_hr = (
            float(np.log(_num(hr.get("estimate")))),
            _num(hr.get("se_log")),
            float(np.log(_num(hr.get("lower")))),
            float(np.log(_num(hr.get("upper")))),
        )
    return {"landmark_diff": _four(land), "log_hr": log_hr, "rmst_diff": _four(rmst)}


def _blocks(spec: SimulationSpec, options: dict[str, Any], seed: int) -> tuple:
    """``estimator: harmonised``: the endpoint-alignment block, primary (the harmonised
    landmarks, HR and RMST are the ones read), on the trial's schedule; else none."""
    if options.get("estimator") != "harmonised":
        return ()
    from reports.alignment_block import AlignmentBlock

    return (AlignmentBlock(
        time_col=TIME_COL, event_col=cols.PFS_EVENT, left_col=LEFT_COL, exact_col=EXACT_COL,
        grid_every=float(scenario_config(spec, 0).trial_interval_weeks),
        landmarks=(spec.landmark_weeks,), unit="weeks", rmst_tau=spec.rmst_tau_weeks,
        imputations=int(options.get("imputations", SIMULATION_IMPUTATIONS)),
        random_state=seed, primary=True, tipping=False,
        impute_trial=bool(options.get("impute_trial", True)),
        imputation_model=options.get("imputation_model", DEFAULT_IMPUTATION_MODEL)),)


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _four(d: dict[str, Any]) -> tuple[float, float, float, float]:
    """(estimate, se, lower, upper) of a results.json estimate object, None -> NaN."""
    return (_num(d.get("estimate")), _num(d.get("se")), _num(d.get("lower")), _num(d.get("upper")))


def summarise_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Performance per design x estimand (one row each), in the spec's design order."""
    rows = []
    for (design, estimand), g in runs.groupby(["design", "estimand"], observed=True, sort=True):
        pm = performance_measures(g["estimate"], g["se"], g["lower"], g["upper"], g["truth"])
        share, share_mcse = share_with_mcse(g["balance_passed"])
        rows.append(
            {
                "design": design,
                "estimand": estimand,
                **pm.to_dict(),
                "balance_share": share,
                "balance_share_mcse": share_mcse,
                "mean_control_ess": float(np.nanmean(g["control_ess"]))
                if g["control_ess"].notna().any()
                else float("nan"),
                "mean_trial_analysed": float(g["n_trial_analysed"].mean()),
                "n_failed": int(g["error"].notna().sum()),
                "truth_mcse": float(g["truth_mcse"].mean()),
            }
        )
    return pd.DataFrame(rows)
