"""Simulation: bias and coverage of the binary-endpoint estimates with the design re-run.

Known truth: a confounder ``x`` (and a binary ``z``) shift both the chance of being a trial
patient and the chance of response. Per replicate: 40 trial and 400 registry patients; the
design (PS logistic on x, z) is re-fitted, then `reports.binary.compare_proportions` gives
the trial-minus-control difference in response with its sandwich 95% CI (weighting: HC0;
1:1 nearest matching with a 0.2 SD caliper: clustered on the matched pair). Target: the ATT
difference, sum over the trial population of p1(x, z) - p0(x, z), computed on 10^6 draws.

Run once: ``python benchmarks/sim_binary.py [n_rep]`` (1 core, about a minute for 1000).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandas as pd

from matching import match_cohort
from reports.binary import compare_proportions

N_TRIAL, N_REG = 40, 400
B_ARM, B_X, B_Z, B0 = 0.8, 0.9, -0.6, -0.9  # response model (logit)
P_TRIAL = 0.15  # share of trial patients before conditioning on the sizes


def _draw(rng, n):
    x = rng.normal(size=n)
    z = rng.binomial(1, 0.4, n)
    ps = 1 / (1 + np.exp(-(np.log(P_TRIAL / (1 - P_TRIAL)) + 0.6 * x - 0.5 * z)))
    return x, z, ps


def _p(arm, x, z):
    return 1 / (1 + np.exp(-(B0 + B_ARM * arm + B_X * x + B_Z * z)))


def truth(n=1_000_000, seed=1):
    rng = np.random.default_rng(seed)
    x, z, ps = _draw(rng, n)
    trial = rng.random(n) < ps
    return float(np.mean(_p(1, x[trial], z[trial]) - _p(0, x[trial], z[trial])))


def replicate(rng):
    x, z, ps = _draw(rng, 20 * (N_TRIAL + N_REG))
    trial = rng.random(len(x)) < ps
    it = np.flatnonzero(trial)[:N_TRIAL]
    ic = np.flatnonzero(~trial)[:N_REG]
    idx = np.r_[it, ic]
    arm = np.r_[np.ones(N_TRIAL), np.zeros(N_REG)]
    y = rng.binomial(1, _p(arm, x[idx], z[idx]))
    frame = pd.DataFrame({"arm": np.where(arm == 1, "trial", "control"), "x": x[idx],
                          "z": z[idx], "y": y})
    out = {}
    for name, kw in {"weighting_att_odds": {"method": "weighting", "weights": "att_odds"},
                     "nearest_1to1": {"method": "nearest", "ratio": 1, "caliper": 0.2}}.items():
        res = match_cohort(frame, ["x", "z"], id_col=None, random_state=1, **kw)
        f = frame.assign(w=np.asarray(res.weights, float), m=pd.Series(res.match_id).to_numpy())
        f = f[np.asarray(res.included, bool)]
        comp = compare_proportions(f, response_col="y", weight_col="w",
                                   cluster_col="m" if kw["method"] == "nearest" else None)
        d = comp.difference
        out[name] = (d.estimate, d.se, d.lower, d.upper)
    return out


def main(n_rep: int = 1000) -> None:
    warnings.simplefilter("ignore")  # positivity warnings of single replicates
    t0 = time.time()
    target = truth()
    rng = np.random.default_rng(20261203)
    rows = {}
    for _ in range(n_rep):
        for k, v in replicate(rng).items():
            rows.setdefault(k, []).append(v)
    print(f"true ATT difference {target:.4f}; {n_rep} replicates; {time.time() - t0:.0f} s")
    print("design               bias     emp.SD   mean SE  coverage (MC SE)")
    for k, v in rows.items():
        a = np.array(v)
        cover = np.mean((a[:, 2] <= target) & (target <= a[:, 3]))
        mc = np.sqrt(cover * (1 - cover) / len(a))
        print(f"{k:20s} {a[:, 0].mean() - target:+.4f}  {a[:, 0].std(ddof=1):.4f}   "
              f"{a[:, 1].mean():.4f}   {cover:.3f} ({mc:.3f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
