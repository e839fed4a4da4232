"""Ground truth of the trial-vs-synthetic-control comparison, by Monte Carlo from the DGP.

Estimand (ATT): in the *trial population* (the distribution of trial patients' covariates,
i.e. the second-line candidate distribution tilted by the selection weights), compare PFS
under the trial treatment with PFS under the registry's standard of care.

How it is computed. ``truth_pool`` candidate histories are drawn with the DGP (fixed
``structure_seed``, independent of the scenario's seed); the trial-eligible ones carry the
selection weights ``w_i = exp(confounding * g(x_i))``.

- *Latent* PFS (progression or death, on the latent time, no assessment schedule): each
  candidate's standard-of-care survival ``S0_i(t)`` is a known Weibull curve, and under trial
  treatment ``S1_i(t) = S0_i(t) ** trial_hr``. Survival at the landmark, RMST to tau
  (closed form, incomplete gamma function) and the curves are weighted means over the pool;
  their Monte Carlo SE is that of a weighted mean (covariate sampling only). Medians solve
  ``S(t) = 0.5`` on the mean curve.
- *Marginal HR*: ``truth_draws`` candidates are resampled with probability ``w_i``; each gets a
  latent time under control and under treatment; the HR is the Cox (Efron) estimate on these
  uncensored potential outcomes (its SE is the MC SE).
- *Observed* PFS under an assessment schedule: the same draws are observed on the trial's
  schedule (and, for the control, on the registry's), as the registry/trial would date them
  (first visit on or after progression, or an earlier clinical progression; deaths exactly).
  Survival at the landmark = share observed beyond it; RMST = mean of min(T, tau); MC SE
  binomial / sample SD over ``sqrt(truth_draws)``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from sample_data import _dgp
from sample_data._tables import Structure, fixed_schedule

if TYPE_CHECKING:
    from sample_data.simulator import SimulationConfig

TRUTH_SCHEMA_VERSION = 1


def compute_truth(cfg: SimulationConfig) -> dict[str, Any]:
    """The truth of ``cfg`` (a JSON-ready dict; see the module docstring and docs)."""
    key = dataclasses.replace(cfg, seed=0, n_registry=1, n_trial=1)
    return copy.deepcopy(_truth(key))


@functools.lru_cache(maxsize=16)
def _truth(cfg) -> dict[str, Any]:
    # 6 decimals: far below the Monte Carlo error, and stable across BLAS/CPU last bits
    return _rounded(_compute(cfg), 6)


def _rounded(obj: Any, digits: int) -> Any:
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v, digits) for v in obj]
    return obj


def _compute(cfg) -> dict[str, Any]:
    from sample_data._trial import candidate_pool, second_line_population

    structure = Structure.from_config(cfg)
    rng = np.random.default_rng([cfg.structure_seed, 99])
    pool, elig, logw = candidate_pool(rng, cfg.truth_pool, cfg, structure)
    w = np.exp(logw - logw.max())
    lp0 = pool.lp[elig, 1]
    lp1 = lp0 + np.log(cfg.trial_hr)
    L, tau = 7.0 * cfg.landmark_weeks, 7.0 * cfg.rmst_tau_weeks
    weeks = np.arange(0, 105, dtype=float)

    latent = {}
    for arm, lp in (("control", lp0), ("trial", lp1)):
        s_l = _dgp.weibull_survival(L, lp, 1)
        rmst = _weibull_rmst(lp, tau, 1)
        latent[arm] = {
            "survival_at_landmark": _wmean(s_l, w),
            "survival_at_landmark_mc_se": _wse(s_l, w),
            "rmst": _wmean(rmst, w) / 7.0,
            "rmst_mc_se": _wse(rmst, w) / 7.0,
            "median": _weighted_median_time(lp, w) / 7.0,
        }
    draws = rng.choice(elig.size, size=cfg.truth_draws, replace=True, p=w / w.sum())
    pids = elig[draws]
    t0 = _dgp.weibull_time(rng, lp0[draws], 1)
    t1 = _dgp.weibull_time(rng, lp1[draws], 1)
    log_hr, log_hr_se = cox_binary_efron(np.concatenate([t0, t1]), _arm(draws.size))
    latent_summary = _differences(latent)
    latent_summary.update(
        marginal_hr=float(np.exp(log_hr)), log_marginal_hr=log_hr, log_marginal_hr_mc_se=log_hr_se
    )

    trial_sched = fixed_schedule(cfg.trial_interval_weeks, cfg.trial_visit_window_days)
    obs0 = observe(rng, pool, pids, t0, trial_sched, cfg, tau)
    obs1 = observe(rng, pool, pids, t1, trial_sched, cfg, tau)
    obs_reg = observe(rng, pool, pids, t0, structure.registry_schedule(cfg), cfg, tau)
    on_trial = {
        "control": _observed_summary(obs0, L, tau),
        "trial": _observed_summary(obs1, L, tau),
    }
    on_trial_summary = _differences(on_trial)
    both = np.concatenate([obs0, obs1])
    seen = np.isfinite(both)
    lhr_obs, lhr_obs_se = cox_binary_efron(
        np.where(seen, both, 10 * tau), _arm(draws.size), seen
    )
    on_trial_summary.update(
        marginal_hr=float(np.exp(lhr_obs)),
        log_marginal_hr=lhr_obs,
        log_marginal_hr_mc_se=lhr_obs_se,
    )

    on_grid = _grid_truth(pool, pids, t0, t1, cfg, L, tau)

    second = second_line_population(pool)
    lp_2l = pool.lp[second, 1]
    ones = np.ones(second.size)
    return {
        "schema_version": TRUTH_SCHEMA_VERSION,
        "estimand": (
            "ATT: trial population (second-line trial-eligible candidates weighted by the "
            "selection model); trial treatment vs registry standard of care; PFS = time from "
            "first dose / index to progression or death"
        ),
        "time_unit": "weeks",
        "landmark": cfg.landmark_weeks,
        "rmst_tau": cfg.rmst_tau_weeks,
        "conditional_hr": cfg.trial_hr,
        "latent": {**latent, **latent_summary},
        "trial_schedule": {**on_trial, **on_trial_summary},
        "control_registry_schedule": _observed_summary(obs_reg, L, tau),
        "trial_grid": on_grid,
        "curves": {
            "weeks": weeks.tolist(),
            "control_latent": _mean_curve(7 * weeks, lp0, w).tolist(),
            "trial_latent": _mean_curve(7 * weeks, lp1, w).tolist(),
            "control_trial_schedule": [float((obs0 > 7 * t).mean()) for t in weeks],
            "trial_trial_schedule": [float((obs1 > 7 * t).mean()) for t in weeks],
            "control_registry_schedule": [float((obs_reg > 7 * t).mean()) for t in weeks],
        },
        "registry_second_line": {
            "description": (
                "all registry-like patients on a second line after first-line "
                "platinum-pemetrexed, standard of care, latent PFS (calibration target)"
            ),
            "n": int(second.size),
            "median_months": _weighted_median_time(lp_2l, ones) / _dgp.DAYS_PER_MONTH,
            "survival_at_landmark": _wmean(_dgp.weibull_survival(L, lp_2l, 1), ones),
        },
        "monte_carlo": {
            "structure_seed": cfg.structure_seed,
            "truth_pool": cfg.truth_pool,
            "n_trial_eligible": int(elig.size),
            "selection_ess": float(w.sum() ** 2 / (w**2).sum()),
            "truth_draws": cfg.truth_draws,
        },
    }


def _grid_truth(pool, pids, t0, t1, cfg, L: float, tau: float) -> dict[str, Any]:
    """Both arms read on the trial's *nominal* grid: the estimand of the harmonised estimator.

    The same latent draws as the other blocks; every progression (clinically noticed or not)
    at the first grid visit (``trial_interval_weeks`` apart, no visit window) on or after its
    day, deaths exact. Own stream (``[structure_seed, 101]``) for the death-first draws, so
    the other blocks are unchanged by it; MC SEs as for ``trial_schedule``.
    """
    rng = np.random.default_rng([cfg.structure_seed, 101])
    grid = fixed_schedule(cfg.trial_interval_weeks, 0)
    nominal = dataclasses.replace(cfg, clinical_progression_rate=0.0)
    g0 = observe(rng, pool, pids, t0, grid, nominal, tau)
    g1 = observe(rng, pool, pids, t1, grid, nominal, tau)
    arms = {"control": _observed_summary(g0, L, tau), "trial": _observed_summary(g1, L, tau)}
    out: dict[str, Any] = {**arms, **_differences(arms)}
    both = np.concatenate([g0, g1])
    seen = np.isfinite(both)
    lhr, lhr_se = cox_binary_efron(np.where(seen, both, 10 * tau), _arm(t0.size), seen)
    out.update(marginal_hr=float(np.exp(lhr)), log_marginal_hr=lhr, log_marginal_hr_mc_se=lhr_se)
    return out


def observe(rng, pool, pids, t_latent, schedule, cfg, tau_days: float) -> np.ndarray:
    """Observed PFS days of latent times ``t_latent`` under ``schedule`` (inf beyond 3 tau)."""
    m = t_latent.size
    event = np.ceil(t_latent)
    death_first = rng.random(m) < _dgp.p_death_first(pool, pids, 1)
    clinical = ~death_first & (rng.random(m) < cfg.clinical_progression_rate)
    clin = event + rng.integers(0, 15, m)
    out = np.where(death_first, event, np.inf)
    nominal = np.zeros(m)
    open_ = np.flatnonzero(~death_first & (event <= 3 * tau_days))
    while open_.size:
        step, jitter = schedule(rng, pool, pids[open_])
        nominal[open_] += step
        visit = nominal[open_] + jitter
        hit = visit >= event[open_]
        done = open_[hit]
        out[done] = np.where(clinical[done] & (clin[done] < visit[hit]), clin[done], visit[hit])
        open_ = open_[~hit & (visit <= 3 * tau_days)]
    return out


def cox_binary_efron(
    time: np.ndarray, x: np.ndarray, event: np.ndarray | None = None, iters: int = 50
) -> tuple[float, float]:
    """Cox log-HR of a 0/1 covariate (Efron ties), by Newton-Raphson.

    ``event`` defaults to all ones; infinite times must be censored. Returns (log HR, model
    SE = 1/sqrt(information)). Written here (not lifelines) for speed on 10^6 rows.
    """
    event = np.ones(time.size, bool) if event is None else np.asarray(event, bool)
    order = np.argsort(time, kind="stable")
    t, x, ev = time[order], x[order].astype(float), event[order]
    uniq, first = np.unique(t, return_index=True)
    at_risk = t.size - first  # everyone with time >= t_j
    n1 = np.cumsum(x[::-1])[::-1][first]
    d = np.add.reduceat(ev.astype(float), first)
    d1 = np.add.reduceat(x * ev, first)
    d_int = d.astype(np.int64)
    grp = np.repeat(np.arange(uniq.size), d_int)  # one entry per event
    offsets = np.cumsum(d_int) - d_int
    frac = (np.arange(grp.size) - offsets[grp]) / d[grp]
    beta, info = 0.0, 1.0
    for _ in range(iters):
        e = np.exp(beta)
        s0 = n1[grp] * e + (at_risk - n1)[grp] - frac * (d1[grp] * e + (d - d1)[grp])
        q = (n1[grp] * e - frac * d1[grp] * e) / s0
        score = d1.sum() - q.sum()
        info = float((q - q**2).sum())
        step = score / info
        beta += step
        if abs(step) < 1e-12:
            break
    return float(beta), float(1.0 / np.sqrt(info))


def _weibull_rmst(lp: np.ndarray, tau: float, k: int) -> np.ndarray:
    """Closed form of integral_0^tau S_k(t | lp) dt (days)."""
    shape, scale = _dgp.SHAPE[k], _dgp.SCALE_DAYS[k]
    a = np.exp(lp) / scale**shape
    s = 1.0 / shape
    return special.gamma(s) * s * a ** (-s) * special.gammainc(s, a * tau**shape)


def _mean_curve(t_days: np.ndarray, lp: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mean of the Weibull curves ``S_1(t | lp_i)`` at each of ``t_days``."""
    out = np.empty(t_days.size)
    for start in range(0, t_days.size, 16):  # bounded memory: 16 x n at a time
        t = t_days[start : start + 16, None]
        out[start : start + 16] = _dgp.weibull_survival(t, lp[None, :], 1) @ w / w.sum()
    return out


def _weighted_median_time(lp: np.ndarray, w: np.ndarray) -> float:
    """Solve mean S(t) = 0.5 (days): bracket on a weekly grid, then bisection."""
    grid = 7.0 * np.arange(0, 157)  # medians here are far below 3 years
    curve = _mean_curve(grid, lp, w)
    j = int(np.argmax(curve <= 0.5))
    lo, hi = grid[j - 1], grid[j]
    for _ in range(20):  # a week / 2**20: far below a second
        mid = 0.5 * (lo + hi)
        if _wmean(_dgp.weibull_survival(mid, lp, 1), w) > 0.5:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _observed_summary(obs: np.ndarray, L: float, tau: float) -> dict[str, float]:
    n = obs.size
    s_l = float((obs > L).mean())
    capped = np.minimum(obs, tau)
    srt = np.sort(obs)
    return {
        "survival_at_landmark": s_l,
        "survival_at_landmark_mc_se": float(np.sqrt(s_l * (1 - s_l) / n)),
        "rmst": float(capped.mean()) / 7.0,
        "rmst_mc_se": float(capped.std(ddof=1) / np.sqrt(n)) / 7.0,
        "median": float(srt[int(np.ceil(n / 2)) - 1]) / 7.0,  # min t with S(t) <= 0.5
    }


def _differences(arms: dict[str, dict[str, float]]) -> dict[str, float]:
    c, t = arms["control"], arms["trial"]
    return {
        "landmark_difference": t["survival_at_landmark"] - c["survival_at_landmark"],
        "rmst_difference": t["rmst"] - c["rmst"],
    }


def _arm(m: int) -> np.ndarray:
    return np.concatenate([np.zeros(m), np.ones(m)])


def _wmean(v, w) -> float:
    return float(np.dot(v, w) / w.sum())


def _wse(v, w) -> float:
    mean = np.dot(v, w) / w.sum()
    return float(np.sqrt(np.dot(w**2, (v - mean) ** 2)) / w.sum())
