"""Where the harmonised estimator's log-HR bias comes from (issue 13, benchmarks/README.md).

Large paired draws from the truth machinery of `sample_data.truth` (trial population, no
design, no censoring): each control latent PFS time is observed twice, on the trial's nominal
6-week grid (the `trial_grid` truth) and on the registry's 8-16-week schedule (the data).
The registry observations are harmonised as `reports.alignment` does (weighted Turnbull NPMLE
of the arm, a progression's latent time drawn within its interval, placed at the next grid
visit) and compared with the grid truth of the *same* patients, against one fixed trial arm
read on the grid: the difference is the control side of the estimator's bias, free of
sampling error in the truth. Three imputation models: the piecewise-exponential grid-cell
hazard (`reports.grid_hazard`, the default), the Turnbull NPMLE, and "uniform within the
interval".

Run: ``nice -n 10 python benchmarks/alignment_identification.py [n_control] [subsamples]``
"""

from __future__ import annotations

import sys

import numpy as np

from reports.grid_hazard import grid_hazard_estimate
from reports.turnbull import turnbull_estimate
from sample_data import _dgp
from sample_data._tables import Structure, fixed_schedule
from sample_data._trial import candidate_pool
from sample_data.simulator import SimulationConfig
from sample_data.truth import cox_binary_efron

GRID = 42.0  # days
EDGES = np.r_[-1, np.arange(GRID, GRID * 13, GRID) + 0.5, np.inf]


def observe(rng, pool, pids, t_latent, schedule, clinical_rate, tau):
    """(observed day or inf, last progression-free visit, death) as the registry dates them."""
    m = t_latent.size
    event = np.ceil(t_latent)
    death = rng.random(m) < _dgp.p_death_first(pool, pids, 1)
    clinical = ~death & (rng.random(m) < clinical_rate)
    clin = event + rng.integers(0, 15, m)
    out = np.where(death, event, np.inf)
    left = np.where(death, event, 0.0)
    prev, nominal = np.zeros(m), np.zeros(m)
    open_ = np.flatnonzero(~death & (event <= 3 * tau))
    while open_.size:
        step, jitter = schedule(rng, pool, pids[open_])
        nominal[open_] += step
        visit = nominal[open_] + jitter
        hit = visit >= event[open_]
        done = open_[hit]
        out[done] = np.where(clinical[done] & (clin[done] < visit[hit]), clin[done], visit[hit])
        left[done] = prev[done]
        prev[open_[~hit]] = visit[~hit]
        open_ = open_[~hit & (visit <= 3 * tau)]
    never = ~np.isfinite(out)
    left[never] = prev[never]
    return out, left, death


def log_hr(t_control, e_control, t_trial, e_trial) -> float:
    t = np.r_[t_control, t_trial]
    x = np.r_[np.zeros(t_control.size), np.ones(t_trial.size)]
    return cox_binary_efron(np.where(np.isfinite(t), t, 1e9), x, np.r_[e_control, e_trial])[0]


def main(n_control: int = 600, subsamples: int = 40, n: int = 20_000) -> None:
    cfg = SimulationConfig()
    structure = Structure.from_config(cfg)
    rng = np.random.default_rng([cfg.structure_seed, 99])
    pool, elig, logw = candidate_pool(rng, 60_000, cfg, structure)
    w = np.exp(logw - logw.max())
    lp0 = pool.lp[elig, 1]
    rng = np.random.default_rng(5)
    draws = rng.choice(elig.size, size=n, replace=True, p=w / w.sum())
    pids = elig[draws]
    t0 = _dgp.weibull_time(rng, lp0[draws], 1)
    t1 = _dgp.weibull_time(rng, lp0[draws] + np.log(cfg.trial_hr), 1)
    tau = 7.0 * cfg.rmst_tau_weeks
    grid = fixed_schedule(cfg.trial_interval_weeks, 0)
    g0, _, _ = observe(rng, pool, pids, t0, grid, 0.0, tau)
    g1, _, _ = observe(rng, pool, pids, t1, grid, 0.0, tau)
    reg, left, death = observe(rng, pool, pids, t0, structure.registry_schedule(cfg),
                               cfg.clinical_progression_rate, tau)
    rs = np.random.default_rng(3)
    out = {"grid_hazard": [], "npmle": [], "uniform": []}
    hist_truth, cum = [], {"grid_hazard": [], "npmle": []}
    for _ in range(subsamples):
        idx = rs.choice(n, n_control, replace=False)
        ev, dth = np.isfinite(reg[idx]), death[idx]
        t = np.where(ev, reg[idx], left[idx])
        lo = np.where(dth | ~ev, t, left[idx])
        hi = np.where(ev, t, np.nan)
        rows = ev & ~dth & (hi > lo)
        ref = log_hr(g0[idx], np.isfinite(g0[idx]), g1, np.isfinite(g1))
        curves = {"grid_hazard": grid_hazard_estimate(lo, hi, grid_every=GRID),
                  "npmle": turnbull_estimate(lo, hi)}
        for name, curve in curves.items():
            hs = []
            for _m in range(5):
                ti = t.copy()
                latent = curve.sample_within(lo[rows], hi[rows], rs)
                ti[rows] = np.ceil(latent / GRID - 1e-9) * GRID
                hs.append(log_hr(ti, ev, g1, np.isfinite(g1)))
            out[name].append(np.mean(hs) - ref)
            cum[name].append(1 - curve.survival_at(GRID * np.arange(1, 8)))
        ti = t.copy()
        u = lo[rows] + rs.random(rows.sum()) * (hi[rows] - lo[rows])
        ti[rows] = np.ceil(u / GRID - 1e-9) * GRID
        out["uniform"].append(log_hr(ti, ev, g1, np.isfinite(g1)) - ref)
        hist_truth.append(np.histogram(g0[idx], EDGES)[0] / n_control)
    print(f"control arm of {n_control}, {subsamples} subsamples of {n} paired draws")
    for k, v in out.items():
        print(f"log HR bias, control side, {k:11s}: {np.mean(v):+.4f} "
              f"(MC SE {np.std(v, ddof=1) / np.sqrt(len(v)):.4f})")
    ht = np.mean(hist_truth, 0)
    cg, cn = np.mean(cum["grid_hazard"], 0), np.mean(cum["npmle"], 0)
    print("grid visit (weeks), control F on the grid: truth, grid_hazard, NPMLE")
    for k in range(7):
        print(f"  {6 * (k + 1):3d}  {ht[:k + 1].sum():.4f}  {cg[k]:.4f}  {cn[k]:.4f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
